/**
 * The Logging Pipeline dashboard against the real thing: a real Prometheus running the shipped scrape config
 * against a real Loki, a real Promtail and the broker and log consumer in process, with traffic (including
 * failures) going through them. Every PromQL query must be accepted, name metrics those services really
 * expose, and return data where the traffic produced some.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { XPublisher } from "zeromq";
import { encodeLogEntry } from "@aixcl/wire";
import { createLogger } from "@aixcl/client-logger";
import {
  printComponentLogsOnFailure,
  requireComponents,
  startAlertmanager,
  startLoki,
  startPrometheus,
  startPromtail,
  tempDir,
  type AlertmanagerHandle,
  type LokiHandle,
  type PrometheusHandle,
  type PromtailHandle,
} from "@aixcl/testkit";
import { startBus, type BusHandle } from "@aixcl/bus-harness";
import { checkedInDashboards, panelQueries, renderQuery, type PanelQuery } from "./provisioning.js";

const need = requireComponents("prometheus", "loki", "promtail", "alertmanager");
if (need.skip) console.warn(`[skipped] PromQL of the Grafana dashboards: ${need.skip}`);
printComponentLogsOnFailure();

const pipeline = [...checkedInDashboards().values()].find((d) => d.json.title === "AIXCL - Logging Pipeline")!.json;
const queries = panelQueries(pipeline);

/** Which scrape job exposes a metric, by name prefix (job names of prometheus/prometheus.yml). */
const JOB_BY_PREFIX: [string, string][] = [
  ["aixcl_broker_", "broker"],
  ["aixcl_log_consumer_", "log-consumer"],
  ["loki_", "loki"],
  ["promtail_", "promtail"],
  ["alertmanager_", "alertmanager"],
];

/**
 * Metric names in a PromQL expression (ours and the components'; functions and labels never match). ALERTS is
 * Prometheus' own series of its firing rules, exposed by no service.
 */
function metricNames(expr: string): string[] {
  return [...new Set(expr.match(/\b(?:aixcl|loki|promtail|alertmanager)_[a-z0-9_]+/g) ?? [])];
}

/** Exposition families: `# TYPE name kind`; a histogram's series are name_bucket/_sum/_count. */
function families(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, kind] = m as unknown as [string, string, string];
    names.add(name);
    if (kind === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(name + suffix);
  }
  return names;
}

/** Panels whose metrics the test traffic moves; the others (retries: Loki never answered 429/5xx) only need to parse. */
const MUST_HAVE_DATA = [
  "Alerts firing",
  "Silenced or inhibited",
  // The too-old entry below makes the consumer drop it: the shipped rule LogConsumerDroppingEntries fires.
  "Pipeline alerts",
  "Broker throughput",
  "Broker backlog",
  "Broker dropped messages",
  "Broker backlog fill",
  "Oldest held message",
  "Consumer throughput",
  "Push latency p99",
  "Dropped entries",
  "Decode errors",
  "Consumer buffer fill",
  "Loki ingestion (lines)",
  "Loki ingestion (bytes)",
  "Loki discarded samples",
  "Promtail targets",
  "Promtail sent entries",
];

describe("metricNames", () => {
  it("finds the metrics, not functions or labels", () => {
    expect(metricNames("histogram_quantile(0.99, sum by (le) (rate(aixcl_log_consumer_push_duration_seconds_bucket[1m])))")).toEqual([
      "aixcl_log_consumer_push_duration_seconds_bucket",
    ]);
  });
});

describe.skipIf(need.skip !== undefined)("PromQL of the Logging Pipeline dashboard in the real Prometheus", () => {
  let loki: LokiHandle;
  let promtail: PromtailHandle;
  let prometheus: PrometheusHandle;
  let bus: BusHandle;
  let alertmanager: AlertmanagerHandle;
  let varLog: string;
  const scrapeUrls: Record<string, string> = {};

  async function instant(expr: string): Promise<{ status: string; error?: string; data?: { result: unknown[] } }> {
    const res = await fetch(`${prometheus.url}/api/v1/query`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ query: expr }),
    });
    return (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  }
  const render = (q: PanelQuery) => renderQuery(q.expr, pipeline.templating?.list ?? [], {}, { __rate_interval: "1m", __interval: "15s", __range: "1h" });

  beforeAll(async () => {
    loki = await startLoki();
    varLog = tempDir("grafana-varlog");
    appendFileSync(join(varLog, "app.log"), "first line\n");
    promtail = await startPromtail({ lokiUrl: loki.url, varLogDir: varLog });
    bus = await startBus({ lokiUrl: loki.url });
    alertmanager = await startAlertmanager();
    scrapeUrls["loki"] = `127.0.0.1:${loki.httpPort}`;
    scrapeUrls["promtail"] = `127.0.0.1:${promtail.httpPort}`;
    scrapeUrls["broker"] = new URL(bus.broker.ops.url).host;
    scrapeUrls["log-consumer"] = new URL(bus.consumer.opsUrl).host;
    scrapeUrls["alertmanager"] = `127.0.0.1:${alertmanager.httpPort}`;
    prometheus = await startPrometheus({
      targets: {
        "loki:3100": scrapeUrls["loki"],
        "promtail:9080": scrapeUrls["promtail"],
        "broker:9464": scrapeUrls["broker"],
        "log-consumer:9465": scrapeUrls["log-consumer"],
        "alertmanager:9093": scrapeUrls["alertmanager"],
      },
    });

    // Traffic: good entries over the bus, an undecodable message, an entry Loki refuses as too old (dropped
    // by the consumer, discarded by Loki), and lines for Promtail.
    const logger = createLogger({ subsystem: "pipeline_test", module: "traffic", endpoint: bus.broker.pubEndpoint });
    for (let n = 0; n < 50; n++) logger.info(`entry ${n}`);
    await logger.close();
    const raw = new XPublisher({ linger: 1000 });
    raw.connect(bus.broker.pubEndpoint);
    for (;;) {
      const [frame] = await raw.receive();
      if (frame?.[0] === 1 && "logs.".startsWith(frame.subarray(1).toString())) break;
    }
    await raw.send(["logs.pipeline_test.bad", Buffer.from([0xff, 0xff, 0xff])]);
    const eightDaysAgo = (BigInt(Date.now()) - 8n * 86_400_000n) * 1_000_000n;
    await raw.send([
      "logs.pipeline_test.old",
      encodeLogEntry({
        timestampNs: eightDaysAgo, level: "info", subsystem: "pipeline_test", module: "old", function: "", message: "too old for Loki",
        topic: "logs.pipeline_test.old", metadata: {}, filePath: "", lineNumber: 0, userUuid: "", sessionId: "", traceId: "", extra: {},
      }),
    ]);
    raw.close();
    for (let n = 0; n < 20; n++) appendFileSync(join(varLog, "app.log"), `promtail line ${n}\n`);
  });
  afterAll(async () => {
    await prometheus?.stop();
    await bus?.stop();
    await alertmanager?.stop();
    await promtail?.stop();
    await loki?.stop();
  });

  it("every query is accepted by Prometheus", { timeout: 60_000 }, async () => {
    expect(queries.length).toBeGreaterThanOrEqual(15);
    for (const q of queries) {
      expect(q.datasourceUid).toBe("prometheus");
      const r = await instant(render(q));
      expect(r, `${q.panel}: ${render(q)}`).toMatchObject({ status: "success" });
    }
    // The check can fail: Prometheus refuses what it cannot parse.
    expect((await instant("sum by (reason (rate(x[1m]))")).status).toBe("error");
  });

  it("every metric a query names is exposed by the service it belongs to", { timeout: 90_000 }, async () => {
    await prometheus.waitForTargetsUp(["loki", "promtail", "broker", "log-consumer", "alertmanager"]);
    const exposed = new Map<string, Set<string>>();
    for (const [job, host] of Object.entries(scrapeUrls)) exposed.set(job, families(await (await fetch(`http://${host}/metrics`)).text()));
    const names = queries.flatMap((q) => metricNames(q.expr));
    expect(names.length).toBeGreaterThanOrEqual(16);
    for (const name of names) {
      const job = JOB_BY_PREFIX.find(([prefix]) => name.startsWith(prefix))?.[1];
      expect(job, `${name}: no service owns this prefix`).toBeDefined();
      expect(exposed.get(job!)?.has(name), `${name} is not exposed by ${job}`).toBe(true);
    }
  });

  it("returns data for every panel the traffic moves", { timeout: 150_000 }, async () => {
    await prometheus.waitForTargetsUp(["loki", "promtail", "broker", "log-consumer", "alertmanager"]);
    for (const title of MUST_HAVE_DATA) {
      const panelQueriesOf = queries.filter((q) => q.panel === title);
      expect(panelQueriesOf.length, title).toBeGreaterThan(0);
      for (const q of panelQueriesOf) {
        await expect
          .poll(async () => (await instant(render(q))).data?.result.length ?? 0, { timeout: 100_000, interval: 2_000, message: `${title}: ${render(q)}` })
          .toBeGreaterThan(0);
      }
    }
  });
});
