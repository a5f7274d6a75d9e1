import { describe, expect, it } from "vitest";
import { FILE_SHIPPERS, OTELCOL, PROMTAIL } from "../src/file-shippers.js";
import type { RunResult } from "../src/harness.js";
import { skipped } from "../src/harness.js";
import { formatRatios, referenceRatios, row } from "../src/report.js";

const result = (run: string, shipper: string, cpu: number, extra: Partial<RunResult> = {}): RunResult => ({
  run,
  what: run,
  lines: 1000,
  seconds: 1,
  linesPerSec: 1000,
  mbPerSec: 1,
  bytesPerLine: 300,
  shipper: { name: shipper, cpuMicrosPerLine: cpu, cpuShareOfCore: 0.1, peakRssMB: 100 },
  accepted: { distinct: 1000, lost: 0, missing: [], duplicated: 0, foreign: 0, pushes: 1, statuses: {} },
  latencyMs: { p50: 100, p99: 400, max: 500 },
  ...extra,
});

describe("ours against each reference shipper", () => {
  const results = [
    result("loki-max", "consumer", 20, { broker: { cpuMicrosPerLine: 10, peakRssMB: 50 }, linesPerSec: 3000 }),
    result("promtail-max", "promtail", 40, { linesPerSec: 1500 }),
    result("otelcol-max", "otelcol", 15, { linesPerSec: 6000, shipper: { name: "otelcol", cpuMicrosPerLine: 15, cpuShareOfCore: 0.1, peakRssMB: 200 } }),
    result("loki-paced", "consumer", 30, { offeredRate: 10_000, broker: { cpuMicrosPerLine: 20, peakRssMB: 50 }, latencyMs: { p50: 200, p99: 500, max: 900 } }),
    skipped("promtail-paced", "promtail paced", "Promtail is not built"),
    result("otelcol-paced", "otelcol", 20, { offeredRate: 10_000, latencyMs: { p50: 300, p99: 1000, max: 1200 } }),
  ];

  it("pairs loki-max with each <shipper>-max and loki-paced with <shipper>-paced, leaving out skipped runs", () => {
    const ratios = referenceRatios(results, [PROMTAIL, OTELCOL]);
    expect(ratios.map((r) => `${r.reference} ${r.mode}`)).toEqual(["Promtail max", "OpenTelemetry Collector max", "OpenTelemetry Collector paced"]);
    expect(ratios[0]).toEqual({ reference: "Promtail", mode: "max", linesPerSec: 2, cpuPerLine: 0.5, cpuPerLineWithBroker: 0.75, peakRss: 1 });
    expect(ratios[1]).toMatchObject({ linesPerSec: 0.5, cpuPerLine: 20 / 15, cpuPerLineWithBroker: 2, peakRss: 0.5 });
    // Latency compared only where lines arrive at a set rate: a backlog's latency is its queueing.
    expect(ratios[2]).toMatchObject({ offeredRate: 10_000, cpuPerLine: 1.5, cpuPerLineWithBroker: 2.5, p99: 0.5 });
    expect(formatRatios(ratios).split("\n")[2]).toBe("  OpenTelemetry Collector, 10,000/s:  lines/s 1.00  CPU/line 1.50 (with the broker 2.50)  peak RSS 1.00  p99 0.50");
  });

  it("marks each reference shipper's rows in the table", () => {
    expect(FILE_SHIPPERS.map((s) => s.tag)).toEqual(["P", "O"]);
    expect(row(results[2] as RunResult)[4]).toBe("O 15.0");
    expect(row(results[0] as RunResult)[4]).toBe("20.0");
    expect(row(results[4] as RunResult)).toEqual(["promtail-paced", "skipped: Promtail is not built"]);
  });
});
