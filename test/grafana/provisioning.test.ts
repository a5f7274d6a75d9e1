import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { LOG_LEVELS } from "@aixcl/wire";
import { dashboardFiles, renderDashboard } from "@aixcl/grafana";
import {
  checkedInDashboards,
  dashboardProviders,
  grafanaExpand,
  lokiLabelValuesVariables,
  panelQueries,
  provisionedDatasources,
  referencedDatasourceUids,
  renderQuery,
  type VariableJson,
} from "./provisioning.js";

const composeFile = fileURLToPath(new URL("../../docker-compose.yml", import.meta.url));

describe("generated dashboards", () => {
  const generated = dashboardFiles();
  const checkedIn = checkedInDashboards();

  it("the checked-in JSON is exactly what `npm run dashboards` writes, file for file", () => {
    expect([...checkedIn.keys()].sort()).toEqual(generated.map((g) => g.file).sort());
    for (const { file, dashboard } of generated) {
      expect(checkedIn.get(file)?.text, `${file} is stale: run npm run dashboards`).toBe(renderDashboard(dashboard));
    }
  });

  it("has the three dashboards with unique uids and titles", () => {
    const titles = generated.map((g) => g.dashboard.title);
    expect(titles.sort()).toEqual(["AIXCL - Application Logs", "AIXCL - Container Logs", "AIXCL - Logging Pipeline"]);
    const uids = generated.map((g) => g.dashboard.uid);
    expect(new Set(uids).size).toBe(uids.length);
  });

  it("references only datasource uids that are provisioned, with the matching type", () => {
    const provisioned = new Map(provisionedDatasources().map((d) => [d.uid, d.type]));
    for (const { file, dashboard } of generated) {
      const uids = referencedDatasourceUids(dashboard);
      expect(uids.size, `${file} references no datasource`).toBeGreaterThan(0);
      for (const uid of uids) expect(provisioned.has(uid), `${file} references datasource uid ${uid}`).toBe(true);
      for (const q of panelQueries(checkedIn.get(file)?.json ?? { uid: "", title: "" })) {
        expect(provisioned.get(q.datasourceUid), `${q.dashboard} / ${q.panel}`).toBe(q.datasourceUid === "loki" ? "loki" : "prometheus");
      }
    }
  });

  it("the uid check can fail: a dashboard pointing at an unprovisioned uid is caught", () => {
    const broken = JSON.parse(renderDashboard(generated[0]!.dashboard).replaceAll('"uid": "loki"', '"uid": "P8E80F9AEF21F6940"')) as unknown;
    const provisioned = new Set(provisionedDatasources().map((d) => d.uid));
    expect([...referencedDatasourceUids(broken)].filter((u) => !provisioned.has(u))).toEqual(["P8E80F9AEF21F6940"]);
  });

  it("offers Loki's detected level of every bus log level and every OpenTelemetry severity", () => {
    const app = generated.find((g) => g.dashboard.title === "AIXCL - Application Logs")!.dashboard;
    const level = (app.templating.list ?? []).find((v) => v.name === "level") as VariableJson & { query?: string };
    // Loki spells the bus's warning "warn" (test/grafana/logql.test.ts sees it do so); OTLP's severities are
    // TRACE, DEBUG, INFO, WARN, ERROR and FATAL.
    const bus = LOG_LEVELS.map((l) => (l === "warning" ? "warn" : l));
    const otlp = ["trace", "debug", "info", "warn", "error", "fatal"];
    expect(new Set(String(level.query).split(","))).toEqual(new Set([...bus, ...otlp]));
  });

  it("every variable query and panel query renders without a leftover variable", () => {
    for (const { json } of checkedIn.values()) {
      const variables = json.templating?.list ?? [];
      const values = Object.fromEntries(variables.map((v) => [v.name, v.includeAll ? { all: true as const } : "x"]));
      for (const q of panelQueries(json)) expect(renderQuery(q.expr, variables, values)).not.toMatch(/\$/);
      if (json.title.includes("Logs")) {
        for (const v of lokiLabelValuesVariables(json)) expect(renderQuery(v.stream, variables, values)).not.toMatch(/\$/);
      }
    }
  });
});

describe("renderQuery (Grafana's variable interpolation, used to send real queries)", () => {
  const variables: VariableJson[] = [
    { name: "service", type: "query", multi: true, includeAll: true, allValue: ".+" },
    { name: "search", type: "textbox" },
  ];

  it("renders All as the allValue, several values as an escaped alternation, a text box verbatim", () => {
    const expr = '{service=~"$service"} |~ "(?i)$search" [$__auto]';
    expect(renderQuery(expr, variables, { service: { all: true }, search: "a.b" })).toBe('{service=~".+"} |~ "(?i)a.b" [1m]');
    expect(renderQuery(expr, variables, { service: ["api", "web.1"], search: "" })).toBe('{service=~"api|web\\\\.1"} |~ "(?i)" [1m]');
  });

  it("refuses a query with a variable it has no value for", () => {
    expect(() => renderQuery('{service=~"$service"} |= "$unknown"', variables, { service: "api" })).toThrow(/\$unknown/);
  });
});

describe("datasource provisioning", () => {
  const datasources = provisionedDatasources();
  const byUid = new Map(datasources.map((d) => [d.uid, d]));

  it("provisions Loki and Prometheus under the fixed uids the dashboards use", () => {
    expect(byUid.get("loki")).toMatchObject({ type: "loki", url: "http://loki:3100", isDefault: true });
    expect(byUid.get("prometheus")).toMatchObject({ type: "prometheus", url: "http://prometheus:9090" });
    expect(datasources.filter((d) => d.isDefault)).toHaveLength(1);
  });

  it("provisions the stack's Alertmanager under a fixed uid, as the Prometheus implementation, for Grafana's alerting view", () => {
    const compose = parse(readFileSync(composeFile, "utf8")) as { services: Record<string, { ports?: string[] }> };
    expect(compose.services["alertmanager"]?.ports?.[0]).toMatch(/:9093$/);
    expect(byUid.get("alertmanager")).toMatchObject({
      type: "alertmanager",
      url: "http://alertmanager:9093",
      jsonData: { implementation: "prometheus", handleGrafanaManagedAlerts: false },
    });
    expect(byUid.get("alertmanager")?.isDefault).toBeFalsy();
  });

  it("sets Loki's query timeout and line limit", () => {
    expect(byUid.get("loki")?.jsonData).toMatchObject({ timeout: 60, maxLines: 5000 });
  });

  it("sets Prometheus' timeInterval to the scrape interval of prometheus/prometheus.yml", () => {
    const prometheusYml = parse(readFileSync(fileURLToPath(new URL("../../prometheus/prometheus.yml", import.meta.url)), "utf8")) as {
      global: { scrape_interval: string };
    };
    expect(byUid.get("prometheus")?.jsonData?.["timeInterval"]).toBe(prometheusYml.global.scrape_interval);
  });

  it("turns trace_id (structured metadata, or a field of the line: logfmt or JSON) into links to the lines of that trace", () => {
    const fields = byUid.get("loki")?.jsonData?.derivedFields ?? [];
    const names = [...new Set(fields.map((f) => f.name))];
    expect(names).toEqual(["trace_id", "trace_id_in_line"]);
    for (const name of names) {
      const group = fields.filter((f) => f.name === name);
      // Grafana groups configs by name: the first one's matcher extracts the value, each one adds a link.
      expect(group.map((f) => f.urlDisplayLabel)).toEqual(["Application logs of this trace", "Container logs of this trace"]);
      for (const f of group) {
        expect(f.datasourceUid).toBe("loki");
        expect(f.url).toContain("${__value.raw}");
      }
    }
    expect(fields[0]).toMatchObject({ matcherType: "label", matcherRegex: "trace_id" });
    const inLine = fields.find((f) => f.name === "trace_id_in_line")!;
    expect(inLine.matcherType).toBe("regex");
    expect(new RegExp(inLine.matcherRegex).exec('{"level":"info","trace_id": "4bf92f35","msg":"x"}')?.[1]).toBe("4bf92f35");
    // A bus entry's line, as the consumer's default fields write it.
    expect(new RegExp(inLine.matcherRegex).exec("charged function=charge trace_id=4bf92f35 extra_n=1")?.[1]).toBe("4bf92f35");
    expect(new RegExp(inLine.matcherRegex).exec("extra_trace_id=4bf92f35 plain text")).toBeNull();
    expect(new RegExp(inLine.matcherRegex).exec("no trace here")).toBeNull();
  });

  it("escapes every literal $ from Grafana's environment expansion", () => {
    const raw = readFileSync(fileURLToPath(new URL("../../grafana/provisioning/datasources/datasources.yml", import.meta.url)), "utf8");
    expect(raw).toContain("$${__value.raw}");
    expect(() => grafanaExpand('url: "${__value.raw}"')).toThrow(/literal/);
  });
});

describe("dashboard provider", () => {
  const providers = dashboardProviders();

  it("provisions into the AIXCL folder, read-only", () => {
    expect(providers).toHaveLength(1);
    expect(providers[0]).toMatchObject({ type: "file", folder: "AIXCL", disableDeletion: true, allowUiUpdates: false });
  });

  it("reads the directory docker-compose.yml mounts grafana/dashboards (and the provisioning) at", () => {
    const compose = parse(readFileSync(composeFile, "utf8")) as { services: Record<string, { volumes?: string[] }> };
    const mounts = new Map(
      (compose.services["grafana"]?.volumes ?? []).map((v) => {
        const [host, container] = v.split(":");
        return [host?.replace(/\/$/, ""), container];
      }),
    );
    expect(mounts.get("./grafana/dashboards")).toBe(providers[0]?.options.path);
    expect(mounts.get("./grafana/provisioning")).toBe("/etc/grafana/provisioning");
  });
});
