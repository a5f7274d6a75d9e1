/**
 * The broker holding logs for an absent consumer: a plain ZeroMQ PUB publisher sends ~300-byte log lines at
 * --rate lines/s for --seconds while no subscriber exists; the broker (its own process, shipped defaults) holds
 * them in memory, then with broker.backlog.dir on disk. Prints the broker's RSS while holding (sampled every
 * second), what it held, its CPU per held line, and how fast a subscriber then gets the backlog.
 * Usage: npm run bench:backlog [-- --seconds 60 --rate 2000]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Publisher, Subscriber } from "zeromq";
import { startBroker } from "@aixcl/broker";
import { defaultsOf, messageBusSchema, receiveEach, serviceLog } from "@aixcl/shared";
import { cpuMicros, formatRate, peakRssBytes, role } from "./proc.js";

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

async function brokerRole(dir: string): Promise<void> {
  const defaults = defaultsOf(messageBusSchema);
  const broker = await startBroker(
    { ...defaults, host: "127.0.0.1", pub_port: 0, sub_port: 0, broker: { ...defaults.broker, metrics_port: 0, backlog: { ...defaults.broker.backlog, dir } } },
    serviceLog("broker", "warn"),
  );
  process.send?.({ pub: broker.pubEndpoint, sub: broker.subEndpoint, ops: broker.ops.url });
  process.on("SIGTERM", () => void broker.close().then(() => process.exit(0)));
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

async function run(mode: "memory" | "disk", seconds: number, rate: number): Promise<Result> {
  const dir = mode === "disk" ? mkdtempSync(join(tmpdir(), "aixcl-bench-backlog-")) : "";
  const brokerProc = role<{ pub: string; sub: string; ops: string }>(script, ["broker", dir]);
  try {
    const ends = await brokerProc.ready;
    const pid = brokerProc.child.pid as number;
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
  } finally {
    brokerProc.child.kill("SIGTERM");
    await new Promise((r) => brokerProc.child.once("exit", r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: "string", default: "60" }, rate: { type: "string", default: "2000" } } });
  const [seconds, rate] = [Number(values.seconds), Number(values.rate)];
  console.log(`Broker holding: a plain PUB publisher at ${rate} lines/s of 300 bytes for ${seconds} s, no subscriber; shipped defaults (max_bytes 128 MiB)`);
  for (const mode of ["memory", "disk"] as const) {
    const r = await run(mode, seconds, rate);
    console.log(
      `  ${mode.padEnd(6)} held ${r.held} of ${r.sent} lines (${r.heldMiB.toFixed(1)} MiB); broker RSS ${r.rssBeforeMiB.toFixed(0)} MiB before, ` +
        `${r.rssPeakMiB.toFixed(0)} MiB peak while holding (VmHWM ${r.hwmMiB.toFixed(0)} MiB); ${r.holdCpuMicrosPerLine.toFixed(1)} µs CPU per held line; ` +
        `a subscriber then got ${r.received} in ${r.flushSeconds.toFixed(2)} s (${formatRate(r.flushRate)})`,
    );
  }
}

const [mode, a] = process.argv.slice(2);
if (mode === "broker") await brokerRole(a ?? "");
else await main();
