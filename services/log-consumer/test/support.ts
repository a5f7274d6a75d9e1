import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LogEntry } from "@aixcl/wire";
import { encodeLogEntry } from "@aixcl/wire";
import { serviceLog } from "@aixcl/service-runtime";
import { fullEntry, tempDir } from "@aixcl/testkit";
import { XPublisher } from "zeromq";
import type { ConsumerConfig, RunningConsumer } from "../src/index.js";
import { loadConsumerConfig } from "../src/index.js";
import { total } from "./helpers.js";

/**
 * Loads a consumer config the way the service does: `settings` (the YAML file's content, e.g. { batch: { max_wait:
 * "50ms" } }) written to a file (JSON is YAML), env overrides included. The spool goes to a fresh temp directory
 * unless `settings.spool.dir` says otherwise.
 */
export function consumerConfig(settings: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): ConsumerConfig {
  const file = writeConsumerConfig(settings);
  return loadConsumerConfig({ ...env, LOG_CONSUMER_CONFIG: file });
}

/** Writes `settings` as a config file (JSON is YAML) beside a fresh spool directory; returns the file's path. */
export function writeConsumerConfig(settings: Record<string, unknown>): string {
  const dir = tempDir("log-consumer");
  const file = join(dir, "log_consumer.yaml");
  writeFileSync(file, JSON.stringify({ ...settings, spool: { dir: join(dir, "spool"), ...(settings.spool as object | undefined) } }));
  return file;
}

/** The consumer's own log lines, kept for assertions instead of printed. */
export function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const log = serviceLog("log-consumer", "debug", (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  return { log, lines };
}

/**
 * A bus without a broker: an XPUB bound where the consumer's SUB connects. Seeing the subscription arrive tells
 * the test the consumer is listening, so no message is published into the void.
 */
export async function startTestBus() {
  const socket = new XPublisher({ sendHighWaterMark: 1_000_000, linger: 0 });
  await socket.bind("tcp://127.0.0.1:0");
  return { port: Number(/:(\d+)$/.exec(socket.lastEndpoint ?? "")?.[1]), ...publisherOn(socket) };
}

/** A raw publisher connected to a broker's publisher endpoint: sends exactly the frames a test builds. */
export function connectRawPublisher(endpoint: string) {
  const socket = new XPublisher({ sendHighWaterMark: 1_000_000, linger: 1000 });
  socket.connect(endpoint);
  return publisherOn(socket);
}

function publisherOn(socket: XPublisher) {
  return {
    /** Resolves when subscriptions for all of `prefixes` (default: `logs.`) have arrived. */
    async waitForSubscriber(...prefixes: string[]): Promise<void> {
      const wanted = new Set(prefixes.length > 0 ? prefixes : ["logs."]);
      while (wanted.size > 0) {
        const [message] = await socket.receive();
        if (message && message[0] === 1) wanted.delete(message.subarray(1).toString());
      }
    },
    async publish(topic: string, payload: Uint8Array): Promise<void> {
      await socket.send([topic, payload]);
    },
    /** Any frames, including a wrong number of them. */
    async sendFrames(frames: Uint8Array[]): Promise<void> {
      await socket.send(frames);
    },
    close: () => socket.close(),
  };
}

export type Publisher = ReturnType<typeof publisherOn>;
export type TestBus = Awaited<ReturnType<typeof startTestBus>>;

/**
 * Publishes `count` entries numbered from `first` (default 0) in their message ("seq=<n> ..."), each with what
 * `extra` gives for its number, and returns them.
 */
export async function publishNumbered(bus: Publisher, count: number, options: { first?: number; extra?: (n: number) => Partial<LogEntry> } = {}): Promise<LogEntry[]> {
  const { first = 0, extra = () => ({}) } = options;
  const entries: LogEntry[] = [];
  const base = BigInt(Date.now()) * 1_000_000n;
  for (let n = first; n < first + count; n++) {
    const entry = fullEntry({ message: `seq=${n} ${"payload ".repeat(20)}`, timestampNs: base + BigInt(n), ...extra(n) });
    entries.push(entry);
    await bus.publish("logs.api_gateway.auth", encodeLogEntry(entry));
  }
  return entries;
}

export function seqOf(line: string): number {
  const match = /^seq=(\d+) /.exec(line);
  if (!match) throw new Error(`not a numbered line: ${line.slice(0, 40)}`);
  return Number(match[1]);
}

/** Polls until `check` holds or fails with `what` after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Entries the consumer has finished with: accepted by Loki or dropped. */
export async function settledEntries(consumer: RunningConsumer): Promise<number> {
  return (await total(consumer.metrics.pushedEntries)) + (await total(consumer.metrics.dropped));
}
