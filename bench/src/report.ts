/** The pipeline benchmark's printed report: the table of runs and our figures as ratios of each reference shipper's. */
import type { FileShipper } from "./file-shippers.js";
import { FILE_SHIPPERS } from "./file-shippers.js";
import type { RunResult } from "./harness.js";

/** "P " for Promtail's rows, "O " and "M " for the collector's two setups; nothing for our consumer's. */
const tagOf = (shipper: string) => {
  const tag = FILE_SHIPPERS.find((s) => s.name === shipper)?.tag;
  return tag ? `${tag} ` : "";
};

export const fmt = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? "-" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }));

/**
 * CPU per line from the moment a line is handed over to the moment Loki has it stored: the shipper's (for ours the
 * consumer's and the broker's) plus Loki's, taking the lines in and flushing them. Undefined for a run that did not
 * go into Loki or whose flush was not measured.
 */
export function wholePathCpu(r: RunResult): number | undefined {
  if (!r.shipper || r.loki?.flushCpuMicrosPerLine === undefined) return undefined;
  return r.shipper.cpuMicrosPerLine + (r.broker?.cpuMicrosPerLine ?? 0) + r.loki.cpuMicrosPerLine + r.loki.flushCpuMicrosPerLine;
}

export function row(r: RunResult): string[] {
  if (r.skipped) return [r.run, `skipped: ${r.skipped}`];
  const lost = r.inLoki ? `${fmt(r.accepted.lost)} / ${fmt(r.inLoki.lost)}` : fmt(r.accepted.lost);
  return [
    r.run,
    r.offeredRate ? fmt(r.offeredRate) : "max",
    fmt(r.linesPerSec),
    fmt(r.mbPerSec, 1),
    r.shipper ? `${tagOf(r.shipper.name)}${fmt(r.shipper.cpuMicrosPerLine, 1)}` : "-",
    r.broker ? fmt(r.broker.cpuMicrosPerLine, 1) : "-",
    r.loki ? fmt(r.loki.cpuMicrosPerLine, 1) : "-",
    fmt(r.loki?.flushCpuMicrosPerLine, 1),
    fmt(wholePathCpu(r), 1),
    fmt(r.loki?.store?.chunksBytesPerLine, 1),
    fmt(r.loki?.store?.structuredMetadataBytesPerLine),
    r.shipper ? fmt(r.shipper.peakRssMB) : "-",
    r.broker ? fmt(r.broker.peakRssMB) : "-",
    fmt(r.latencyMs.p50, 1),
    fmt(r.latencyMs.p99, 1),
    lost,
    fmt(r.accepted.duplicated),
  ];
}

const HEADER = ["run", "offered/s", "lines/s", "MB/s", "ship µs/line", "broker µs/l", "Loki µs/l", "flush µs/l", "whole µs/l", "chunks B/l", "meta B/l", "ship RSS MB", "broker RSS", "p50 ms", "p99 ms", "lost", "dup"];

export function table(rows: string[][]): string {
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length > 2).map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => (cells.length === 2 ? `${(cells[0] as string).padEnd(widths[0] as number)}  ${cells[1]}` : cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  "));
  return [line(HEADER), ...rows.map(line)].join("\n");
}

/** Ours divided by a reference shipper's, in one mode (as fast as it goes, or paced); below 1 is less than theirs. */
export interface ReferenceRatio {
  reference: string;
  mode: "max" | "paced";
  offeredRate?: number;
  linesPerSec: number;
  /** The consumer's CPU per line, and with the broker's added (our pipeline needs both; the reference, one process). */
  cpuPerLine: number;
  cpuPerLineWithBroker: number;
  /** Shipper (with the broker) + Loki, taking the lines in and flushing them (wholePathCpu); when both measured it. */
  wholePathCpu?: number;
  peakRss: number;
  /** Publish -> accepted by Loki; paced runs only (a backlog's latency is its queueing). */
  p99?: number;
}

/** loki-max against <shipper>-max and loki-paced against <shipper>-paced, for each reference shipper that ran. */
export function referenceRatios(results: RunResult[], shippers: FileShipper[]): ReferenceRatio[] {
  const get = (run: string) => results.find((r) => r.run === run && !r.skipped);
  const out: ReferenceRatio[] = [];
  for (const shipper of shippers) {
    for (const mode of ["max", "paced"] as const) {
      const [ours, theirs] = [get(`loki-${mode}`), get(`${shipper.name}-${mode}`)];
      if (!ours?.shipper || !theirs?.shipper) continue;
      const cpu = theirs.shipper.cpuMicrosPerLine;
      const [ourWhole, theirWhole] = [wholePathCpu(ours), wholePathCpu(theirs)];
      out.push({
        reference: shipper.title,
        mode,
        ...(theirs.offeredRate !== undefined && { offeredRate: theirs.offeredRate }),
        linesPerSec: ours.linesPerSec / theirs.linesPerSec,
        cpuPerLine: ours.shipper.cpuMicrosPerLine / cpu,
        cpuPerLineWithBroker: (ours.shipper.cpuMicrosPerLine + (ours.broker?.cpuMicrosPerLine ?? 0)) / cpu,
        ...(ourWhole !== undefined && theirWhole !== undefined && { wholePathCpu: ourWhole / theirWhole }),
        peakRss: ours.shipper.peakRssMB / theirs.shipper.peakRssMB,
        ...(mode === "paced" && { p99: ours.latencyMs.p99 / theirs.latencyMs.p99 }),
      });
    }
  }
  return out;
}

/** The run's Loki figures beyond the table's: what it received and stored per line, and what the flush took. */
export function lokiDetail(r: RunResult): string | undefined {
  const loki = r.loki;
  if (!loki) return undefined;
  const rss = loki.rssMB === undefined ? "" : `; RSS ${fmt(loki.rssMB)} MB after the run (peak ${fmt(loki.peakRssMB)}, summed over its processes)`;
  if (!loki.store) return `Loki: flush not measured (${loki.storeError ?? "no flush"})${rss}`;
  const st = loki.store;
  const index = st.indexFilesBytes !== 0 ? `index files ${st.indexFilesBytes > 0 ? "+" : ""}${fmt(st.indexFilesBytes)} bytes (a TSDB head rotation or compaction landed in this run: not this run's alone)` : "index: in the TSDB WAL until its head rotates, files not measured";
  return `Loki received ${fmt(st.receivedBytesPerLine)} B/line (structured metadata ${fmt(st.structuredMetadataBytesPerLine)}), ${fmt(st.receivedLinesPerLine, 3)} lines per line; stored ${fmt(st.chunksBytesPerLine, 1)} B/line in chunks, ${fmt(st.indexWalBytesPerLine, 2)} B/line in the index WAL; ${index}; flush ${fmt(loki.flushCpuMicrosPerLine, 1)} µs/line, ${fmt(st.flushSeconds, 1)} s${rss}`;
}

export function formatRatios(ratios: ReferenceRatio[]): string {
  const label = (r: ReferenceRatio) => `${r.reference}, ${r.mode === "max" ? "max" : `${fmt(r.offeredRate)}/s`}:`;
  const width = Math.max(...ratios.map((r) => label(r).length));
  return ratios
    .map((r) => `  ${label(r).padEnd(width)}  lines/s ${fmt(r.linesPerSec, 2)}  CPU/line ${fmt(r.cpuPerLine, 2)} (with the broker ${fmt(r.cpuPerLineWithBroker, 2)})${r.wholePathCpu === undefined ? "" : `  whole path CPU/line ${fmt(r.wholePathCpu, 2)}`}  peak RSS ${fmt(r.peakRss, 2)}${r.p99 === undefined ? "" : `  p99 ${fmt(r.p99, 2)}`}`)
    .join("\n");
}
