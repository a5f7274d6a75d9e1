/**
 * bench/otelcol/config.yaml in the OpenTelemetry Collector built from bench/otelcol/builder-config.yaml, sending to
 * the real Loki through its OTLP endpoint: the benchmark's second reference shipper does what its config says.
 */
import { randomUUID } from "node:crypto";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printComponentLogsOnFailure, requireComponents, runComponent, shippedConfig, startLoki, startOtelcol, tempDir, type LokiHandle, type OtelcolHandle } from "@aixcl/testkit";

const need = requireComponents("otelcol", "loki");
if (need.skip) console.warn(`[skipped] OpenTelemetry Collector tests: ${need.skip}`);
printComponentLogsOnFailure();

const validate = (file: string) => runComponent("otelcol", ["validate", `--config=${file}`]);

describe.skipIf(need.skip !== undefined)("bench/otelcol/config.yaml in the OpenTelemetry Collector", () => {
  it("passes `otelcol validate`", async () => {
    const r = await validate(shippedConfig.otelcol);
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });

  it("`validate` rejects a broken variant (the check can fail)", async () => {
    const bad = join(tempDir("otelcol-bad"), "config.yaml");
    writeFileSync(bad, readFileSync(shippedConfig.otelcol, "utf8").replace("flush_timeout: 1s", "flush_timeout: soon"));
    const r = await validate(bad);
    expect(r.output).toContain("flush_timeout");
    expect(r.status).not.toBe(0);
  });

  describe("tailing files into a real Loki's /otlp/v1/logs", () => {
    let loki: LokiHandle;
    let otelcol: OtelcolHandle;
    let logDir: string;
    const run = randomUUID();
    const json = (level: string, service: string, msg: string) => JSON.stringify({ level, service, msg: `${msg} ${run}` });

    beforeAll(async () => {
      loki = await startLoki();
      logDir = tempDir("otelcol-logs");
      // Lines written before the collector starts are read too (start_at: beginning), as Promtail reads them.
      writeFileSync(join(logDir, "app.log"), `${json("info", "checkout", "before start")}\n`);
      otelcol = await startOtelcol({ lokiUrl: loki.url, logDir });
    });
    afterAll(async () => {
      await otelcol?.stop();
      await loki?.stop();
    });

    it("ships every line unchanged, labelled by the JSON line's service, its level as the record's severity", async () => {
      const lines = [
        json("debug", "checkout", "debug line"),
        json("warning", "checkout", "warning line"),
        json("error", "checkout", "error line"),
        json("critical", "checkout", "critical line"),
        json("info", "payments", "other service"),
      ];
      appendFileSync(join(logDir, "app.log"), `${lines.join("\n")}\n`);
      const streams = await loki.waitFor(`{service_name=~"checkout|payments"} |= "${run}"`, 6, 20_000);
      expect(streams.map((s) => s.stream.service_name).sort()).toEqual(["checkout", "payments"]);
      // The resource carries service.name only: no other label.
      for (const s of streams) expect(Object.keys(s.stream)).toEqual(["service_name"]);
      const byLine = new Map(streams.flatMap((s) => s.values).map(([, line, meta]) => [line, meta ?? {}]));
      expect([...byLine.keys()].sort()).toEqual([json("info", "checkout", "before start"), ...lines].sort());
      const levels = Object.fromEntries([...byLine].map(([line, meta]) => [JSON.parse(line).level as string, [meta.severity_number, meta.severity_text, meta.detected_level]]));
      // OpenTelemetry severity numbers: DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21 (critical, by the config's mapping).
      expect(levels).toEqual({
        debug: ["5", "debug", "debug"],
        info: ["9", "info", "info"],
        warning: ["13", "warning", "warn"],
        error: ["17", "error", "error"],
        critical: ["21", "critical", "critical"],
      });
      // The file's name rides along as structured metadata (Promtail's `filename` label); the parsed JSON does not.
      const meta = byLine.get(lines[0] as string) ?? {};
      expect(meta.log_file_name).toBe("app.log");
      expect(Object.keys(meta).filter((k) => k.startsWith("json"))).toEqual([]);
    });

    it("passes a line that is not JSON through untouched, under Loki's unknown_service", async () => {
      appendFileSync(join(logDir, "app.log"), `plain text ${run}\n`);
      const streams = await loki.waitFor(`{service_name="unknown_service"} |= "${run}"`, 1, 20_000);
      expect(streams[0]?.values.map(([, line]) => line)).toEqual([`plain text ${run}`]);
    });

    it("counts what it sent in its own /metrics", async () => {
      // Every sample of a metric, whatever its labels (exporter, otel_scope_name, ...), summed.
      const total = async (name: string) => {
        const text = await (await fetch(otelcol.metricsUrl)).text();
        return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].reduce((n, m) => n + Number(m[1]), 0);
      };
      await expect.poll(() => total("otelcol_exporter_sent_log_records"), { timeout: 15_000 }).toBeGreaterThanOrEqual(7);
      expect(await total("otelcol_exporter_send_failed_log_records")).toBe(0);
    });
  });
});
