/**
 * Every LogQL query we ship (dashboard panels, dashboard variables, the datasource's trace links) sent to the
 * real Loki, with variables filled in as Grafana would, after real log data went in.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busEntry, printComponentLogsOnFailure, requireComponents } from "@aixcl/testkit";
import { BUS_ENTRIES, busLine, CONTAINERS, OTLP_RECORDS, PLAIN_CONTAINER, PROJECT, SEARCH, STACK_PROJECT, startLogFixture, type LogFixture } from "./fixture.js";
import {
  checkedInDashboards,
  lokiLabelValuesVariables,
  panelQueries,
  provisionedDatasources,
  renderQuery,
  type DashboardJson,
  type VariableValue,
} from "./provisioning.js";

const need = requireComponents("loki");
if (need.skip) console.warn(`[skipped] LogQL of the Grafana dashboards: ${need.skip}`);
printComponentLogsOnFailure();

type Sample = { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] };
type LokiResult =
  | { resultType: "streams"; result: { stream: Record<string, string>; values: [string, string][] }[] }
  | { resultType: "vector" | "matrix"; result: Sample[] };

const dashboards = checkedInDashboards();
function dashboard(title: string): DashboardJson {
  const found = [...dashboards.values()].find((d) => d.json.title === title);
  if (!found) throw new Error(`no dashboard ${title}`);
  return found.json;
}
const containerLogs = dashboard("AIXCL - Container Logs");
const applicationLogs = dashboard("AIXCL - Application Logs");

/** The variables as a user first sees them: "All" everywhere, the stack's own containers shown, empty text boxes. */
const CONTAINER_DEFAULTS: Record<string, VariableValue> = { project: { all: true }, own: "-", service: { all: true }, container: { all: true }, stream: { all: true }, search: "" };
/** AIXCL's project picked, as a user following seed 003's queries would. */
const AIXCL_ONLY: Record<string, VariableValue> = { ...CONTAINER_DEFAULTS, project: [PROJECT] };
const APPLICATION_DEFAULTS: Record<string, VariableValue> = { service: { all: true }, level: { all: true }, module: "", search: "" };

function query(d: DashboardJson, panelTitle: string): string {
  const found = panelQueries(d).find((q) => q.panel === panelTitle);
  if (!found) throw new Error(`${d.title} has no panel ${panelTitle}`);
  return found.expr;
}

function render(d: DashboardJson, expr: string, values: Record<string, VariableValue>, range = "1m"): string {
  return renderQuery(expr, d.templating?.list ?? [], values, { __auto: range, __interval: range, __range: "1h" });
}

describe.skipIf(need.skip !== undefined)("LogQL of the dashboards and datasources in the real Loki", () => {
  let fx: LogFixture;

  async function lokiApi(path: string, params: Record<string, string>): Promise<LokiResult> {
    const res = await fetch(`${fx.loki.url}${path}?${new URLSearchParams(params)}`, { signal: AbortSignal.timeout(15_000) });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`Loki ${path} ${params["query"] ?? ""} answered ${res.status}: ${body}`);
    return (JSON.parse(body) as { data: LokiResult }).data;
  }
  const window = () => ({ start: `${BigInt(Date.now() - 15 * 60_000) * 1_000_000n}`, end: `${BigInt(Date.now() + 1000) * 1_000_000n}` });
  const rangeQuery = (q: string) => lokiApi("/loki/api/v1/query_range", { query: q, ...window(), step: "60", limit: "1000" });
  const instantQuery = (q: string) => lokiApi("/loki/api/v1/query", { query: q, time: `${BigInt(Date.now() + 1000) * 1_000_000n}` });
  async function lines(q: string): Promise<string[]> {
    const r = await rangeQuery(q);
    if (r.resultType !== "streams") throw new Error(`${q}: expected log lines, got ${r.resultType}`);
    return r.result.flatMap((s) => s.values.map(([, line]) => line));
  }
  /** A metric query over the whole fixture (one window wider than the data) as { series label value: total }. */
  async function totals(q: string, by: string): Promise<Record<string, number>> {
    const r = await instantQuery(q);
    if (r.resultType !== "vector") throw new Error(`${q}: expected a vector, got ${r.resultType}`);
    return Object.fromEntries(r.result.map((s) => [s.metric[by] ?? "", Number(s.value?.[1])]));
  }

  beforeAll(async () => {
    fx = await startLogFixture();
  });
  afterAll(async () => {
    await fx?.stop();
  });

  it("every panel query of both log dashboards is accepted and returns data with the default variables", async () => {
    const checked: string[] = [];
    for (const [d, defaults] of [[containerLogs, CONTAINER_DEFAULTS], [applicationLogs, APPLICATION_DEFAULTS]] as const) {
      for (const q of panelQueries(d)) {
        expect(q.datasourceUid).toBe("loki");
        const logql = render(d, q.expr, defaults);
        const r = q.instant ? await instantQuery(logql) : await rangeQuery(logql);
        expect(r.result.length, `${d.title} / ${q.panel}: ${logql} returned nothing`).toBeGreaterThan(0);
        checked.push(`${d.title} / ${q.panel}`);
      }
    }
    expect(checked).toHaveLength(panelQueries(containerLogs).length + panelQueries(applicationLogs).length);
    expect(checked.length).toBeGreaterThanOrEqual(7);
  });

  it("every variable lists the values present in Loki, chained to the variables before it", async () => {
    const values = async (d: DashboardJson, name: string, defaults: Record<string, VariableValue>) => {
      const v = lokiLabelValuesVariables(d).find((x) => x.name === name)!;
      const stream = render(d, v.stream, defaults);
      const r = (await (await fetch(`${fx.loki.url}/loki/api/v1/label/${v.label}/values?${new URLSearchParams({ ...window(), ...(stream ? { query: stream } : {}) })}`)).json()) as {
        data?: string[];
      };
      return (r.data ?? []).sort();
    };
    expect(await values(containerLogs, "project", CONTAINER_DEFAULTS)).toEqual([PROJECT, STACK_PROJECT, "other"].sort());
    expect(await values(containerLogs, "service", CONTAINER_DEFAULTS)).toEqual(["api", "db", "loki"]);
    expect(await values(containerLogs, "service", AIXCL_ONLY)).toEqual(["api", "db"]);
    // Every container, a `docker run` one (no compose project) too; the stack's own hidden on request.
    expect(await values(containerLogs, "container", CONTAINER_DEFAULTS)).toEqual(["aixcl-api-1", "aixcl-db-1", CONTAINERS.loki.container, PLAIN_CONTAINER, "other-api-1"].sort());
    expect(await values(containerLogs, "container", { ...CONTAINER_DEFAULTS, own: STACK_PROJECT })).not.toContain(CONTAINERS.loki.container);
    expect(await values(containerLogs, "container", { ...AIXCL_ONLY, service: ["api", "db"] })).toEqual(["aixcl-api-1", "aixcl-db-1"]);
    expect(await values(containerLogs, "stream", { ...AIXCL_ONLY, service: ["db"] })).toEqual(["stderr"]);
    // Bus and OTLP services only: Promtail's container streams (service_name api, db, loki) carry job.
    expect(await values(applicationLogs, "service", APPLICATION_DEFAULTS)).toEqual(["checkout", "inventory", "storefront"]);
  });

  describe("Container Logs", () => {
    it("the logs panel finds a search in every project's containers, not in Loki's log of the search itself", async () => {
      const logql = render(containerLogs, query(containerLogs, "Logs"), { ...CONTAINER_DEFAULTS, search: SEARCH.toUpperCase() });
      const apiLine = JSON.stringify({ level: "error", msg: `${SEARCH}: card declined`, trace_id: fx.trace });
      expect((await lines(logql)).sort()).toEqual([apiLine, `${SEARCH} in another project, error`].sort());
      const aixcl = render(containerLogs, query(containerLogs, "Logs"), { ...AIXCL_ONLY, search: SEARCH.toUpperCase() });
      expect(await lines(aixcl)).toEqual([apiLine]);
      const plain = render(containerLogs, query(containerLogs, "Logs"), { ...CONTAINER_DEFAULTS, container: [PLAIN_CONTAINER] });
      expect(await lines(plain)).toEqual(["plain docker run output"]);
      // The echo is real and does contain the search: without the dashboard's filter it would be listed.
      expect(fx.queryEcho).toContain(SEARCH);
      expect(await lines(logql.replace(' != "query_hash="', ""))).toHaveLength(3);
    });

    it("log volume counts every line of the selected services per service", async () => {
      const logql = render(containerLogs, query(containerLogs, "Log volume by service"), AIXCL_ONLY, "1h");
      expect(await totals(logql, "compose_service")).toEqual({ api: 3, db: 2 });
      const onlyDb = render(containerLogs, query(containerLogs, "Log volume by service"), { ...AIXCL_ONLY, service: ["db"] }, "1h");
      expect(await totals(onlyDb, "compose_service")).toEqual({ db: 2 });
    });

    it("errors by service counts error levels (promoted from JSON or detected in logfmt), never mere mentions", async () => {
      const logql = render(containerLogs, query(containerLogs, "Errors by service"), { ...AIXCL_ONLY, project: [PROJECT, STACK_PROJECT] }, "1h");
      // Loki's query log mentions "checkout failed"/"error" at level=info: not an error of the loki service.
      expect(await totals(logql, "compose_service")).toEqual({ api: 1, db: 1 });
    });

    it("the noisiest containers are ranked by lines in the range", async () => {
      const logql = render(containerLogs, query(containerLogs, "Noisiest containers"), CONTAINER_DEFAULTS);
      const byContainer = await totals(logql, "container");
      expect(byContainer).toEqual({ [CONTAINERS.api.container]: 3, [CONTAINERS.db.container]: 2, [CONTAINERS.loki.container]: 1, "other-api-1": 1, [PLAIN_CONTAINER]: 1 });
      // "This stack: hidden" leaves out the logging stack's own containers, and only those.
      const hidden = render(containerLogs, query(containerLogs, "Noisiest containers"), { ...CONTAINER_DEFAULTS, own: STACK_PROJECT });
      expect(await totals(hidden, "container")).toEqual({ [CONTAINERS.api.container]: 3, [CONTAINERS.db.container]: 2, "other-api-1": 1, [PLAIN_CONTAINER]: 1 });
    });
  });

  describe("Application Logs", () => {
    it("volume by level counts bus entries and OTLP records per level (Loki's detected_level: warning is warn)", async () => {
      const logql = render(applicationLogs, query(applicationLogs, "Volume by level"), APPLICATION_DEFAULTS, "1h");
      // Bus: debug, info, warning, error, critical; OTLP: INFO, WARN, ERROR.
      expect(await totals(logql, "detected_level")).toEqual({ debug: 1, info: 2, warn: 2, error: 2, critical: 1 });
      const picked = render(applicationLogs, query(applicationLogs, "Volume by level"), { ...APPLICATION_DEFAULTS, level: ["error", "critical"] }, "1h");
      expect(await totals(picked, "detected_level")).toEqual({ error: 2, critical: 1 });
      const otlpOnly = render(applicationLogs, query(applicationLogs, "Volume by level"), { ...APPLICATION_DEFAULTS, service: ["storefront"] }, "1h");
      expect(await totals(otlpOnly, "detected_level")).toEqual({ info: 1, warn: 1, error: 1 });
    });

    it("error rate covers error and critical entries per service, bus and OTLP alike", async () => {
      const logql = render(applicationLogs, query(applicationLogs, "Error rate by service"), APPLICATION_DEFAULTS, "1h");
      const rates = await totals(logql, "service_name");
      expect(Object.keys(rates).sort()).toEqual(["checkout", "inventory", "storefront"]);
      expect(rates["checkout"]! * 3600).toBeCloseTo(1);
      expect(rates["storefront"]! * 3600).toBeCloseTo(1);
    });

    it("the logs panel shows bus entries and OTLP records side by side, and no container line", async () => {
      const logql = render(applicationLogs, query(applicationLogs, "Logs"), APPLICATION_DEFAULTS);
      const expected = [...BUS_ENTRIES.map((e) => busLine(e, fx.trace)), ...OTLP_RECORDS.map((r) => r.message)];
      expect((await lines(logql)).sort()).toEqual(expected.sort());
    });

    it("the logs panel filters on structured metadata (bus module, OTLP scope) and returns it with each line", async () => {
      const logql = render(applicationLogs, query(applicationLogs, "Logs"), { ...APPLICATION_DEFAULTS, module: "pay" });
      const streams = await fx.loki.queryRange(logql);
      const got = streams.flatMap((s) => s.values.map(([, line, meta]) => ({ line, meta })));
      const payment = BUS_ENTRIES.filter((e) => e.module === "payment");
      expect(got.map((g) => g.line).sort()).toEqual(payment.map((e) => busLine(e, fx.trace)).sort());
      // The shipped fields: module as structured metadata; function, file and trace_id in the line (logfmt).
      for (const g of got) expect(busEntry(g.line, g.meta).fields).toMatchObject({ module: "payment", function: "handle", file_path: "src/payment.ts", trace_id: fx.trace });
      for (const g of got) expect(g.meta).toMatchObject({ module: "payment" });
      for (const g of got) expect(g.meta?.["trace_id"]).toBeUndefined();
      const searched = render(applicationLogs, query(applicationLogs, "Logs"), { ...APPLICATION_DEFAULTS, search: "DATABASE" });
      expect(await lines(searched)).toEqual(BUS_ENTRIES.filter((e) => e.module === "stock").map((e) => busLine(e, fx.trace)));
      const scope = render(applicationLogs, query(applicationLogs, "Logs"), { ...APPLICATION_DEFAULTS, module: "web", level: ["error"] });
      const otlp = (await fx.loki.queryRange(scope)).flatMap((s) => s.values.map(([, line, meta]) => ({ line, meta })));
      expect(otlp).toEqual([{ line: "payment provider timed out", meta: expect.objectContaining({ scope_name: "web", severity_text: "ERROR", trace_id: fx.trace }) }]);
    });
  });

  describe("trace links of the Loki datasource", () => {
    const fields = provisionedDatasources().find((d) => d.uid === "loki")?.jsonData?.derivedFields ?? [];
    /** Grafana substitutes the matched value for ${__value.raw} and runs the link's query on datasourceUid. */
    const follow = (url: string, value: string) => lines(url.replaceAll("${__value.raw}", value));
    /** The application lines of the fixture's trace: traced bus entries and OTLP records. */
    const traceLines = () => [...BUS_ENTRIES.filter((e) => e.traced).map((e) => busLine(e, fx.trace)), ...OTLP_RECORDS.filter((r) => r.traced).map((r) => r.message)].sort();

    it("from an OTLP record's trace_id metadata: the trace's bus entries, OTLP records and container lines", async () => {
      const records = (await fx.loki.queryRange('{service_name=~".+", job=""} | scope_name=~".+"')).flatMap((s) => s.values);
      const value = records.map(([, , meta]) => meta?.["trace_id"]).find((t) => t !== undefined);
      expect(value).toBe(fx.trace);
      const [bus, containers] = fields.filter((f) => f.name === "trace_id");
      expect((await follow(bus!.url!, value!)).sort()).toEqual(traceLines());
      const fromContainers = await follow(containers!.url!, value!);
      expect(fromContainers).toHaveLength(2);
      for (const line of fromContainers) expect(JSON.parse(line)).toMatchObject({ trace_id: fx.trace });
    });

    it("from a trace_id in a bus entry's line (logfmt, the consumer's default): the same two sets", async () => {
      const [line] = await lines('{service="checkout"} |= "trace_id="');
      const [bus, containers] = fields.filter((f) => f.name === "trace_id_in_line");
      const value = new RegExp(bus!.matcherRegex).exec(line!)?.[1];
      expect(value).toBe(fx.trace);
      expect((await follow(bus!.url!, value!)).sort()).toEqual(traceLines());
      expect(await follow(containers!.url!, value!)).toHaveLength(2);
    });

    it("from a trace_id inside a JSON container line: the same two sets", async () => {
      const [line] = await lines(`{compose_service="api"} |= "GET /orders"`);
      const [bus, containers] = fields.filter((f) => f.name === "trace_id_in_line");
      const value = new RegExp(bus!.matcherRegex).exec(line!)?.[1];
      expect(value).toBe(fx.trace);
      expect((await follow(bus!.url!, value!)).sort()).toEqual(traceLines());
      expect(await follow(containers!.url!, value!)).toHaveLength(2);
    });
  });
});
