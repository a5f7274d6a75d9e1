import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";

interface ScrapeJob {
  job_name: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: { names: string[]; type: string; port: number }[];
}
/** A job's targets as host:port, whether listed (static_configs) or looked up by name (dns_sd_configs). */
const targetsOf = (j: ScrapeJob): string[] => [
  ...(j.static_configs ?? []).flatMap((s) => s.targets),
  ...(j.dns_sd_configs ?? []).flatMap((d) => d.names.map((n) => `${n}:${d.port}`)),
];
import {
  mapScrapeTargets,
  printComponentLogsOnFailure,
  requireComponents,
  runComponent,
  shippedConfig,
  startLoki,
  startPrometheus,
  startPromtail,
  tempDir,
  type LokiHandle,
  type PrometheusHandle,
  type PromtailHandle,
} from "@aixcl/testkit";

printComponentLogsOnFailure();

describe("mapScrapeTargets (how the harness adapts the shipped prometheus.yml)", () => {
  const shipped = readFileSync(shippedConfig.prometheus, "utf8");

  it("changes only the mapped addresses and keeps every shipped job", () => {
    const mapped = parse(mapScrapeTargets(shipped, { "loki:3100": "127.0.0.1:1234" })) as { scrape_configs: ScrapeJob[] };
    const original = parse(shipped) as typeof mapped;
    expect(mapped.scrape_configs.map((j) => j.job_name)).toEqual(original.scrape_configs.map((j) => j.job_name));
    const targets = Object.fromEntries(mapped.scrape_configs.map((j) => [j.job_name, targetsOf(j)]));
    expect(targets["loki"]).toEqual(["127.0.0.1:1234"]);
    expect(targets["promtail"]).toEqual(["promtail:9080"]);
  });

  it("maps the Alertmanager Prometheus sends alerts to, like a scrape target", () => {
    const mapped = parse(mapScrapeTargets(shipped, { "alertmanager:9093": "127.0.0.1:4321" })) as {
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    expect(mapped.alerting.alertmanagers[0]?.static_configs[0]?.targets).toEqual(["127.0.0.1:4321"]);
    expect(mapped.scrape_configs.find((j) => j.job_name === "alertmanager")?.static_configs[0]?.targets).toEqual(["127.0.0.1:4321"]);
  });

  it("fails when a mapped address is not in the shipped file", () => {
    expect(() => mapScrapeTargets(shipped, { "loki:3101": "127.0.0.1:1" })).toThrow(/loki:3101/);
  });

  it("adds extra jobs for test-only services", () => {
    const mapped = parse(mapScrapeTargets(shipped, {}, [{ jobName: "fault-injection", targets: ["127.0.0.1:9"] }])) as { scrape_configs: { job_name: string }[] };
    expect(mapped.scrape_configs.at(-1)?.job_name).toBe("fault-injection");
  });
});

describe("prometheus/prometheus.yml", () => {
  it("scrapes every service of the stack by its compose name and port, and the HA profile's Loki instances", () => {
    const doc = parse(readFileSync(shippedConfig.prometheus, "utf8")) as { scrape_configs: ScrapeJob[] };
    const targets = Object.fromEntries(doc.scrape_configs.map((j) => [j.job_name, targetsOf(j)]));
    expect(targets).toEqual({
      prometheus: ["localhost:9090"],
      loki: ["loki:3100", "loki-1:3100", "loki-2:3100", "loki-3:3100"],
      promtail: ["promtail:9080"],
      broker: ["broker:9464"],
      "log-consumer": ["log-consumer:9465"],
      alertmanager: ["alertmanager:9093"],
      grafana: ["grafana:3000"],
    });
  });
});

const needTool = requireComponents("promtool");
if (needTool.skip) console.warn(`[skipped] promtool tests: ${needTool.skip}`);

describe.skipIf(needTool.skip !== undefined)("promtool", () => {
  it("check config accepts the shipped prometheus.yml and the rule files it names", async () => {
    const r = await runComponent("promtool", ["check", "config", shippedConfig.prometheus]);
    expect(r.output).toContain("SUCCESS");
    expect(r.output).toMatch(/SUCCESS: [1-9]\d* rule files found/);
    expect(r.status).toBe(0);
  });

  it("check config rejects a broken variant (the check can fail)", async () => {
    const dir = tempDir("prom-bad");
    const bad = join(dir, "prometheus.yml");
    writeFileSync(bad, readFileSync(shippedConfig.prometheus, "utf8").replace("scrape_interval: 15s", "scrape_interval: often"));
    const r = await runComponent("promtool", ["check", "config", bad]);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain("often");
  });
});

const need = requireComponents("prometheus", "loki", "promtail");
if (need.skip) console.warn(`[skipped] Prometheus scrape tests: ${need.skip}`);

describe.skipIf(need.skip !== undefined)("a real Prometheus running the shipped scrape config", () => {
  let loki: LokiHandle;
  let promtail: PromtailHandle;
  let prometheus: PrometheusHandle;
  let varLog: string;

  beforeAll(async () => {
    loki = await startLoki();
    varLog = tempDir("varlog");
    promtail = await startPromtail({ lokiUrl: loki.url, varLogDir: varLog });
    prometheus = await startPrometheus({
      targets: { "loki:3100": `127.0.0.1:${loki.httpPort}`, "promtail:9080": `127.0.0.1:${promtail.httpPort}` },
    });
  });
  afterAll(async () => {
    await prometheus?.stop();
    await promtail?.stop();
    await loki?.stop();
  });

  it("reports Loki, Promtail and itself up", { timeout: 60_000 }, async () => {
    const up = await prometheus.waitForTargetsUp(["loki", "promtail", "prometheus"]);
    expect(up.map((t) => t.scrapeUrl).sort()).toEqual(
      [`http://127.0.0.1:${loki.httpPort}/metrics`, `http://127.0.0.1:${promtail.httpPort}/metrics`, `http://127.0.0.1:${prometheus.httpPort}/metrics`].sort(),
    );
  });

  it("has Loki's own metrics queryable under job=\"loki\"", { timeout: 60_000 }, async () => {
    await expect
      .poll(
        async () => {
          const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent('count(loki_build_info{job="loki"})')}`);
          const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
          return body.data.result[0]?.value[1];
        },
        { timeout: 30_000, interval: 1000 },
      )
      .toBe("1");
  });

  it("reports a target that is not running as down, with the reason (the check can fail)", async () => {
    const targets = await prometheus.targets();
    const grafana = targets.find((t) => t.job === "grafana");
    expect(grafana?.scrapeUrl).toBe("http://grafana:3000/metrics");
    await expect.poll(async () => (await prometheus.targets()).find((t) => t.job === "grafana")?.health, { timeout: 40_000, interval: 1000 }).toBe("down");
  });
});
