import { describe, expect, it } from "vitest";
import { FILE_SHIPPERS, fileShipperOf, OTELCOL, OTELCOL_META, PROMTAIL } from "../src/file-shippers.js";
import type { RunResult } from "../src/harness.js";
import { skipped } from "../src/harness.js";
import { formatRatios, lokiDetail, referenceRatios, row, wholePathCpu } from "../src/report.js";

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
    expect(FILE_SHIPPERS.map((s) => s.tag)).toEqual(["P", "O", "M"]);
    expect(row(results[2] as RunResult)[4]).toBe("O 15.0");
    expect(row(results[0] as RunResult)[4]).toBe("20.0");
    expect(row(results[4] as RunResult)).toEqual(["promtail-paced", "skipped: Promtail is not built"]);
  });
});

describe("the whole path", () => {
  const store = { chunksBytesPerLine: 95, indexWalBytesPerLine: 0.13, indexFilesBytes: 0, receivedBytesPerLine: 448, structuredMetadataBytesPerLine: 208, receivedLinesPerLine: 1, flushSeconds: 0.7 };
  const ours = result("loki-max", "consumer", 11, { broker: { cpuMicrosPerLine: 2, peakRssMB: 50 }, loki: { cpuMicrosPerLine: 20, flushCpuMicrosPerLine: 4, store } });
  const theirs = result("otelcol-meta-max", "otelcol-meta", 15, { loki: { cpuMicrosPerLine: 13, flushCpuMicrosPerLine: 2, store } });

  it("adds the shipper's, the broker's and Loki's CPU per line, flush included; undefined where Loki's flush was not measured", () => {
    expect(wholePathCpu(ours)).toBe(37);
    expect(wholePathCpu(theirs)).toBe(30);
    expect(wholePathCpu(result("decode-max", "consumer", 11))).toBeUndefined();
    expect(wholePathCpu(result("loki-max", "consumer", 11, { loki: { cpuMicrosPerLine: 20, storeError: "flush had not settled" } }))).toBeUndefined();
  });

  it("shows it, the flush, the chunk bytes and the structured metadata bytes per line in the table, and as a ratio", () => {
    expect(row(ours).slice(4, 11)).toEqual(["11.0", "2.0", "20.0", "4.0", "37.0", "95.0", "208"]);
    const ratios = referenceRatios([ours, theirs, result("otelcol-meta-paced", "otelcol-meta", 15, { offeredRate: 10_000 })], [OTELCOL_META]);
    expect(ratios).toHaveLength(1);
    expect(ratios[0]?.wholePathCpu).toBeCloseTo(37 / 30, 10);
    expect(formatRatios(ratios)).toContain("whole path CPU/line 1.23");
  });

  it("says what Loki stored and received, and that the index is not measured unless its files were written", () => {
    expect(lokiDetail(ours)).toBe("Loki received 448 B/line (structured metadata 208), 1.000 lines per line; stored 95.0 B/line in chunks, 0.13 B/line in the index WAL; index: in the TSDB WAL until its head rotates, files not measured; flush 4.0 µs/line, 0.7 s");
    const rotated = result("loki-max", "consumer", 11, { loki: { cpuMicrosPerLine: 20, flushCpuMicrosPerLine: 4, store: { ...store, indexFilesBytes: 1234 } } });
    expect(lokiDetail(rotated)).toContain("index files +1,234 bytes (a TSDB head rotation or compaction landed in this run: not this run's alone)");
    const compacted = result("loki-max", "consumer", 11, { loki: { cpuMicrosPerLine: 20, flushCpuMicrosPerLine: 4, store: { ...store, indexFilesBytes: -50 } } });
    expect(lokiDetail(compacted)).toContain("index files -50 bytes");
    expect(lokiDetail(result("loki-max", "consumer", 11, { loki: { cpuMicrosPerLine: 20, storeError: "POST /flush answered 500" } }))).toBe("Loki: flush not measured (POST /flush answered 500)");
    expect(lokiDetail(result("decode-max", "consumer", 11))).toBeUndefined();
  });

  it("runs each file shipper's setup by its run's name", () => {
    expect(fileShipperOf("otelcol-max")).toBe(OTELCOL);
    expect(fileShipperOf("otelcol-meta-paced")).toBe(OTELCOL_META);
    expect(fileShipperOf("promtail-paced")).toBe(PROMTAIL);
    expect(() => fileShipperOf("loki-max")).toThrow(/no file shipper runs loki-max/);
  });
});
