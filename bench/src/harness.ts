/**
 * What the pipeline benchmark's runs share (bench/src/pipeline.ts runs them): the result record, starting and stopping
 * role processes, waiting for a sink, counting lines in Loki, the shared Loki, and CPU from /proc.
 */
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import type { ProfileSummary } from "./cpuprofile.js";
import type { LokiDisk, LokiStorePerLine, Received } from "./loki-store.js";
import { flushLoki, lokiDisk, lokiMetrics, receivedIn, storeDisk, storePerLine } from "./loki-store.js";
import { cpuMicros, peakRssBytes, role, rssBytes } from "./proc.js";
import type { LatencyHistogram, SeqTally } from "./tally.js";

/** The script every role process runs (its first argument names the role). */
export const ROLES_SCRIPT = fileURLToPath(new URL("./pipeline.js", import.meta.url));

export interface PublisherReport {
  sent: number;
  bytes: number;
  startMs: number;
  endMs: number;
  /** Sends refused with EAGAIN (NODROP back-pressure), each waited out and retried. */
  eagain: number;
}

/** Sequence numbers are grouped in blocks (`blk=`) so Loki can count them per block in one metric query. */
export function blockSizeFor(lines: number): number {
  return Math.max(1000, Math.ceil(lines / 400));
}

export interface SinkStats {
  received: number;
  distinct: number;
  lost: number;
  /** The first few sequence numbers that never arrived. */
  missing: number[];
  duplicated: number;
  foreign: number;
  pushes: number;
  /** Entries in the first accepted push. */
  firstAcceptMs: number;
  lastAcceptMs: number;
  latency: { p50: number; p99: number; max: number; samples: number };
  statuses: Record<string, number>;
}

export function sinkStats(tally: SeqTally, latency: LatencyHistogram, firstAcceptMs: number, lastAcceptMs: number): Omit<SinkStats, "pushes" | "statuses"> {
  return {
    received: tally.received,
    distinct: tally.distinct,
    lost: tally.lost,
    missing: tally.missing(),
    duplicated: tally.duplicated,
    foreign: tally.foreign,
    firstAcceptMs,
    lastAcceptMs,
    latency: { p50: latency.quantile(0.5), p99: latency.quantile(0.99), max: latency.maxMs, samples: latency.count },
  };
}

export interface RunResult {
  run: string;
  what: string;
  lines: number;
  /** Offered lines/s; undefined = as fast as possible. */
  offeredRate?: number;
  seconds: number;
  linesPerSec: number;
  mbPerSec: number;
  bytesPerLine: number;
  /** The shipper: our consumer, Promtail or the OpenTelemetry Collector. */
  shipper?: { name: string; cpuMicrosPerLine: number; cpuShareOfCore: number; peakRssMB: number };
  broker?: { cpuMicrosPerLine: number; peakRssMB: number };
  /**
   * Loki's CPU while the lines came in, and flushing them afterwards (bench/src/loki-store.ts), what it stored and
   * received per line.
   */
  loki?: {
    cpuMicrosPerLine: number;
    flushCpuMicrosPerLine?: number;
    store?: LokiStorePerLine;
    storeError?: string;
    /** Summed over its processes (BenchLoki.pids) when the run's lines had landed, before the flush; peak: each one's VmHWM since it started, summed. */
    rssMB?: number;
    peakRssMB?: number;
  };
  accepted: { distinct: number; lost: number; missing: number[]; duplicated: number; foreign: number; pushes: number; statuses: Record<string, number> };
  latencyMs: { p50: number; p99: number; max: number };
  /** Counted by LogQL in Loki itself. */
  inLoki?: { count: number; lost: number; surplus: number };
  /** CPU of the benchmark's own parties (publishers, receiver or proxy) per line: what they took from the two cores. */
  harnessCpuMicrosPerLine?: { publishers: number; sink: number };
  /** Bus messages the consumer received per line delivered: 1 for single entries, less with batches. */
  busMessagesPerLine?: number;
  consumer?: { dropped: Record<string, number>; retries: Record<string, number>; peakBufferMB: number; memoryAtPeakMB?: Record<string, number> };
  publishers?: { eagain: number; publishSeconds: number };
  profile?: ProfileSummary;
  note?: string;
  skipped?: string;
}

export const MB = 1e6;

/**
 * The Loki the runs ship into: one instance (testkit's startLoki, the shipped loki/loki-config.yml), or with --loki-ha
 * the HA profile (testkit's startLokiHa: three instances of loki/loki-ha.yml on one versitygw bucket). Its figures
 * are over all of it: CPU and memory summed over its processes, the disk of its store, every ingester flushed.
 */
export interface BenchLoki {
  /** How it was started, for the report. */
  readonly what: string;
  /**
   * Where shippers push and lines are counted. HA: the first instance. Natively there is no gateway (nginx runs only
   * in Docker), so that instance's distributor takes every push and replicates each stream to all three ingesters.
   */
  readonly url: string;
  /** Every instance's URL: the ones flushed, and whose distributor counters are summed. */
  readonly urls: string[];
  /** Pids of its processes now running (HA: the three Lokis and versitygw). */
  pids(): number[];
  disk(): LokiDisk;
  stop(): Promise<void>;
}

/** What the runs share: the Loki they ship into, the child processes and temp dirs to clean up. */
export interface Ctx {
  /** Loki shared by the Loki runs (started on first use). */
  loki?: BenchLoki;
  /** Start the HA profile's three Lokis instead of one (--loki-ha). */
  lokiHa?: boolean;
  lokiSkip?: string;
  children: Set<ChildProcess>;
  /** Holds every temp dir of the run, removed when the benchmark exits. */
  tmp: string;
}

export function runId(): string {
  return `b${Date.now().toString(36)}`;
}

/** Starts a role and waits for its first message. */
export async function startRole<T>(args: string[], ctx: Ctx): Promise<{ child: ChildProcess; ready: T; done: Promise<unknown> }> {
  const r = role<T>(ROLES_SCRIPT, args);
  ctx.children.add(r.child);
  r.child.once("exit", () => ctx.children.delete(r.child));
  return { child: r.child, ready: await r.ready, done: r.done };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function getStats(url: string): Promise<SinkStats> {
  return (await (await fetch(`${url}/bench/stats`)).json()) as SinkStats;
}

/** Waits until the sink has every line, or nothing new arrived for idleMs; prints progress every 5 s. */
export async function waitForSink(url: string, expected: number, label: string, idleMs: number, busy: () => boolean, onPoll?: () => Promise<void>): Promise<SinkStats> {
  let last = -1;
  let lastChange = Date.now();
  let lastReport = Date.now();
  for (;;) {
    const stats = await getStats(url);
    await onPoll?.();
    if (stats.distinct >= expected) return stats;
    const now = Date.now();
    if (stats.received !== last || busy()) {
      last = stats.received;
      lastChange = now;
    }
    if (now - lastChange > idleMs) return stats;
    if (now - lastReport >= 5000) {
      console.log(`    ${label}: ${stats.distinct.toLocaleString("en-US")} of ${expected.toLocaleString("en-US")} accepted`);
      lastReport = now;
    }
    await sleep(250);
  }
}

/** Sequence numbers per block counted by Loki itself, compared with what was sent. */
export async function countInLoki(lokiUrl: string, selector: string, run: string, blockSize: number, lines: number): Promise<{ count: number; lost: number; surplus: number }> {
  const query = `sum by (blk) (count_over_time(${selector} |= "run=${run} " | pattern "<_>blk=<blk> <_>" [1h]))`;
  const params = new URLSearchParams({ query, time: String((Date.now() + 1000) / 1000) });
  const res = await fetch(`${lokiUrl}/loki/api/v1/query?${params}`, { signal: AbortSignal.timeout(120_000) });
  const body = (await res.json()) as { data?: { result: { metric: { blk?: string }; value: [number, string] }[] }; error?: string };
  if (!res.ok || !body.data) throw new Error(`Loki count query answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  const blocks = Math.ceil(lines / blockSize);
  const counted = new Map(body.data.result.map((r) => [Number(r.metric.blk), Number(r.value[1])]));
  let count = 0;
  let lost = 0;
  let surplus = 0;
  for (let b = 0; b < blocks; b++) {
    const expected = Math.min(blockSize, lines - b * blockSize);
    const got = counted.get(b) ?? 0;
    count += got;
    if (got < expected) lost += expected - got;
    else surplus += got - expected;
  }
  return { count, lost, surplus };
}

export const safeCpu = (pid: number | undefined) => {
  try {
    return pid === undefined ? Number.NaN : cpuMicros(pid);
  } catch {
    return Number.NaN;
  }
};

/** utime+stime of all of Loki's processes, in µs (NaN when one cannot be read). */
export const lokiCpu = (loki: BenchLoki) => loki.pids().reduce((n, pid) => n + safeCpu(pid), 0);

function lokiRssMB(loki: BenchLoki): { rssMB: number; peakRssMB: number } {
  const sum = (read: (pid: number) => number) => {
    try {
      return loki.pids().reduce((n, pid) => n + read(pid), 0) / MB;
    } catch {
      return Number.NaN;
    }
  };
  return { rssMB: sum(rssBytes), peakRssMB: sum(peakRssBytes) };
}

export async function ensureLoki(ctx: Ctx): Promise<boolean> {
  if (ctx.loki) return true;
  if (ctx.lokiSkip) return false;
  const testkit = await import("@aixcl/testkit");
  for (const component of ctx.lokiHa ? (["loki", "versitygw"] as const) : (["loki"] as const)) {
    const need = testkit.requireComponent(component);
    if (need.path === undefined) {
      ctx.lokiSkip = need.skip;
      return false;
    }
  }
  if (ctx.lokiHa) {
    console.log("  starting Loki HA (shipped loki/loki-ha.yml: three instances, replication 3, on versitygw; pushes go to loki-1)...");
    const ha = await testkit.startLokiHa();
    const urls = ha.instances.map((x) => x.url);
    ctx.loki = {
      what: "HA: 3 instances of loki/loki-ha.yml + versitygw, pushes to loki-1",
      url: urls[0] as string,
      urls,
      pids: () => ha.pids(),
      disk: () => storeDisk(ha.store.bucketDir, ha.instances.map((x) => x.dataDir)),
      stop: () => ha.stop(),
    };
  } else {
    console.log("  starting Loki (shipped loki/loki-config.yml)...");
    const loki = await testkit.startLoki();
    ctx.loki = {
      what: "single: loki/loki-config.yml",
      url: loki.url,
      urls: [loki.url],
      pids: () => [loki.pid()].filter((pid): pid is number => pid !== undefined),
      disk: () => lokiDisk(loki.dataDir),
      stop: () => loki.stop(),
    };
  }
  return true;
}

async function lokiReceived(loki: BenchLoki): Promise<Received> {
  return receivedIn(...(await Promise.all(loki.urls.map(lokiMetrics))));
}

/** Loki just before a run's lines start: its CPU, disk and distributor counters. */
export interface LokiMark {
  cpu: number;
  disk: LokiDisk;
  received: Received;
}

export async function markLoki(loki: BenchLoki): Promise<LokiMark> {
  return { cpu: lokiCpu(loki), disk: loki.disk(), received: await lokiReceived(loki) };
}

/**
 * Loki's part of a run whose `lines` are all in Loki (and counted), given its CPU at the end of the run: flushes
 * and measures what that cost and stored. A flush that fails leaves the run's other figures standing.
 */
export async function lokiFigures(loki: BenchLoki, mark: LokiMark, runEndCpu: number, lines: number): Promise<NonNullable<RunResult["loki"]>> {
  const cpuMicrosPerLine = (runEndCpu - mark.cpu) / lines;
  const rss = lokiRssMB(loki);
  try {
    const cpu0 = lokiCpu(loki);
    const flushSeconds = await flushLoki(loki.urls, () => loki.disk());
    const flushCpuMicrosPerLine = (lokiCpu(loki) - cpu0) / lines;
    const after = { disk: loki.disk(), received: await lokiReceived(loki) };
    return { cpuMicrosPerLine, flushCpuMicrosPerLine, store: storePerLine(mark, after, lines, flushSeconds), ...rss };
  } catch (e) {
    return { cpuMicrosPerLine, storeError: (e as Error).message, ...rss };
  }
}

export function sinkSummary(stats: SinkStats): RunResult["accepted"] {
  return { distinct: stats.distinct, lost: stats.lost, missing: stats.missing, duplicated: stats.duplicated, foreign: stats.foreign, pushes: stats.pushes, statuses: stats.statuses };
}

export function skipped(run: string, what: string, reason: string): RunResult {
  const nan = Number.NaN;
  return {
    run,
    what,
    lines: 0,
    seconds: nan,
    linesPerSec: nan,
    mbPerSec: nan,
    bytesPerLine: nan,
    accepted: { distinct: 0, lost: 0, missing: [], duplicated: 0, foreign: 0, pushes: 0, statuses: {} },
    latencyMs: { p50: nan, p99: nan, max: nan },
    skipped: reason,
  };
}
