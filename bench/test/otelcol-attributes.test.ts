/**
 * bench/otelcol/config-attributes.yaml (the otelcol-meta-* runs) in the OpenTelemetry Collector built from
 * bench/otelcol/builder-config.yaml, into a real Loki's /otlp/v1/logs: a benchmark line's fields arrive as the
 * structured metadata our consumer gives the same entry, and its message as the line.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printComponentLogsOnFailure, requireComponents, runComponent, startLoki, startOtelcol, tempDir, type LokiHandle, type OtelcolHandle } from "@aixcl/testkit";
import { OTELCOL_ATTRIBUTES_CONFIG } from "../src/file-shippers.js";
import { fieldsOf, jsonLine, messageOf, shapeOf } from "../src/workload.js";

const need = requireComponents("otelcol", "loki");
if (need.skip) console.warn(`[skipped] OpenTelemetry Collector attributes setup: ${need.skip}`);
printComponentLogsOnFailure();

describe.skipIf(need.skip !== undefined)("bench/otelcol/config-attributes.yaml in the OpenTelemetry Collector", () => {
  let loki: LokiHandle;
  let otelcol: OtelcolHandle;
  const run = `a${Date.now().toString(36)}`;
  const seqs = [3, 4242];
  const t = 1_763_700_000_000.5;

  beforeAll(async () => {
    loki = await startLoki();
    const logDir = tempDir("otelcol-attributes");
    writeFileSync(join(logDir, "app.log"), `${seqs.map((seq) => jsonLine(run, 1000, seq, t)).join("\n")}\nnot json ${run}\n`);
    otelcol = await startOtelcol({ lokiUrl: loki.url, logDir, configFile: OTELCOL_ATTRIBUTES_CONFIG });
  });
  afterAll(async () => {
    await otelcol?.stop();
    await loki?.stop();
  });

  it("passes `otelcol validate`", async () => {
    const r = await runComponent("otelcol", ["validate", `--config=${OTELCOL_ATTRIBUTES_CONFIG}`]);
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });

  it("stores the message as the line and the line's fields as structured metadata, under our consumer's names", async () => {
    const streams = await loki.waitFor(`{service_name=~".+"} |= "${run}"`, seqs.length + 1, 20_000);
    const byLine = new Map(streams.flatMap((s) => s.values.map(([, line, meta]) => [line, { service: s.stream.service_name, meta: meta ?? {} }])));
    for (const seq of seqs) {
      const got = byLine.get(messageOf(run, 1000, seq, t));
      expect(got?.service).toBe(shapeOf(seq).service);
      expect(got?.meta).toMatchObject({ ...fieldsOf(seq), severity_text: shapeOf(seq).level });
      // level became the severity, service the stream, msg the line: none of them is metadata too.
      for (const key of ["level", "service", "msg"]) expect(got?.meta).not.toHaveProperty(key);
    }
    // A line that is not JSON passes through as it was.
    expect(byLine.get(`not json ${run}`)?.service).toBe("unknown_service");
  });
});
