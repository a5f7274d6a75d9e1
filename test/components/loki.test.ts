import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { entryCount, printComponentLogsOnFailure, requireComponents, runComponent, shippedConfig, startLoki, tempDir, type LokiHandle } from "@aixcl/testkit";

const need = requireComponents("loki");
if (need.skip) console.warn(`[skipped] Loki tests: ${need.skip}`);
printComponentLogsOnFailure();

describe.skipIf(need.skip !== undefined)("loki/loki-config.yml in the real Loki", () => {
  it("passes loki -verify-config", async () => {
    const r = await runComponent("loki", [`-config.file=${shippedConfig.loki}`, "-verify-config"]);
    expect(r.output).toContain("config is valid");
    expect(r.status).toBe(0);
  });

  it.each([
    ["an unparsable retention period", (c: string) => c.replace("retention_period: 168h", "retention_period: seven-days"), /seven-days/],
    ["retention without delete_request_store (Loki 3.x)", (c: string) => c.replace(/^\s*delete_request_store: filesystem\n/m, ""), /delete-request-store should be configured/],
  ])("-verify-config rejects %s (the check can fail)", async (_case, mutate, message) => {
    const dir = tempDir("loki-bad");
    const bad = join(dir, "loki-config.yml");
    const shipped = readFileSync(shippedConfig.loki, "utf8");
    const variant = mutate(shipped);
    expect(variant).not.toBe(shipped);
    writeFileSync(bad, variant);
    const r = await runComponent("loki", [`-config.file=${bad}`, "-verify-config"]);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(message);
  });

  describe("a Loki started from the shipped file", () => {
    let loki: LokiHandle;
    beforeAll(async () => {
      loki = await startLoki();
    });
    afterAll(async () => {
      await loki?.stop();
    });

    it("is /ready and runs the shipped settings (retention that deletes, raised limits, no usage reports)", async () => {
      const res = await fetch(`${loki.url}/config`);
      expect(res.status).toBe(200);
      const effective = parse(await res.text()) as Record<string, Record<string, unknown>>;
      expect(effective["compactor"]).toMatchObject({ retention_enabled: true, delete_request_store: "filesystem", compaction_interval: "10m0s" });
      expect(effective["limits_config"]).toMatchObject({
        retention_period: "1w",
        ingestion_rate_mb: 32,
        ingestion_burst_size_mb: 64,
        allow_structured_metadata: true,
        volume_enabled: true,
      });
      expect(effective["analytics"]).toMatchObject({ reporting_enabled: false });
      expect(effective["query_range"]).toMatchObject({ cache_results: true });
      // One process, one ring member: no reason for /ready to wait 15 s after the join, or 10 s for the scheduler.
      expect(effective["ingester"]).toMatchObject({ lifecycler: { min_ready_duration: "0s" } });
      expect(effective["frontend"]).toMatchObject({ scheduler_dns_lookup_period: "1s" });
      // The ruler: the shipped Alertmanager, a scratch rule path under the (redirected) path prefix.
      expect(effective["ruler"]).toMatchObject({ alertmanager_url: "http://alertmanager:9093", evaluation_interval: "1m0s", rule_path: `${loki.dataDir}/rules-temp` });
      // The paths were redirected by flags into this instance's temp dir, not left at /loki.
      expect(JSON.stringify(effective["common"])).toContain(loki.dataDir);
    });

    it("`loki -health` (the compose healthcheck) exits 0 against this /ready and 1 against a closed port", async () => {
      const ok = await runComponent("loki", ["-health", `-health.url=${loki.url}/ready`]);
      expect(ok).toMatchObject({ status: 0 });
      const closed = await runComponent("loki", ["-health", "-health.url=http://127.0.0.1:9/ready"]);
      expect(closed.status).toBe(1);
      expect(closed.output).toContain("Health check failed");
    });

    it("stores a pushed line with structured metadata and returns it through query_range", async () => {
      const run = randomUUID();
      const ts = `${BigInt(Date.now()) * 1_000_000n}`;
      await loki.push([
        { stream: { service_name: "loki-test", run }, values: [[ts, `hello ${run}`, { trace_id: "t-123", file: "a.ts" }]] },
      ]);
      const streams = await loki.waitFor(`{run="${run}"}`, 1);
      expect(streams).toHaveLength(1);
      // Structured metadata comes back as the 3rd element, not folded into the stream labels.
      expect(streams[0]?.stream).toMatchObject({ run, service_name: "loki-test" });
      expect(streams[0]?.stream).not.toHaveProperty("trace_id");
      const [gotTs, gotLine, meta] = streams[0]?.values[0] ?? [];
      expect([gotTs, gotLine]).toEqual([ts, `hello ${run}`]);
      // Loki adds detected_level itself (limits_config.discover_log_levels) when the stream has no level label.
      expect(meta).toEqual({ trace_id: "t-123", file: "a.ts", detected_level: "unknown" });
      // And it is queryable as a label filter without a parser.
      const filtered = await loki.queryRange(`{run="${run}"} | trace_id="t-123"`);
      expect(filtered[0]?.values).toHaveLength(1);
    });

    it("names container streams by compose service and bus streams by service (discover_service_name)", async () => {
      const run = randomUUID();
      const ts = `${BigInt(Date.now()) * 1_000_000n}`;
      await loki.push([
        { stream: { compose_service: "broker", container: "aixcl-broker-1", run }, values: [[ts, "container line"]] },
        { stream: { service: "billing", run }, values: [[ts, "bus line"]] },
      ]);
      const streams = await loki.waitFor(`{run="${run}"}`, 2);
      const names = Object.fromEntries(streams.map((s) => [s.values[0]?.[1], s.stream["service_name"]]));
      expect(names).toEqual({ "container line": "broker", "bus line": "billing" });
    });

    // What the consumer's crash bound (batches in flight sent twice) means for users, as the docs say it. A batch
    // is up to 1 MiB; re-sent, its entries are no longer in the stream's in-memory head block, and Loki stores
    // them again (measured: only a few entries re-sent at once into the head block are dropped as duplicates).
    it("keeps a re-sent batch: log queries return each entry once, metric queries count both copies", async () => {
      const run = randomUUID();
      const now = BigInt(Date.now()) * 1_000_000n;
      const pad = "x".repeat(250);
      const values = Array.from({ length: 2000 }, (_, i): [string, string] => [`${now + BigInt(i) * 1000n}`, `dup ${run} ${i} ${pad}`]);
      for (let i = 0; i < values.length; i += 500) await loki.push([{ stream: { service: "dup-test", run }, values: values.slice(i, i + 500) }]);
      await loki.push([{ stream: { service: "dup-test", run }, values: values.slice(0, 500) }]);
      expect(entryCount(await loki.waitFor(`{run="${run}"}`, 2000))).toBe(2000);
      const params = new URLSearchParams({ query: `sum(count_over_time({run="${run}"}[1h]))`, time: `${now + 10_000_000_000n}` });
      const body = (await (await fetch(`${loki.url}/loki/api/v1/query?${params}`)).json()) as { data: { result: { value: [number, string] }[] } };
      expect(body.data.result[0]?.value[1]).toBe("2500");
    });

    it("answers the volume endpoint Grafana's log-volume panels use", async () => {
      const run = randomUUID();
      await loki.push([{ stream: { service_name: "volume-test", run }, values: [[`${BigInt(Date.now()) * 1_000_000n}`, `v ${run}`]] }]);
      await loki.waitFor(`{run="${run}"}`, 1);
      const params = new URLSearchParams({ query: `{run="${run}"}`, start: `${BigInt(Date.now() - 3600_000) * 1_000_000n}`, end: `${BigInt(Date.now() + 1000) * 1_000_000n}` });
      const res = await fetch(`${loki.url}/loki/api/v1/index/volume?${params}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      expect(body.data.result.length).toBeGreaterThan(0);
      expect(Number(body.data.result[0]?.value[1])).toBeGreaterThan(0);
    });
  });
});
