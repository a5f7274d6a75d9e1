/**
 * The broker holding logs for an absent consumer: a plain ZeroMQ PUB publisher sends ~300-byte log lines at
 * --rate lines/s for --seconds while no subscriber exists; the broker (its own process, shipped defaults) holds
 * them in memory, then with broker.backlog.dir on disk. Prints the broker's RSS while holding (sampled every
 * second), what it held, its CPU per held line, and how fast a subscriber then gets the backlog.
 *
 * Then a consumer that stops reading (connected and subscribed, never receiving) while our clients' batches come
 * as fast as the broker takes them, for --stall-seconds: the broker's memory must stay within its queues
 * (send_hwm, recv_hwm) and the backlog's bound, whatever passes through.
 * Usage: npm run bench:backlog [-- --seconds 60 --rate 2000 --stall-seconds 8]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Publisher, Subscriber } from "zeromq";
import { startBroker } from "@aixcl/broker";
import { BATCH_TOPIC_PREFIX, batchTopic, emptyLogEntry, encodeLogBatch, encodeLogEntry, receiveEach } from "@aixcl/wire";
import { BATCH_LIMITS } from "@aixcl/client-logger";
import type { MessageBusConfig } from "@aixcl/service-runtime";
import { loadMessageBusConfig, serviceLog } from "@aixcl/service-runtime";
import { cpuMicros, formatRate, peakRssBytes, role } from "./proc.js";
import { subscribedPublisher } from "./xpub.js";

const script = fileURLToPath(import.meta.url);
const MiB = 2 ** 20;

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** An application log line of about 300 bytes, with its sequence number. */
function line(n: number): string {
  return `seq=${n} level=info msg="request handled" path=/v1/items/${n % 977} status=200 took_ms=${n % 313} ${"user=someone@example.com session=0f8fad5b-d9cb-469f-a165-70867728950e ".repeat(2)}trace=4bf92f3577b34da6a3ce929d0e0e4736`.padEnd(300, ".");
}

interface BrokerEnds {
  pub: string;
  sub: string;
  ops: string;
  /** The settings it runs with: the shipped config/message_bus.yaml, MESSAGE_BUS_* from the environment applied. */
  broker: MessageBusConfig["broker"];
}

async function brokerRole(dir: string): Promise<void> {
  const config = loadMessageBusConfig({
    ...process.env,
    MESSAGE_BUS_CONFIG: fileURLToPath(new URL("../../config/message_bus.yaml", import.meta.url)),
    MESSAGE_BUS_HOST: "127.0.0.1",
    MESSAGE_BUS_PUB_PORT: "0",
    MESSAGE_BUS_SUB_PORT: "0",
    MESSAGE_BUS_METRICS_PORT: "0",
    MESSAGE_BUS_BACKLOG_DIR: dir,
  });
  const broker = await startBroker(config, serviceLog("broker", "warn"));
  process.send?.({ pub: broker.pubEndpoint, sub: broker.subEndpoint, ops: broker.ops.url, broker: config.broker } satisfies BrokerEnds);
  process.on("SIGTERM", () => void broker.close().then(() => process.exit(0)));
}

/** Runs `body` against a broker process (backlog in memory, or on disk in a temporary directory), then stops it. */
async function withBroker<T>(mode: "memory" | "disk", body: (ends: BrokerEnds, pid: number) => Promise<T>): Promise<T> {
  const dir = mode === "disk" ? mkdtempSync(join(tmpdir(), "aixcl-bench-backlog-")) : "";
  const brokerProc = role<BrokerEnds>(script, ["broker", dir]);
  try {
    return await body(await brokerProc.ready, brokerProc.child.pid as number);
  } finally {
    brokerProc.child.kill("SIGTERM");
    await new Promise((r) => brokerProc.child.once("exit", r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

interface Result {
  mode: string;
  sent: number;
  held: number;
  heldMiB: number;
  rssBeforeMiB: number;
  rssPeakMiB: number;
  hwmMiB: number;
  holdCpuMicrosPerLine: number;
  flushSeconds: number;
  flushRate: number;
  received: number;
}

function run(mode: "memory" | "disk", seconds: number, rate: number): Promise<Result> {
  return withBroker(mode, async (ends, pid) => {
    const pub = new Publisher({ sendHighWaterMark: 100_000, linger: 2000 });
    pub.connect(ends.pub);
    await new Promise((r) => setTimeout(r, 500));
    const rssBefore = rssBytes(pid);
    const cpu0 = cpuMicros(pid);
    let sent = 0;
    let peak = rssBefore;
    const started = Date.now();
    let nextSample = started + 1000;
    while (Date.now() - started < seconds * 1000) {
      const due = Math.floor(((Date.now() - started) * rate) / 1000);
      while (sent < due) {
        await pub.send(["logs/bench_app/worker/v1", Buffer.from(line(sent))]);
        sent++;
      }
      if (Date.now() >= nextSample) {
        peak = Math.max(peak, rssBytes(pid));
        nextSample += 1000;
        if ((nextSample - started) % 10_000 < 1000) process.stdout.write(`  ${mode}: ${Math.round((Date.now() - started) / 1000)} s, ${sent} lines, broker RSS ${(rssBytes(pid) / MiB).toFixed(0)} MiB\n`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 1500));
    peak = Math.max(peak, rssBytes(pid));
    const holdCpu = cpuMicros(pid) - cpu0;
    const held = await metric(ends.ops, "aixcl_broker_backlog_messages");
    const heldBytes = await metric(ends.ops, "aixcl_broker_backlog_bytes");

    const sub = new Subscriber({ receiveHighWaterMark: 100_000, linger: 0 });
    sub.connect(ends.sub);
    sub.subscribe("logs/");
    let received = 0;
    const flushStarted = Date.now();
    const done = new Promise<void>((resolve) => {
      void receiveEach(sub, () => {
        if (++received === held) resolve();
      }).catch(() => undefined);
    });
    await Promise.race([done, new Promise((r) => setTimeout(r, 120_000))]);
    const flushSeconds = (Date.now() - flushStarted) / 1000;
    sub.close();
    pub.close();
    return {
      mode,
      sent,
      held,
      heldMiB: heldBytes / MiB,
      rssBeforeMiB: rssBefore / MiB,
      rssPeakMiB: peak / MiB,
      hwmMiB: peakRssBytes(pid) / MiB,
      holdCpuMicrosPerLine: holdCpu / Math.max(1, sent),
      flushSeconds,
      flushRate: received / flushSeconds,
      received,
    };
  });
}

interface StallResult {
  mode: string;
  settings: MessageBusConfig["broker"];
  sentMiB: number;
  hwmMiB: number;
  rssEndMiB: number;
  heldMiB: number;
  dropped: number;
}

/** A batch as our clients send it: as many ~300-byte entries as fit BATCH_LIMITS.maxBytes. */
function fullBatch(): Buffer[] {
  const entries: Uint8Array[] = [];
  let bytes = 0;
  for (let n = 0; ; n++) {
    const entry = encodeLogEntry({ ...emptyLogEntry(), level: "info", subsystem: "bench_app", module: "worker", message: line(n), topic: "logs.bench_app.worker" });
    if (bytes + entry.length > BATCH_LIMITS.maxBytes) break;
    entries.push(entry);
    bytes += entry.length;
  }
  return [Buffer.from(batchTopic("bench_app", "worker")), encodeLogBatch(entries)];
}

function stalled(mode: "memory" | "disk", seconds: number): Promise<StallResult> {
  return withBroker(mode, async (ends, pid) => {
    const sub = new Subscriber({ linger: 0 });
    sub.connect(ends.sub);
    sub.subscribe(BATCH_TOPIC_PREFIX);
    // As our clients send: a full queue (ZeroMQ's default 1,000) answers EAGAIN and the client waits.
    const pub = await subscribedPublisher(ends.pub, { wanted: BATCH_TOPIC_PREFIX, sendHighWaterMark: 1000 });
    const frames = fullBatch();
    let sentBytes = 0;
    const started = Date.now();
    while (Date.now() - started < seconds * 1000) {
      try {
        await pub.send(frames);
        sentBytes += (frames[1] as Buffer).length;
      } catch {
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    await new Promise((r) => setTimeout(r, 1500));
    const result = {
      mode,
      settings: ends.broker,
      sentMiB: sentBytes / MiB,
      hwmMiB: peakRssBytes(pid) / MiB,
      rssEndMiB: rssBytes(pid) / MiB,
      heldMiB: (await metric(ends.ops, "aixcl_broker_backlog_bytes")) / MiB,
      dropped: await metric(ends.ops, 'aixcl_broker_dropped_messages_total{family="logs",reason="backlog_full"}'),
    };
    sub.close();
    pub.close();
    return result;
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: "string", default: "60" }, rate: { type: "string", default: "2000" }, "stall-seconds": { type: "string", default: "8" } } });
  const [seconds, rate, stallSeconds] = [Number(values.seconds), Number(values.rate), Number(values["stall-seconds"])];
  console.log(`Broker holding: a plain PUB publisher at ${rate} lines/s of 300 bytes for ${seconds} s, no subscriber; shipped config/message_bus.yaml`);
  for (const mode of ["memory", "disk"] as const) {
    const r = await run(mode, seconds, rate);
    console.log(
      `  ${mode.padEnd(6)} held ${r.held} of ${r.sent} lines (${r.heldMiB.toFixed(1)} MiB); broker RSS ${r.rssBeforeMiB.toFixed(0)} MiB before, ` +
        `${r.rssPeakMiB.toFixed(0)} MiB peak while holding (VmHWM ${r.hwmMiB.toFixed(0)} MiB); ${r.holdCpuMicrosPerLine.toFixed(1)} µs CPU per held line; ` +
        `a subscriber then got ${r.received} in ${r.flushSeconds.toFixed(2)} s (${formatRate(r.flushRate)})`,
    );
  }
  console.log(`A stalled consumer: 32 KiB batches as fast as the broker takes them for ${stallSeconds} s, the subscriber never reading`);
  for (const mode of ["memory", "disk"] as const) {
    const r = await stalled(mode, stallSeconds);
    console.log(
      `  ${mode.padEnd(6)} ${r.sentMiB.toFixed(0)} MiB sent (send_hwm ${r.settings.send_hwm}, recv_hwm ${r.settings.recv_hwm}); broker VmHWM ${r.hwmMiB.toFixed(0)} MiB, ` +
        `RSS ${r.rssEndMiB.toFixed(0)} MiB at the end; backlog ${r.heldMiB.toFixed(1)} MiB (bound ${(r.settings.backlog.max_bytes / MiB).toFixed(0)} MiB), ` +
        `${r.dropped} messages dropped as backlog_full`,
    );
  }
}

const [mode, a] = process.argv.slice(2);
if (mode === "broker") await brokerRole(a ?? "");
else await main();
