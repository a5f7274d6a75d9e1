/**
 * Broker forwarding benchmark: 200-byte messages, publisher -> broker -> subscriber, beside a direct
 * PUB -> SUB run as the ceiling, each side in its own process. Prints messages/s, the ratio to the
 * ceiling, loss, the broker's CPU per message and peak RSS.
 * Then, at steady rates (--paced, lines/s, 10 s each), the broker's CPU per message with a subscriber keeping up.
 * Usage: npm run bench:broker [-- --messages 500000] [--paced 2000,10000] [--broker-from DIR] (the broker of
 * another built checkout, for before/after comparisons in the same conditions).
 */
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Subscriber } from "zeromq";
import type { MessageBusConfig } from "@aixcl/service-runtime";
import { defaultsOf, messageBusSchema } from "@aixcl/service-runtime";
import { cpuMicros, formatRate, peakRssBytes, role } from "./proc.js";
import { subscribedPublisher } from "./xpub.js";

const script = fileURLToPath(import.meta.url);
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const PAYLOAD_BYTES = 200;
const TOPIC = "logs.bench.forwarding";

interface SubResult {
  received: number;
  seconds: number;
}

async function subscriberRole(bindOrConnect: "bind" | "connect", endpoint: string, expected: number): Promise<void> {
  const sub = new Subscriber({ receiveHighWaterMark: 100_000, linger: 0 });
  if (bindOrConnect === "bind") await sub.bind(endpoint);
  else sub.connect(endpoint);
  sub.subscribe("logs.");
  process.send?.({ endpoint: sub.lastEndpoint ?? endpoint });
  let received = 0;
  let first = 0n;
  let last = 0n;
  // The subscriber reads like the consumer does, through the async iterator; an idle spell means the rest was lost.
  const idle = setTimeout(() => sub.close(), 10_000);
  try {
    for await (const _ of sub) {
      last = process.hrtime.bigint();
      if (received++ === 0) first = last;
      if (received === expected) break;
      if (received % 10_000 === 0) idle.refresh();
    }
  } catch {
    // Closed by the idle timer.
  }
  clearTimeout(idle);
  process.send?.({ received, seconds: Number(last - first) / 1e9 } satisfies SubResult);
  if (!sub.closed) sub.close();
}

async function publisherRole(endpoint: string, count: number): Promise<void> {
  const pub = await subscribedPublisher(endpoint);
  process.send?.({ subscribed: true });
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  const topic = Buffer.from(TOPIC);
  for (let i = 0; i < count; ) {
    try {
      await pub.send([topic, payload]);
      i++;
    } catch (error) {
      // NODROP at the high-water mark answers EAGAIN; wait for the subscriber side to drain.
      if ((error as { code?: string }).code !== "EAGAIN") throw error;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  // Stays up (and connected) until the parent has the subscriber's count and ends this process.
  process.send?.({ sent: count });
}

async function measure(name: string, subArgs: string[], pubEndpoint: (subEndpoint: string) => string, count: number): Promise<{ rate: number; received: number }> {
  const sub = role<{ endpoint: string } & SubResult>(script, ["sub", ...subArgs, String(count)]);
  const { endpoint } = await sub.ready;
  const pub = role<unknown>(script, ["pub", pubEndpoint(endpoint), String(count)]);
  await pub.done;
  const result = await sub.done;
  pub.child.kill();
  const rate = result.received / result.seconds;
  console.log(`  ${name.padEnd(34)} ${formatRate(rate).padStart(16)}   received ${result.received}/${count}`);
  return { rate, received: result.received };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { messages: { type: "string", default: "500000" }, paced: { type: "string", default: "2000,10000" }, "broker-from": { type: "string", default: repoRoot } },
  });
  const count = Number(values.messages);
  const checkout = resolve(values["broker-from"]);
  console.log(`Broker forwarding, ${count} messages of ${PAYLOAD_BYTES} bytes each, each party in its own process; broker from ${checkout}`);

  const direct = await measure("direct PUB -> SUB (ceiling)", ["bind", "tcp://127.0.0.1:*"], (e) => e, count);
  const variants: Partial<MessageBusConfig["broker"]>[] = [
    {},
    { no_drop: true },
    { count_messages: false },
  ];
  for (const variant of variants) {
    const brokerProc = role<{ pub: string; sub: string }>(script, ["broker", checkout, JSON.stringify(variant)]);
    const ends = await brokerProc.ready;
    const pid = brokerProc.child.pid as number;
    const label = `via broker ${Object.keys(variant).length ? JSON.stringify(variant).replace(/"/g, "") : "(defaults)"}`;
    const cpu0 = cpuMicros(pid);
    const r = await measure(label, ["connect", ends.sub], () => ends.pub, count);
    const cpu = cpuMicros(pid) - cpu0;
    const rss = peakRssBytes(pid);
    brokerProc.child.kill("SIGTERM");
    console.log(`  ${"".padEnd(34)} ratio to direct ${(r.rate / direct.rate).toFixed(2)}, broker ${(cpu / Math.max(1, r.received)).toFixed(1)} µs CPU/msg, peak RSS ${(rss / 2 ** 20).toFixed(1)} MiB`);
  }
  console.log("Loss in the default mode is what the broker could not hold or forward (counted on its /metrics); no_drop trades it for back-pressure.");

  for (const rate of values.paced.split(",").filter(Boolean).map(Number)) {
    const seconds = 10;
    const brokerProc = role<{ pub: string; sub: string }>(script, ["broker", checkout, "{}"]);
    const ends = await brokerProc.ready;
    const pid = brokerProc.child.pid as number;
    const sub = role<{ endpoint: string } & SubResult>(script, ["sub", "connect", ends.sub, String(rate * seconds)]);
    await sub.ready;
    const pub = role<unknown>(script, ["paced", ends.pub, String(rate), String(seconds)]);
    await pub.ready;
    const cpu0 = cpuMicros(pid);
    const result = await sub.done;
    const cpu = cpuMicros(pid) - cpu0;
    pub.child.kill();
    brokerProc.child.kill("SIGTERM");
    console.log(`  paced ${formatRate(rate).padStart(12)} for ${seconds} s: broker ${(cpu / Math.max(1, result.received)).toFixed(1)} µs CPU/msg, received ${result.received}/${rate * seconds}`);
  }
}

/** Publishes `rate` messages per second for `seconds`, catching up every 10 ms. */
async function pacedRole(endpoint: string, rate: number, seconds: number): Promise<void> {
  const pub = await subscribedPublisher(endpoint);
  process.send?.({ subscribed: true });
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  const topic = Buffer.from(TOPIC);
  const started = Date.now();
  for (let sent = 0; sent < rate * seconds; ) {
    const due = Math.min(rate * seconds, Math.floor(((Date.now() - started) * rate) / 1000));
    while (sent < due) {
      await pub.send([topic, payload]);
      sent++;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function brokerRole(checkout: string, variant: Partial<MessageBusConfig["broker"]>): Promise<void> {
  const { startBroker } = (await import(pathToFileURL(resolve(checkout, "services/broker/dist/index.js")).href)) as typeof import("@aixcl/broker");
  const defaults = defaultsOf(messageBusSchema).broker;
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  const broker = await startBroker(
    { host: "127.0.0.1", pub_port: 0, sub_port: 0, keys_dir: "", broker: { ...defaults, metrics_port: 0, ...variant } },
    silent,
  );
  process.send?.({ pub: broker.pubEndpoint, sub: broker.subEndpoint });
  process.on("SIGTERM", () => void broker.close().then(() => process.exit(0)));
}

const [mode, a, b, c] = process.argv.slice(2);

if (mode === "sub") await subscriberRole(a as "bind" | "connect", b as string, Number(c));
else if (mode === "pub") await publisherRole(a as string, Number(b));
else if (mode === "broker") await brokerRole(a as string, JSON.parse(b as string) as Partial<MessageBusConfig["broker"]>);
else if (mode === "paced") await pacedRole(a as string, Number(b), Number(c));
else await main();
