/**
 * The service as a process (dist/main.js, what `npm run consumer` runs): SIGTERM and SIGINT flush and exit 0,
 * what could not be delivered is logged, and a bad config stops the start naming the key.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { watchServiceProcess } from "@aixcl/testkit";
import { FaultInjectingReceiver } from "./fault-receiver.js";
import type { TestBus } from "./support.js";
import { publishNumbered, seqOf, startTestBus, until, writeConsumerConfig } from "./support.js";

const packageDir = fileURLToPath(new URL("../", import.meta.url));
const mainJs = join(packageDir, "dist/main.js");

beforeAll(() => {
  // This runs the build, not the sources: `npm test` builds first; alone, build with `npx tsc -b services/log-consumer`.
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run \`npx tsc -b services/log-consumer\` first`);
});

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface ConsumerProcess {
  file: string;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  opsUrl: Promise<string>;
  kill(signal: NodeJS.Signals): void;
  /** Closes the read end of its stdout, as when `docker logs` or a pipe reader goes away. */
  closeStdout(): void;
}

/** Runs dist/main.js with `settings` as its config file (and a fresh spool), or with the config file `file`. */
function runConsumer(settings: Record<string, unknown>, file = writeConsumerConfig(settings)): ConsumerProcess {
  const child = spawn(process.execPath, [mainJs], { env: { ...process.env, LOG_CONSUMER_CONFIG: file }, stdio: ["ignore", "pipe", "pipe"] });
  let resolveOps: (url: string) => void = () => {};
  const opsUrl = new Promise<string>((resolve) => (resolveOps = resolve));
  const { lines, exited, dispose } = watchServiceProcess(child, (line) => {
    if (line.msg === "log consumer started") resolveOps(String(line.ops));
  });
  cleanups.push(dispose);
  return { file, lines, exited, opsUrl, kill: (signal) => child.kill(signal), closeStdout: () => child.stdout.destroy() };
}

async function decodedSoFar(opsUrl: string): Promise<number> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  return Number(/^aixcl_log_consumer_entries_decoded_total (\d+)/m.exec(text)?.[1] ?? 0);
}

async function setup(receiverScript?: FaultInjectingReceiver["script"], shutdown = "5s", spool?: { dir: string }) {
  const bus: TestBus = await startTestBus();
  cleanups.push(() => bus.close());
  const receiver = await FaultInjectingReceiver.start();
  if (receiverScript) receiver.script = receiverScript;
  cleanups.push(() => receiver.stop());
  const subscribed = bus.waitForSubscriber();
  const consumer = runConsumer({
    bus: { host: "127.0.0.1", sub_port: bus.port },
    loki: { url: receiver.url },
    // Entries wait in the open batch, so only the shutdown flush can deliver them.
    batch: { max_wait: "1m" },
    retry: { min_backoff: "20ms", max_backoff: "100ms", max_retries: 1000 },
    shutdown: { flush_deadline: shutdown },
    ops: { port: 0 },
    ...(spool && { spool }),
  });
  await subscribed;
  const opsUrl = await consumer.opsUrl;
  return { bus, receiver, consumer, opsUrl };
}

describe("log consumer process", () => {
  it("SIGTERM: stops receiving, flushes what is buffered, exits 0", async () => {
    const { bus, receiver, consumer, opsUrl } = await setup();
    await publishNumbered(bus, 300);
    await until("300 entries decoded", async () => (await decodedSoFar(opsUrl)) === 300);
    expect(receiver.written).toHaveLength(0);
    consumer.kill("SIGTERM");
    expect(await consumer.exited).toBe(0);
    expect(receiver.written.map((e) => seqOf(e.line)).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(consumer.lines.map((l) => l.msg)).toContain("flushed everything before stopping");
  });

  it("SIGTERM after its stdout was closed (EPIPE on every log line): still flushes and exits 0", async () => {
    const { bus, receiver, consumer, opsUrl } = await setup();
    consumer.closeStdout();
    await publishNumbered(bus, 300);
    await until("300 entries decoded", async () => (await decodedSoFar(opsUrl)) === 300);
    consumer.kill("SIGTERM");
    const code = await Promise.race([consumer.exited, new Promise<string>((r) => setTimeout(() => r("still running after 10 s"), 10_000))]);
    expect(code).toBe(0);
    expect(receiver.written.map((e) => seqOf(e.line)).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it("SIGINT with Loki refusing: gives up at the deadline, keeps what is left in the spool, exits 0; the next start delivers it", async () => {
    const { bus, receiver, consumer, opsUrl } = await setup(() => ({ status: 503 }), "400ms");
    await publishNumbered(bus, 120);
    await until("120 entries decoded", async () => (await decodedSoFar(opsUrl)) === 120);
    const started = Date.now();
    consumer.kill("SIGINT");
    expect(await consumer.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(consumer.lines.find((l) => l.msg === "flush deadline passed: undelivered entries stay in the spool for the next start")).toMatchObject({ level: "warn", spooled_entries: 120 });
    expect(receiver.written).toHaveLength(0);

    receiver.script = () => ({ status: 204 });
    const next = runConsumer({}, consumer.file);
    await next.opsUrl;
    await until("the spooled entries to arrive", () => receiver.written.length === 120);
    expect(receiver.written.map((e) => seqOf(e.line)).sort((a, b) => a - b)).toEqual(Array.from({ length: 120 }, (_, i) => i));
    expect(next.lines.find((l) => l.msg === "spool: delivering batches left by the previous run")).toMatchObject({ entries: 120 });
  });

  it("without a spool, SIGINT with Loki refusing: gives up at the deadline, logs what was not delivered, exits 0", async () => {
    const { bus, consumer, opsUrl } = await setup(() => ({ status: 503 }), "400ms", { dir: "" });
    await publishNumbered(bus, 120);
    await until("120 entries decoded", async () => (await decodedSoFar(opsUrl)) === 120);
    consumer.kill("SIGINT");
    expect(await consumer.exited).toBe(0);
    expect(consumer.lines.find((l) => l.msg === "flush deadline passed: entries not delivered")).toMatchObject({ level: "error", undelivered_entries: 120 });
  });

  it("a bad config stops the start with the key and the reason", async () => {
    const consumer = runConsumer({ loki: { url: "http://loki:3100/loki/api/v1/push" } });
    expect(await consumer.exited).toBe(78);
    expect(consumer.lines[0]).toMatchObject({ level: "error", msg: "bad configuration, not starting", error: expect.stringMatching(/loki\.url: give Loki's base URL/) });
  });
});
