/**
 * The reference shippers that read log files, as applications write them, and push to Loki: Promtail (the stack's
 * own, pushing to /loki/api/v1/push) and the OpenTelemetry Collector (bench/otelcol, pushing to /otlp/v1/logs). Both
 * run from the configs we ship, read the same files, and go through the same proxy, so their figures compare with
 * each other's and with our pipeline's (bench/src/pipeline.ts).
 */
import { appendFileSync, closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import type { ComponentName } from "@aixcl/testkit";
import type { Ctx, PublisherReport, RunResult } from "./harness.js";
import { blockSizeFor, countInLoki, ensureLoki, lokiCpu, lokiFigures, markLoki, MB, runId, safeCpu, sinkSummary, skipped, startRole, stopChild, waitForSink } from "./harness.js";
import { peakRssBytes } from "./proc.js";
import { jsonLine, nowMs, SERVICES, shapeOf } from "./workload.js";

export interface FileShipper {
  /** In results and run names: promtail, otelcol. */
  name: string;
  title: string;
  /** One letter marking its rows in the table. */
  tag: string;
  component: ComponentName;
  /** LogQL stream selector of what it ships, for counting lines in Loki. */
  selector: string;
  /** Starts it from its shipped config, tailing dir/*.log and pushing to lokiUrl (the proxy). */
  start(lokiUrl: string, dir: string): Promise<{ pid(): number | undefined; stop(): Promise<void> }>;
}

export const PROMTAIL: FileShipper = {
  name: "promtail",
  title: "Promtail",
  tag: "P",
  component: "promtail",
  // The shipped `system` job labels its lines job="varlogs".
  selector: '{job="varlogs"}',
  start: async (lokiUrl, dir) => (await import("@aixcl/testkit")).startPromtail({ lokiUrl, varLogDir: dir }),
};

export const OTELCOL: FileShipper = {
  name: "otelcol",
  title: "OpenTelemetry Collector",
  tag: "O",
  component: "otelcol",
  // bench/otelcol/config.yaml makes each JSON line's `service` the resource's service.name: Loki's service_name.
  selector: '{service_name=~".+"}',
  start: async (lokiUrl, dir) => (await import("@aixcl/testkit")).startOtelcol({ lokiUrl, logDir: dir }),
};

export const OTELCOL_ATTRIBUTES_CONFIG = fileURLToPath(new URL("../otelcol/config-attributes.yaml", import.meta.url));

/**
 * The collector in its other natural setup (bench/otelcol/config-attributes.yaml): each JSON line's fields stay the
 * record's attributes and its message becomes the body, so Loki's OTLP endpoint stores the fields as structured
 * metadata, as our consumer stores the same entries' fields.
 */
export const OTELCOL_META: FileShipper = {
  name: "otelcol-meta",
  title: "OpenTelemetry Collector with attributes",
  tag: "M",
  component: "otelcol",
  selector: OTELCOL.selector,
  start: async (lokiUrl, dir) => (await import("@aixcl/testkit")).startOtelcol({ lokiUrl, logDir: dir, configFile: OTELCOL_ATTRIBUTES_CONFIG }),
};

export const FILE_SHIPPERS = [PROMTAIL, OTELCOL, OTELCOL_META];

/** The shipper of a run named <shipper>-max or <shipper>-paced. */
export function fileShipperOf(run: string): FileShipper {
  const shipper = FILE_SHIPPERS.find((s) => run === `${s.name}-max` || run === `${s.name}-paced`);
  if (!shipper) throw new Error(`no file shipper runs ${run}`);
  return shipper;
}

/**
 * A shipper from files into the shared Loki through the proxy, with its shipped config, tailing one JSON-lines file
 * per service (both a backlog appended at once and lines appended at a steady rate, by the writer role).
 */
export async function fileShipperRun(ctx: Ctx, run: string, what: string, shipper: FileShipper, opts: { lines: number; rate: number }): Promise<RunResult> {
  if (!(await ensureLoki(ctx))) return skipped(run, what, `Loki: ${ctx.lokiSkip}`);
  const testkit = await import("@aixcl/testkit");
  const need = testkit.requireComponent(shipper.component);
  if (need.path === undefined) return skipped(run, what, `${shipper.title}: ${need.skip}`);
  const loki = ctx.loki as NonNullable<Ctx["loki"]>;
  const runTag = runId();
  const blockSize = blockSizeFor(opts.lines);
  const dir = mkdtempSync(join(ctx.tmp, `${shipper.name}-logs-`));
  // The files exist before the shipper starts: Promtail finds new files only on its periodic glob (every 10 s).
  for (const s of SERVICES) writeFileSync(join(dir, `${s}.log`), "");
  const proxy = await startRole<{ url: string }>(["receiver", "proxy", String(opts.lines), loki.url], ctx);
  const running = await shipper.start(proxy.ready.url, dir);
  const pid = running.pid();
  const lokiMark = await markLoki(loki);
  const cpu0 = safeCpu(pid);
  let startMs: number;
  let bytes = 0;
  let writing = Promise.resolve();
  if (opts.rate > 0) {
    const writer = await startRole<unknown>(["writer", JSON.stringify({ dir, total: opts.lines, rate: opts.rate, run: runTag, blockSize } satisfies WriterPlan)], ctx);
    startMs = nowMs();
    writer.child.send({ go: true });
    writing = writer.done.then((r) => {
      bytes = (r as PublisherReport).bytes;
    });
  } else {
    // The whole backlog at once: one append per file.
    startMs = nowMs();
    const files = new Map<string, string[]>();
    for (let seq = 0; seq < opts.lines; seq++) {
      const s = shapeOf(seq).service;
      let list = files.get(s);
      if (!list) files.set(s, (list = []));
      list.push(jsonLine(runTag, blockSize, seq, nowMs()));
    }
    for (const [s, list] of files) {
      const text = `${list.join("\n")}\n`;
      bytes += Buffer.byteLength(text);
      appendFileSync(join(dir, `${s}.log`), text);
    }
  }
  let writerBusy = true;
  void writing.finally(() => (writerBusy = false));
  const stats = await waitForSink(proxy.ready.url, opts.lines, run, 15_000, () => writerBusy);
  await writing;
  const endMs = stats.lastAcceptMs || nowMs();
  const cpu = { shipper: safeCpu(pid) - cpu0, lokiAtEnd: lokiCpu(loki) };
  const rss = pid ? peakRssBytes(pid) : Number.NaN;
  const inLoki = await countInLoki(loki.url, shipper.selector, runTag, blockSize, opts.lines);
  await running.stop();
  await stopChild(proxy.child);
  rmSync(dir, { recursive: true, force: true });
  const lokiPart = await lokiFigures(loki, lokiMark, cpu.lokiAtEnd, stats.distinct);
  const seconds = (endMs - startMs) / 1000;
  return {
    run,
    what,
    lines: opts.lines,
    ...(opts.rate > 0 && { offeredRate: opts.rate }),
    seconds,
    linesPerSec: stats.distinct / seconds,
    mbPerSec: (stats.distinct * (bytes / opts.lines)) / seconds / MB,
    bytesPerLine: bytes / opts.lines,
    shipper: { name: shipper.name, cpuMicrosPerLine: cpu.shipper / stats.distinct, cpuShareOfCore: cpu.shipper / 1e6 / seconds, peakRssMB: rss / MB },
    loki: lokiPart,
    accepted: sinkSummary(stats),
    latencyMs: stats.latency,
    inLoki,
  };
}

export interface WriterPlan {
  dir: string;
  total: number;
  rate: number;
  run: string;
  blockSize: number;
}

/** The application side of the file shippers' paced runs: appends JSON lines to one file per service at a steady rate. */
export async function writerRole(plan: WriterPlan): Promise<void> {
  const fds = new Map<string, number>(SERVICES.map((s) => [s, openSync(join(plan.dir, `${s}.log`), "a")]));
  const go = new Promise<void>((resolve) => process.once("message", () => resolve()));
  process.send?.({ ready: true });
  await go;
  const startMs = nowMs();
  let written = 0;
  let bytes = 0;
  while (written < plan.total) {
    const due = Math.min(plan.total, Math.floor(((nowMs() - startMs) * plan.rate) / 1000) + 1);
    if (written >= due) {
      await sleep(2);
      continue;
    }
    const chunks = new Map<string, string[]>();
    for (; written < due; written++) {
      const service = shapeOf(written).service;
      let list = chunks.get(service);
      if (!list) chunks.set(service, (list = []));
      list.push(jsonLine(plan.run, plan.blockSize, written, nowMs()));
    }
    for (const [service, lines] of chunks) {
      const text = `${lines.join("\n")}\n`;
      bytes += Buffer.byteLength(text);
      writeSync(fds.get(service) as number, text);
    }
  }
  for (const fd of fds.values()) closeSync(fd);
  process.send?.({ sent: written, bytes, startMs, endMs: nowMs(), eagain: 0 } satisfies PublisherReport);
}
