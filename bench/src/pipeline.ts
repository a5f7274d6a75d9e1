/**
 * End-to-end benchmark: throughput, CPU, memory, latency and loss of the bus -> consumer -> Loki pipeline, side by
 * side with two reference shippers reading the same lines from files into the same real Loki: Promtail, and the
 * OpenTelemetry Collector into Loki's OTLP endpoint (bench/src/file-shippers.ts). Every party runs in its own
 * process: publishers, the broker and the consumer (each its dist/main.js with its shipped config), a receiver, Loki,
 * the shippers.
 *
 *   npm run bench [-- --quick] [--runs ceiling,decode-max,...] [--publishers 2] [--rate 50000] [--duration 60]
 *                 [--lines 300000] [--loki-rate 10000] [--loki-duration 30] [--profile] [--out file.json]
 *
 * Runs: see RUNS below. Measurement, in short:
 * - lines/s: entries accepted by the sink / (last acceptance - moment the lines became available: publishers
 *   started, or lines appended to the shippers' files); MB/s: the same for the input bytes (bus frames, file bytes).
 * - Each line carries `seq=<n> t=<publish time>`; the sink counts every sequence number (lost, duplicated).
 * - Latency: "accepted" is the moment the sink answered the push: the decoding receiver after decoding it; for
 *   Loki, a pass-through proxy in front of Loki, at the moment Loki's 2xx came back. Ours, Promtail's and the
 *   collector's pushes go through the same proxy (bench/src/receiver.ts). Every entry of a push is accepted at
 *   once, so each entry's latency is that moment minus its own `t`.
 * - Into Loki, loss and duplication are also counted in Loki itself: count_over_time by block of sequence
 *   numbers (Loki drops an identical resent entry, so a duplicate cannot show there; the proxy counts them).
 * - CPU: utime+stime from /proc over the run / lines; peak RSS: VmHWM. Each run starts fresh processes.
 * - The whole path, per run into Loki: the shipper's CPU per line (ours: the consumer's and the broker's) plus
 *   Loki's, while the lines came in and flushing them to chunks afterwards; what Loki stored per line (chunks on
 *   disk; the index only as far as a flush writes it) and received (structured metadata apart), as differences
 *   around the run on the one Loki of the invocation (bench/src/loki-store.ts says how).
 * - Same lines for every shipper: the files hold each entry as a JSON object of its level, service, message and the
 *   fields our consumer sends with it, under the same names (bench/src/workload.ts jsonLine). Which of those it sends as
 *   structured metadata is its `fields` setting: the shipped one, or LOG_CONSUMER_FIELD_* in the bench's environment.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { cpus, freemem, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { Subscriber } from "zeromq";
import { formatProfile, summarizeProfile } from "./cpuprofile.js";
import type { ProfileSummary } from "./cpuprofile.js";
import type { WriterPlan } from "./file-shippers.js";
import { FILE_SHIPPERS, fileShipperOf, fileShipperRun, writerRole } from "./file-shippers.js";
import type { Ctx, PublisherReport, RunResult, SinkStats } from "./harness.js";
import { blockSizeFor, countInLoki, ensureLoki, getStats, lokiCpu, lokiFigures, markLoki, MB, ROLES_SCRIPT, runId, safeCpu, sinkStats, sinkSummary, skipped, startRole, stopChild, waitForSink } from "./harness.js";
import { peakRssBytes, role } from "./proc.js";
import type { SinkMode } from "./receiver.js";
import { receiverRole } from "./receiver.js";
import { referenceRatios, fmt, formatRatios, lokiDetail, row, table, wholePathCpu } from "./report.js";
import { LatencyHistogram, parseMarks, SeqTally } from "./tally.js";
import type { PublisherPlan } from "./publisher.js";
import { publisherRole } from "./publisher.js";
import { nowMs } from "./workload.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

// --- options -----------------------------------------------------------------------------------------------------

const RUNS = {
  ceiling: "direct ZeroMQ PUB -> SUB, max rate (the transport's ceiling)",
  "decode-max": "publishers -> broker (no_drop) -> consumer -> decoding receiver, max rate",
  "decode-paced": "publishers -> broker (shipped config) -> consumer -> decoding receiver at --rate for --duration",
  "loki-max": "publishers -> broker (no_drop) -> consumer -> Loki: a backlog of --lines, as fast as it goes",
  "promtail-max": "Promtail: the same --lines appended to its files at once -> the same Loki",
  "otelcol-max": "OpenTelemetry Collector: the same --lines appended to its files at once -> the same Loki, over OTLP",
  "otelcol-meta-max": "OpenTelemetry Collector keeping the lines' fields as attributes (Loki: structured metadata): as otelcol-max",
  "loki-paced": "publishers -> broker (shipped config) -> consumer -> Loki at --loki-rate for --loki-duration",
  "promtail-paced": "Promtail: lines appended to its files at --loki-rate for --loki-duration -> the same Loki",
  "otelcol-paced": "OpenTelemetry Collector: lines appended to its files at --loki-rate for --loki-duration -> the same Loki, over OTLP",
  "otelcol-meta-paced": "OpenTelemetry Collector keeping the lines' fields as attributes (Loki: structured metadata): as otelcol-paced",
  refusing: "publishers -> consumer -> a sink answering 503 to everything: memory stays bounded (not in the default set)",
} as const;
type RunName = keyof typeof RUNS;
const DEFAULT_RUNS: RunName[] = ["ceiling", "decode-max", "decode-paced", "loki-max", "promtail-max", "otelcol-max", "otelcol-meta-max", "loki-paced", "promtail-paced", "otelcol-paced", "otelcol-meta-paced"];

interface Options {
  quick: boolean;
  runs: RunName[];
  publishers: number;
  ceilingLines: number;
  maxLines: number;
  rate: number;
  duration: number;
  lokiLines: number;
  lokiRate: number;
  lokiDuration: number;
  profile: boolean;
  /** Publishers send one message per line (AICO's plain PUB publishers) instead of batches (our clients). */
  singles: boolean;
  /** Node options the consumer runs with: by default those of its image's CMD. */
  consumerNodeFlags: string[];
  /** Checkout whose built broker and consumer (and their config files) are measured: this one by default. */
  componentsFrom: string;
  /** The broker and the consumer as one process (services/bus), with `npm run bus`'s node options. */
  oneProcess: boolean;
  /** Loki as the HA profile runs it (three instances of loki/loki-ha.yml on versitygw) instead of one instance. */
  lokiHa: boolean;
  out: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      runs: { type: "string" },
      publishers: { type: "string", default: "2" },
      "max-lines": { type: "string" },
      rate: { type: "string", default: "50000" },
      duration: { type: "string" },
      lines: { type: "string" },
      "loki-rate": { type: "string", default: "10000" },
      "loki-duration": { type: "string" },
      profile: { type: "boolean", default: false },
      "consumer-node-flags": { type: "string" },
      singles: { type: "boolean", default: false },
      "components-from": { type: "string" },
      "one-process": { type: "boolean", default: false },
      "loki-ha": { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(`npm run bench -- [options]\n  --quick              short runs (< 2 minutes in all)\n  --runs a,b           of: ${Object.keys(RUNS).join(", ")}\n  --publishers N       publisher processes (2)\n  --max-lines N        lines for the max-rate runs (quick 300000, full 1000000)\n  --rate N             lines/s of decode-paced (50000)\n  --duration S         seconds of decode-paced (quick 10, full 60)\n  --lines N            backlog of loki-max and the file shippers' -max runs (quick 100000, full 300000)\n  --loki-rate N        lines/s of loki-paced and the file shippers' -paced runs (10000)\n  --loki-duration S    seconds of loki-paced and the file shippers' -paced runs (quick 10, full 30)\n  --profile            CPU-profile the consumer and print where its time goes\n  --consumer-node-flags="..."  node options for the consumer (default: those in its Dockerfile CMD, or \`npm run bus\`'s)\n  --components-from DIR  measure the broker and consumer of another built checkout (before/after comparisons)\n  --one-process        run the broker and the consumer as one process (services/bus), with \`npm run bus\`'s node options\n  --loki-ha            into the HA profile's Loki (loki/loki-ha.yml: three instances, replication 3, on versitygw) instead of\n                       one instance. Natively there is no gateway (nginx runs only in Docker): shippers push to loki-1, whose\n                       distributor replicates each stream to all three ingesters (the cluster's whole write work; the\n                       gateway's own cost is not in the figures). Loki's CPU and RSS: the three Lokis and versitygw summed;\n                       stored bytes: the bucket, and the three TSDB head WALs\n  --out FILE           JSON results (default bench-results/pipeline-<time>.json)`);
    process.exit(0);
  }
  const quick = values.quick;
  const runs = (values.runs?.split(",").map((r) => r.trim()) ?? DEFAULT_RUNS) as RunName[];
  for (const r of runs) if (!(r in RUNS)) throw new Error(`--runs: unknown run "${r}"; runs are ${Object.keys(RUNS).join(", ")}`);
  const num = (name: string, value: string | undefined, fallback: number, min = 1): number => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min}, got ${value}`);
    return n;
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return {
    quick,
    runs,
    publishers: num("publishers", values.publishers, 2),
    ceilingLines: num("max-lines", values["max-lines"], quick ? 300_000 : 1_000_000),
    maxLines: num("max-lines", values["max-lines"], quick ? 300_000 : 1_000_000),
    rate: num("rate", values.rate, 50_000),
    duration: num("duration", values.duration, quick ? 10 : 60),
    lokiLines: num("lines", values.lines, quick ? 100_000 : 300_000),
    lokiRate: num("loki-rate", values["loki-rate"], 10_000),
    lokiDuration: num("loki-duration", values["loki-duration"], quick ? 10 : 30),
    profile: values.profile,
    singles: values.singles,
    consumerNodeFlags:
      values["consumer-node-flags"] !== undefined
        ? values["consumer-node-flags"].split(/\s+/).filter(Boolean)
        : values["one-process"]
          ? busNodeFlags(values["components-from"] ?? repoRoot)
          : imageNodeFlags(values["components-from"] ?? repoRoot, "log-consumer"),
    componentsFrom: values["components-from"] ?? repoRoot,
    oneProcess: values["one-process"],
    lokiHa: values["loki-ha"],
    out: values.out ?? join(repoRoot, "bench-results", `pipeline-${stamp}.json`),
  };
}

/**
 * The node options of a service's image (its Dockerfile's CMD), so the benchmark measures the service as it
 * ships: e.g. CMD ["node", "--max-semi-space-size=16", "services/log-consumer/dist/main.js"].
 */
function imageNodeFlags(checkout: string, service: "broker" | "log-consumer"): string[] {
  const dockerfile = join(checkout, `services/${service}/Dockerfile`);
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(readFileSync(dockerfile, "utf8"))?.[1];
  const argv = cmd ? (JSON.parse(cmd) as string[]) : [];
  const script = argv.indexOf(`services/${service}/dist/main.js`);
  if (argv[0] !== "node" || script < 0) throw new Error(`${dockerfile}: expected CMD ["node", <options>..., "services/${service}/dist/main.js"], found ${cmd}`);
  return argv.slice(1, script);
}

/** The node options `npm run bus` runs services/bus with: the one-process option has no image of its own yet. */
function busNodeFlags(checkout: string): string[] {
  const script = (JSON.parse(readFileSync(join(checkout, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts.bus ?? "";
  const flags = /\bnode((?:\s+--\S+)*)\s+services\/bus\/dist\/main\.js/.exec(script)?.[1];
  if (flags === undefined) throw new Error(`package.json: expected a "bus" script running node <options>... services/bus/dist/main.js, found ${JSON.stringify(script)}`);
  return flags.split(/\s+/).filter(Boolean);
}

interface PipelineCtx extends Ctx {
  opts: Options;
}

// --- roles (each runs in its own process) ----------------------------------------------------------------------

/** The ceiling run's subscriber: binds, subscribes like the consumer, counts sequence numbers. */
async function subscriberRole(expected: number): Promise<void> {
  const sub = new Subscriber({ receiveHighWaterMark: 100_000, linger: 0 });
  await sub.bind("tcp://127.0.0.1:*");
  sub.subscribe("logs.");
  process.send?.({ endpoint: sub.lastEndpoint });
  const tally = new SeqTally(expected);
  const latency = new LatencyHistogram();
  let lastMs = 0;
  // An idle spell means the rest was lost.
  const idle = setTimeout(() => sub.close(), 15_000);
  try {
    for await (const [, payload] of sub) {
      lastMs = nowMs();
      const marks = payload ? parseMarks(payload, 0, payload.length) : undefined;
      if (marks) {
        tally.add(marks.seq);
        latency.record(lastMs - marks.tMs);
      }
      if (tally.distinct === expected) break;
      if (tally.received % 1000 === 0) idle.refresh();
    }
  } catch {
    // Closed by the idle timer.
  }
  clearTimeout(idle);
  process.send?.({ ...sinkStats(tally, latency, lastMs, lastMs), pushes: 0, statuses: {} } satisfies SinkStats);
  if (!sub.closed) sub.close();
}

// --- the parent: runs, measurement, report ---------------------------------------------------------------------

interface ConsumerProc {
  child: ChildProcess;
  pid: number;
  opsUrl: string;
  profileDir?: string;
  output: string[];
  /** Where publishers connect when the broker runs in this process (services/bus). */
  pub?: string;
}

/** Reads a child's JSON log lines until `started` matches one; keeps its warnings and errors (the first 1,000). */
function awaitStartLine(child: ChildProcess, name: string, started: RegExp, output: string[]): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = started.exec(line);
        if (m) resolve(m);
        else if (/"level":"(warn|error)"/.test(line) && output.length < 1000) output.push(line);
      }
    });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code} before it started`)));
  });
}

/**
 * The broker as it ships: dist/main.js with config/message_bus.yaml and its image's node options, on free ports,
 * with the given overrides (env names). MESSAGE_BUS_* in the benchmark's own environment reach it too (e.g.
 * MESSAGE_BUS_COUNT_MESSAGES=false).
 */
async function startBrokerProc(ctx: PipelineCtx, env: Record<string, string>): Promise<{ child: ChildProcess; pub: string; sub: string }> {
  const checkout = ctx.opts.componentsFrom;
  const child = spawn(process.execPath, [...imageNodeFlags(checkout, "broker"), join(checkout, "services/broker/dist/main.js")], {
    cwd: checkout,
    env: { ...process.env, ...brokerEnv(checkout), ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  ctx.children.add(child);
  child.once("exit", () => ctx.children.delete(child));
  const [, pub, sub] = await awaitStartLine(child, "broker", BROKER_STARTED, []);
  return { child, pub: pub as string, sub: sub as string };
}

const BROKER_STARTED = /"msg":"broker started".*?"pubEndpoint":"([^"]+)","subEndpoint":"([^"]+)"/;

function brokerEnv(checkout: string): Record<string, string> {
  return {
    MESSAGE_BUS_CONFIG: join(checkout, "config/message_bus.yaml"),
    MESSAGE_BUS_HOST: "127.0.0.1",
    MESSAGE_BUS_PUB_PORT: "0",
    MESSAGE_BUS_SUB_PORT: "0",
    MESSAGE_BUS_METRICS_PORT: "0",
  };
}

/**
 * The consumer as it ships: dist/main.js with config/log_consumer.yaml, redirected by its environment variables;
 * with `broker` (the broker's environment), services/bus/dist/main.js instead: the broker and the consumer in one
 * process, and the broker's endpoints with it.
 */
async function startConsumerProc(ctx: PipelineCtx, name: string, subEndpoint: string, lokiUrl: string, env: Record<string, string> = {}, broker?: Record<string, string>): Promise<ConsumerProc> {
  const subPort = /:(\d+)$/.exec(subEndpoint)?.[1] ?? "";
  const profileDir = ctx.opts.profile ? mkdtempSync(join(ctx.tmp, `prof-${name}-`)) : undefined;
  // The shipped config spools every batch to disk; each run gets its own, empty spool directory.
  const spoolDir = mkdtempSync(join(ctx.tmp, `spool-${name}-`));
  const checkout = ctx.opts.componentsFrom;
  const main = broker ? "services/bus/dist/main.js" : "services/log-consumer/dist/main.js";
  const args = [...ctx.opts.consumerNodeFlags, ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []), join(checkout, main)];
  const child = spawn(process.execPath, args, {
    cwd: checkout,
    env: {
      ...process.env,
      ...broker,
      LOG_CONSUMER_CONFIG: join(checkout, "config/log_consumer.yaml"),
      MESSAGE_BUS_HOST: "127.0.0.1",
      // One process: the broker's free port, which the consumer then subscribes to.
      MESSAGE_BUS_SUB_PORT: broker ? "0" : subPort,
      LOKI_URL: lokiUrl,
      LOG_CONSUMER_OPS_PORT: "0",
      LOG_CONSUMER_LOG_LEVEL: "info",
      // An empty LOG_CONSUMER_SPOOL_DIR in the benchmark's environment runs the consumer without a spool.
      LOG_CONSUMER_SPOOL_DIR: process.env.LOG_CONSUMER_SPOOL_DIR ?? spoolDir,
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  ctx.children.add(child);
  child.once("exit", () => {
    ctx.children.delete(child);
    rmSync(spoolDir, { recursive: true, force: true });
  });
  const output: string[] = [];
  const [started, brokerStarted] = await Promise.all([
    awaitStartLine(child, "consumer", /"msg":"log consumer started".*?"ops":"([^"]+)"/, output),
    broker ? awaitStartLine(child, "broker", BROKER_STARTED, []) : undefined,
  ]);
  return { child, pid: child.pid as number, opsUrl: started[1] as string, ...(profileDir && { profileDir }), output, ...(brokerStarted && { pub: brokerStarted[1] as string }) };
}

/** Sums of each consumer metric over its labels, by label value. */
async function scrapeConsumer(opsUrl: string): Promise<Map<string, Map<string, number>>> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  const out = new Map<string, Map<string, number>>();
  for (const m of text.matchAll(/^((?:aixcl_log_consumer|process|nodejs)_\w+?)(?:\{(?:\w+="([^"]*)")?[^}]*\})? (\S+)$/gm)) {
    const [, name, label = "", value] = m;
    let series = out.get(name as string);
    if (!series) out.set(name as string, (series = new Map()));
    series.set(label, (series.get(label) ?? 0) + Number(value));
  }
  return out;
}

function byLabel(metrics: Map<string, Map<string, number>>, name: string): Record<string, number> {
  return Object.fromEntries([...(metrics.get(name) ?? new Map<string, number>())].filter(([, v]) => v > 0));
}

/** Profile of a consumer that has exited (node writes it at exit), kept beside the JSON results. */
function profileOf(proc: ConsumerProc, keepAs: string): ProfileSummary | undefined {
  if (!proc.profileDir) return undefined;
  const file = readdirSync(proc.profileDir).find((f) => f.endsWith(".cpuprofile"));
  let summary: ProfileSummary | undefined;
  if (file) {
    summary = summarizeProfile(join(proc.profileDir, file));
    mkdirSync(dirname(keepAs), { recursive: true });
    renameSync(join(proc.profileDir, file), keepAs);
    summary.file = keepAs;
  }
  rmSync(proc.profileDir, { recursive: true, force: true });
  return summary;
}

/** Publishers fed through the broker into the consumer into a sink: decode-*, loki-*, refusing. */
async function consumerRun(ctx: PipelineCtx, run: RunName, opts: { lines: number; rate: number; sink: SinkMode; noDrop: boolean }): Promise<RunResult> {
  const { publishers } = ctx.opts;
  const runTag = runId();
  const blockSize = blockSizeFor(opts.lines);
  const intoLoki = opts.sink === "proxy";
  if (intoLoki && !(await ensureLoki(ctx))) return skipped(run, RUNS[run], `Loki: ${ctx.lokiSkip}`);
  const lokiUrl = ctx.loki?.url ?? "";

  const receiver = await startRole<{ url: string }>(["receiver", opts.sink, String(opts.lines), lokiUrl], ctx);
  const brokerSettings: Record<string, string> = opts.noDrop ? { MESSAGE_BUS_NO_DROP: "true" } : {};
  let broker: { child?: ChildProcess; pub: string };
  let consumer: ConsumerProc;
  if (ctx.opts.oneProcess) {
    consumer = await startConsumerProc(ctx, run, "", receiver.ready.url, {}, { ...brokerEnv(ctx.opts.componentsFrom), ...brokerSettings });
    broker = { pub: consumer.pub ?? "" };
  } else {
    const separate = await startBrokerProc(ctx, brokerSettings);
    broker = separate;
    consumer = await startConsumerProc(ctx, run, separate.sub, receiver.ready.url);
  }
  const pubs = await Promise.all(
    Array.from({ length: publishers }, (_, index) => {
      const plan: PublisherPlan = { index, publishers, total: opts.lines, rate: opts.rate / publishers, run: runTag, blockSize, batches: !ctx.opts.singles };
      return startRole<unknown>(["publisher", broker.pub, JSON.stringify(plan)], ctx);
    }),
  );
  const pubPids = pubs.map((p) => p.child.pid);
  const sumCpu = (pids: (number | undefined)[]) => pids.reduce<number>((n, pid) => n + safeCpu(pid), 0);
  const lokiMark = intoLoki && ctx.loki ? await markLoki(ctx.loki) : undefined;
  const cpu0 = { consumer: safeCpu(consumer.pid), broker: safeCpu(broker.child?.pid), publishers: sumCpu(pubPids), sink: safeCpu(receiver.child.pid) };
  const startMs = nowMs();
  for (const p of pubs) p.child.send({ go: true });
  let publishing = publishers;
  const reports: PublisherReport[] = [];
  for (const p of pubs) void p.done.then((r) => reports.push(r as PublisherReport)).finally(() => publishing--);
  let peakBuffer = 0;
  // Where the consumer's memory is when its RSS peaks, from its own /metrics (prom-client's process metrics).
  let peakRss = 0;
  let memoryAtPeak: Record<string, number> | undefined;
  // Once a second: a scrape costs the consumer ~2 ms of CPU, which at the sink's 4 polls a second was ~0.4 µs a
  // line at 10,000 lines/s charged to it for the benchmark's own curiosity (Prometheus scrapes it every 15 s).
  let lastScrapeMs = 0;
  const pollBuffer = async () => {
    if (nowMs() - lastScrapeMs < 1000) return;
    lastScrapeMs = nowMs();
    const m = await scrapeConsumer(consumer.opsUrl).catch(() => undefined);
    if (!m) return;
    peakBuffer = Math.max(peakBuffer, m.get("aixcl_log_consumer_buffer_bytes")?.get("") ?? 0);
    const rss = m.get("process_resident_memory_bytes")?.get("") ?? 0;
    if (rss > peakRss) {
      peakRss = rss;
      const space = m.get("nodejs_heap_space_size_total_bytes");
      memoryAtPeak = {
        rss: rss / MB,
        v8Heap: (m.get("nodejs_heap_size_total_bytes")?.get("") ?? 0) / MB,
        v8NewSpace: (space?.get("new") ?? 0) / MB,
        v8OldSpace: (space?.get("old") ?? 0) / MB,
        external: (m.get("nodejs_external_memory_bytes")?.get("") ?? 0) / MB,
        buffered: (m.get("aixcl_log_consumer_buffer_bytes")?.get("") ?? 0) / MB,
      };
    }
  };
  let stats: SinkStats;
  if (opts.sink === "refuse") {
    // Nothing is ever accepted: the run ends when the consumer has received everything that reached it.
    let received = -1;
    for (let stable = 0; stable < 8; ) {
      await sleep(250);
      await pollBuffer();
      const m = await scrapeConsumer(consumer.opsUrl);
      const now = m.get("aixcl_log_consumer_messages_received_total")?.get("") ?? 0;
      stable = publishing === 0 && now === received ? stable + 1 : 0;
      received = now;
    }
    stats = await getStats(receiver.ready.url);
  } else {
    stats = await waitForSink(receiver.ready.url, opts.lines, run, 10_000, () => publishing > 0, pollBuffer);
  }
  const endMs = stats.lastAcceptMs || nowMs();
  const cpu = {
    consumer: safeCpu(consumer.pid) - cpu0.consumer,
    broker: safeCpu(broker.child?.pid) - cpu0.broker,
    lokiAtEnd: ctx.loki ? lokiCpu(ctx.loki) : Number.NaN,
    publishers: sumCpu(pubPids) - cpu0.publishers,
    sink: safeCpu(receiver.child.pid) - cpu0.sink,
  };
  const rss = { consumer: peakRssBytes(consumer.pid), broker: broker.child ? peakRssBytes(broker.child.pid as number) : 0 };
  const metrics = await scrapeConsumer(consumer.opsUrl);
  while (publishing > 0) await sleep(50);
  const inLoki = intoLoki ? await countInLoki(lokiUrl, '{service=~".+"}', runTag, blockSize, opts.lines) : undefined;

  for (const p of pubs) await stopChild(p.child);
  await stopChild(consumer.child);
  await Promise.all([broker.child && stopChild(broker.child), stopChild(receiver.child)]);
  const delivered = opts.sink === "refuse" ? (metrics.get("aixcl_log_consumer_messages_received_total")?.get("") ?? 0) : stats.distinct;
  const loki = lokiMark && ctx.loki ? await lokiFigures(ctx.loki, lokiMark, cpu.lokiAtEnd, delivered) : undefined;
  const profile = profileOf(consumer, ctx.opts.out.replace(/\.json$/, "") + `-${run}.cpuprofile`);

  const sent = reports.reduce((n, r) => n + r.sent, 0);
  const bytes = reports.reduce((n, r) => n + r.bytes, 0);
  const seconds = (endMs - startMs) / 1000;
  const result: RunResult = {
    run,
    what: RUNS[run],
    lines: opts.lines,
    ...(opts.rate > 0 && { offeredRate: opts.rate }),
    seconds,
    linesPerSec: delivered / seconds,
    mbPerSec: (delivered * (bytes / sent)) / seconds / MB,
    bytesPerLine: bytes / sent,
    shipper: { name: "consumer", cpuMicrosPerLine: cpu.consumer / delivered, cpuShareOfCore: cpu.consumer / 1e6 / seconds, peakRssMB: rss.consumer / MB },
    ...(broker.child && { broker: { cpuMicrosPerLine: cpu.broker / delivered, peakRssMB: rss.broker / MB } }),
    ...(loki && { loki }),
    harnessCpuMicrosPerLine: { publishers: cpu.publishers / delivered, sink: cpu.sink / delivered },
    busMessagesPerLine: (metrics.get("aixcl_log_consumer_messages_received_total")?.get("") ?? 0) / delivered,
    accepted: sinkSummary(stats),
    latencyMs: stats.latency,
    ...(inLoki && { inLoki }),
    consumer: {
      dropped: byLabel(metrics, "aixcl_log_consumer_dropped_entries_total"),
      retries: byLabel(metrics, "aixcl_log_consumer_push_retries_total"),
      peakBufferMB: peakBuffer / MB,
      ...(memoryAtPeak && { memoryAtPeakMB: memoryAtPeak }),
    },
    publishers: { eagain: reports.reduce((n, r) => n + r.eagain, 0), publishSeconds: Math.max(...reports.map((r) => r.endMs - startMs)) / 1000 },
    ...(profile && { profile }),
  };
  if (consumer.output.length > 0) result.note = `consumer said: ${consumer.output.slice(0, 3).map((l) => l.slice(0, 300)).join(" | ")}`;
  return result;
}

async function ceilingRun(ctx: PipelineCtx): Promise<RunResult> {
  const lines = ctx.opts.ceilingLines;
  const { publishers } = ctx.opts;
  const runTag = runId();
  const blockSize = blockSizeFor(lines);
  const sub = role<{ endpoint: string } | SinkStats>(ROLES_SCRIPT, ["sub", String(lines)]);
  ctx.children.add(sub.child);
  const { endpoint } = (await sub.ready) as { endpoint: string };
  const pubs = await Promise.all(
    Array.from({ length: publishers }, (_, index) =>
      startRole<unknown>(["publisher", endpoint, JSON.stringify({ index, publishers, total: lines, rate: 0, run: runTag, blockSize, batches: false } satisfies PublisherPlan)], ctx),
    ),
  );
  const startMs = nowMs();
  for (const p of pubs) p.child.send({ go: true });
  const reports = (await Promise.all(pubs.map((p) => p.done))) as PublisherReport[];
  const stats = (await sub.done) as SinkStats;
  for (const p of pubs) await stopChild(p.child);
  await stopChild(sub.child);
  const sent = reports.reduce((n, r) => n + r.sent, 0);
  const bytes = reports.reduce((n, r) => n + r.bytes, 0);
  const seconds = (stats.lastAcceptMs - startMs) / 1000;
  return {
    run: "ceiling",
    what: RUNS.ceiling,
    lines,
    seconds,
    linesPerSec: stats.distinct / seconds,
    mbPerSec: (stats.distinct * (bytes / sent)) / seconds / MB,
    bytesPerLine: bytes / sent,
    accepted: sinkSummary(stats),
    latencyMs: stats.latency,
    publishers: { eagain: reports.reduce((n, r) => n + r.eagain, 0), publishSeconds: Math.max(...reports.map((r) => r.endMs - startMs)) / 1000 },
  };
}

// --- report ----------------------------------------------------------------------------------------------------

interface Verdict {
  target: string;
  met: boolean | undefined;
  detail: string;
}

/** With --one-process the per-process memory targets have no process of their own to measure: said, not judged. */
const ONE_PROCESS_RSS = (peakMB: number | undefined) => ({
  met: undefined,
  detail: `per process, and --one-process runs the consumer and the broker as one: ${fmt(peakMB)} MB together (run without --one-process to judge)`,
});

/**
 * Against Promtail, same lines into the same Loki in the same invocation: our CPU per line counts the broker too,
 * since our pipeline needs that hop; at full rate (loki-max) and at --loki-rate (loki-paced).
 */
function promtailVerdicts(get: (run: RunName) => RunResult | undefined, oneProcess: boolean): Verdict[] {
  const out: Verdict[] = [];
  const ratio = (a: number, b: number) => `ratio ${(a / b).toFixed(2)}`;
  for (const mode of ["max", "paced"] as const) {
    const [ours, theirs] = [get(`loki-${mode}`), get(`promtail-${mode}`)];
    const at = mode === "max" ? "at full rate" : `at ${fmt(theirs?.offeredRate)} lines/s`;
    if (!ours?.shipper || !theirs?.shipper) {
      out.push({ target: `vs Promtail ${at}`, met: undefined, detail: `loki-${mode} or promtail-${mode} not run` });
      continue;
    }
    const cpu = ours.shipper.cpuMicrosPerLine + (ours.broker?.cpuMicrosPerLine ?? 0);
    const theirCpu = theirs.shipper.cpuMicrosPerLine;
    out.push({ target: `CPU/line, consumer + broker, <= 0.5x Promtail's ${at}`, met: cpu <= 0.5 * theirCpu, detail: `${fmt(ours.shipper.cpuMicrosPerLine, 1)} + ${fmt(ours.broker?.cpuMicrosPerLine, 1)} vs ${fmt(theirCpu, 1)} µs/line (${ratio(cpu, theirCpu)})` });
    if (mode === "max") out.push({ target: "into Loki: rate >= 2x Promtail's", met: ours.linesPerSec >= 2 * theirs.linesPerSec, detail: `${fmt(ours.linesPerSec)} vs ${fmt(theirs.linesPerSec)} lines/s (${ratio(ours.linesPerSec, theirs.linesPerSec)})` });
    if (oneProcess) {
      out.push({ target: `consumer peak RSS <= Promtail's, broker's <= 100 MB ${at}`, ...ONE_PROCESS_RSS(ours.shipper.peakRssMB) });
      continue;
    }
    out.push({ target: `consumer peak RSS <= Promtail's ${at}`, met: ours.shipper.peakRssMB <= theirs.shipper.peakRssMB, detail: `${fmt(ours.shipper.peakRssMB)} vs ${fmt(theirs.shipper.peakRssMB)} MB (${ratio(ours.shipper.peakRssMB, theirs.shipper.peakRssMB)})` });
    out.push({ target: `broker peak RSS <= 100 MB ${at}`, met: (ours.broker?.peakRssMB ?? Infinity) <= 100, detail: `${fmt(ours.broker?.peakRssMB)} MB` });
  }
  return out;
}

/**
 * Against the OpenTelemetry Collector (issue 26), in each of its setups that ran, same lines into the same Loki: the
 * whole path's CPU per line (shipper, broker for ours, and Loki, flush included), at full rate and at --loki-rate.
 */
function otelcolVerdicts(get: (run: string) => RunResult | undefined): Verdict[] {
  const out: Verdict[] = [];
  const ratio = (a: number, b: number) => `ratio ${(a / b).toFixed(2)}`;
  for (const shipper of FILE_SHIPPERS.filter((s) => s.component === "otelcol")) {
    const vs = `vs ${shipper.title}:`;
    const [oursMax, theirsMax, oursPaced, theirsPaced] = [get("loki-max"), get(`${shipper.name}-max`), get("loki-paced"), get(`${shipper.name}-paced`)];
    const missing = (mode: string) => ({ met: undefined, detail: `loki-${mode} or ${shipper.name}-${mode} not run` });
    const at = `at ${fmt(theirsPaced?.offeredRate)} lines/s`;
    out.push({ target: `${vs} rate into Loki >= theirs`, ...(oursMax && theirsMax ? { met: oursMax.linesPerSec >= theirsMax.linesPerSec, detail: `${fmt(oursMax.linesPerSec)} vs ${fmt(theirsMax.linesPerSec)} lines/s (${ratio(oursMax.linesPerSec, theirsMax.linesPerSec)})` } : missing("max")) });
    for (const [mode, ours, theirs] of [["max", oursMax, theirsMax], ["paced", oursPaced, theirsPaced]] as const) {
      const target = `${vs} whole-path CPU/line <= 0.75x theirs ${mode === "max" ? "at full rate" : at}`;
      const [a, b] = [ours && wholePathCpu(ours), theirs && wholePathCpu(theirs)];
      if (!ours || !theirs) out.push({ target, ...missing(mode) });
      else if (a === undefined || b === undefined) out.push({ target, met: undefined, detail: "Loki's flush not measured" });
      else out.push({ target, met: a <= 0.75 * b, detail: `${fmt(a, 1)} vs ${fmt(b, 1)} µs/line (${ratio(a, b)})` });
    }
    if (!oursPaced?.shipper || !theirsPaced?.shipper) {
      out.push({ target: `${vs} consumer + broker peak RSS <= 1.5x theirs ${at}`, ...missing("paced") });
      out.push({ target: `${vs} p99 <= theirs ${at}`, ...missing("paced") });
      continue;
    }
    const rss = oursPaced.shipper.peakRssMB + (oursPaced.broker?.peakRssMB ?? 0);
    out.push({ target: `${vs} consumer + broker peak RSS <= 1.5x theirs ${at}`, met: rss <= 1.5 * theirsPaced.shipper.peakRssMB, detail: `${fmt(oursPaced.shipper.peakRssMB)} + ${fmt(oursPaced.broker?.peakRssMB)} vs ${fmt(theirsPaced.shipper.peakRssMB)} MB (${ratio(rss, theirsPaced.shipper.peakRssMB)})` });
    out.push({ target: `${vs} p99 <= theirs ${at}`, met: oursPaced.latencyMs.p99 <= theirsPaced.latencyMs.p99, detail: `${fmt(oursPaced.latencyMs.p99)} vs ${fmt(theirsPaced.latencyMs.p99)} ms (${ratio(oursPaced.latencyMs.p99, theirsPaced.latencyMs.p99)})` });
  }
  return out;
}

function verdicts(results: RunResult[], opts: Options): Verdict[] {
  const get = (run: string) => results.find((r) => r.run === run && !r.skipped);
  const out: Verdict[] = [];
  const dmax = get("decode-max");
  out.push(dmax ? { target: "decoding receiver >= 100,000 lines/s", met: dmax.linesPerSec >= 100_000, detail: `${fmt(dmax.linesPerSec)} lines/s` } : { target: "decoding receiver >= 100,000 lines/s", met: undefined, detail: "decode-max not run" });
  const paced = get("decode-paced");
  const zeroLoss = "zero loss at 50,000 lines/s for 60 s";
  if (!paced) out.push({ target: zeroLoss, met: undefined, detail: "decode-paced not run" });
  else {
    const clean = paced.accepted.lost === 0 && paced.accepted.duplicated === 0;
    const full = (paced.offeredRate ?? 0) >= 50_000 && opts.duration >= 60;
    out.push({ target: zeroLoss, met: full ? clean : undefined, detail: `${fmt(paced.accepted.lost)} lost, ${fmt(paced.accepted.duplicated)} duplicated of ${fmt(paced.lines)} at ${fmt(paced.offeredRate)}/s for ${opts.duration} s${full ? "" : " (not the full check: run without --quick)"}` });
  }
  out.push(...promtailVerdicts(get, opts.oneProcess));
  out.push(...otelcolVerdicts(get));
  const fullRate = [dmax, paced].filter((r): r is RunResult => r?.shipper !== undefined);
  if (fullRate.length > 0) {
    const peak = Math.max(...fullRate.map((r) => r.shipper?.peakRssMB ?? 0));
    out.push({ target: "consumer peak RSS < 150 MB at full rate", ...(opts.oneProcess ? ONE_PROCESS_RSS(peak) : { met: peak < 150, detail: `${fmt(peak)} MB (decode-max, decode-paced)` }) });
  }
  const lp = get("loki-paced");
  out.push(lp ? { target: "p99 publish -> accepted by Loki < 1.5 s at 10k lines/s", met: (lp.offeredRate ?? 0) <= 10_000 ? lp.latencyMs.p99 < 1500 : undefined, detail: `p99 ${fmt(lp.latencyMs.p99)} ms, p50 ${fmt(lp.latencyMs.p50)} ms at ${fmt(lp.offeredRate)}/s` } : { target: "p99 < 1.5 s at 10k lines/s", met: undefined, detail: "loki-paced not run" });
  return out;
}

async function main(): Promise<void> {
  const opts = options();
  const ctx: PipelineCtx = { opts, lokiHa: opts.lokiHa, children: new Set(), tmp: mkdtempSync(join(tmpdir(), "aixcl-bench-")) };
  const cleanUp = () => {
    for (const c of ctx.children) c.kill("SIGKILL");
    rmSync(ctx.tmp, { recursive: true, force: true });
  };
  process.on("exit", cleanUp);
  // Exiting runs the handler above, so no publisher, broker or consumer, nor a spool of theirs, outlives an
  // interrupted run (a finally block would not run on these signals).
  process.on("SIGINT", () => process.exit(130));
  process.on("SIGTERM", () => process.exit(143));
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? "?", memGiB: totalmem() / 2 ** 30, node: process.version, loadBefore: loadavg() };
  console.log(`Pipeline benchmark${opts.quick ? " (quick)" : ""}: ${machine.cpus} CPUs (${machine.model}), Node ${machine.node}, load ${machine.loadBefore.map((l) => l.toFixed(2)).join(" ")}, ${opts.publishers} publishers, ${opts.oneProcess ? "broker and consumer in one process (services/bus), its" : "consumer"} node options: ${opts.consumerNodeFlags.join(" ") || "(none)"}${opts.componentsFrom === repoRoot ? "" : `, broker and consumer from ${opts.componentsFrom}`}, Loki ${opts.lokiHa ? "HA (--loki-ha: 3 instances + versitygw, pushes to loki-1; CPU and RSS summed over the 4 processes)" : "single instance"}`);
  const results: RunResult[] = [];
  const rows: string[][] = [];
  try {
    for (const run of opts.runs) {
      console.log(`- ${run}: ${RUNS[run]}`);
      let r: RunResult;
      switch (run) {
        case "ceiling":
          r = await ceilingRun(ctx);
          break;
        case "decode-max":
          r = await consumerRun(ctx, run, { lines: opts.maxLines, rate: 0, sink: "decode", noDrop: true });
          break;
        case "decode-paced":
          r = await consumerRun(ctx, run, { lines: opts.rate * opts.duration, rate: opts.rate, sink: "decode", noDrop: false });
          break;
        case "loki-max":
          r = await consumerRun(ctx, run, { lines: opts.lokiLines, rate: 0, sink: "proxy", noDrop: true });
          break;
        case "promtail-max":
        case "otelcol-max":
        case "otelcol-meta-max":
          r = await fileShipperRun(ctx, run, RUNS[run], fileShipperOf(run), { lines: opts.lokiLines, rate: 0 });
          break;
        case "loki-paced":
          r = await consumerRun(ctx, run, { lines: opts.lokiRate * opts.lokiDuration, rate: opts.lokiRate, sink: "proxy", noDrop: false });
          break;
        case "promtail-paced":
        case "otelcol-paced":
        case "otelcol-meta-paced":
          r = await fileShipperRun(ctx, run, RUNS[run], fileShipperOf(run), { lines: opts.lokiRate * opts.lokiDuration, rate: opts.lokiRate });
          break;
        case "refusing":
          r = await consumerRun(ctx, run, { lines: opts.lokiLines * 2, rate: 0, sink: "refuse", noDrop: true });
          break;
      }
      results.push(r);
      rows.push(row(r));
      console.log(table([row(r)]).split("\n")[1]);
      if (r.consumer && (Object.keys(r.consumer.dropped).length > 0 || Object.keys(r.consumer.retries).length > 0)) {
        console.log(`    consumer dropped ${JSON.stringify(r.consumer.dropped)}, retried ${JSON.stringify(r.consumer.retries)}, peak buffer ${fmt(r.consumer.peakBufferMB, 1)} MB`);
      }
      if (r.harnessCpuMicrosPerLine) console.log(`    harness CPU µs/line: publishers ${fmt(r.harnessCpuMicrosPerLine.publishers, 1)}, receiver ${fmt(r.harnessCpuMicrosPerLine.sink, 1)}`);
      if (r.busMessagesPerLine !== undefined) console.log(`    bus messages per line: ${fmt(r.busMessagesPerLine, 3)}`);
      if (r.consumer?.memoryAtPeakMB) console.log(`    consumer memory at its highest sampled RSS (MB): ${Object.entries(r.consumer.memoryAtPeakMB).map(([k, v]) => `${k} ${fmt(v)}`).join(", ")}`);
      if (r.accepted.lost > 0 && r.run !== "refusing") console.log(`    never accepted, first: ${r.accepted.missing.join(", ")}`);
      const lokiLine = lokiDetail(r);
      if (lokiLine) console.log(`    ${lokiLine}`);
      if (r.note) console.log(`    ${r.note}`);
      if (r.profile) console.log(formatProfile(r.profile));
    }
  } finally {
    await ctx.loki?.stop();
  }
  const machineAfter = { ...machine, loadAfter: loadavg(), freeMemGiB: freemem() / 2 ** 30 };
  console.log(`\n${table(rows)}`);
  console.log(`ship = the shipper (consumer, or ${FILE_SHIPPERS.map((s) => `${s.tag} = ${s.title}`).join(", ")}): CPU µs per line and peak RSS; Loki = Loki's CPU while the lines came in, flush = flushing them afterwards, whole = ship + broker + Loki + flush; chunks = bytes per line Loki stored in chunks, meta = structured metadata bytes per line it received; lost = at the sink / counted in Loki.`);
  const ratios = referenceRatios(results, FILE_SHIPPERS);
  if (ratios.length > 0) console.log(`\nOurs against each reference shipper, same lines into the same Loki (below 1: less than theirs):\n${formatRatios(ratios)}`);
  const v = verdicts(results, opts);
  console.log("\nTargets:");
  for (const t of v) console.log(`  ${t.met === undefined ? "n/a " : t.met ? "MET " : "MISS"}  ${t.target}: ${t.detail}`);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify({ at: new Date().toISOString(), machine: machineAfter, options: opts, results, ratiosOursToReferences: ratios, targets: v }, null, 2)}\n`);
  console.log(`\nJSON: ${opts.out}`);
}

const [mode, a, b, c] = process.argv.slice(2);

if (mode === "publisher") await publisherRole(a as string, JSON.parse(b as string) as PublisherPlan);
else if (mode === "sub") await subscriberRole(Number(a));
else if (mode === "receiver") await receiverRole(a as SinkMode, Number(b), c ?? "");
else if (mode === "writer") await writerRole(JSON.parse(a as string) as WriterPlan);
else await main();
