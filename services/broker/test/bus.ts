import { afterEach } from "vitest";
import { Publisher, Subscriber, XPublisher } from "zeromq";
import { metricSample } from "@aixcl/testkit";
import type { MessageBusConfig } from "@aixcl/service-runtime";
import { defaultsOf, messageBusSchema } from "@aixcl/service-runtime";
import type { RunningBroker } from "../src/index.js";
import { startBroker } from "../src/index.js";

const silent = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A broker on loopback with ephemeral (or given) ports and its metrics server on a free port. Given ports may
 * still be held by a broker closed a moment ago (libzmq releases them on its I/O thread a few ms after close()),
 * so binding them is retried for up to a second.
 */
export async function testBroker(
  ports: { pub?: number; sub?: number } = {},
  overrides: Partial<MessageBusConfig["broker"]> = {},
  top: Partial<Pick<MessageBusConfig, "keys_dir">> = {},
): Promise<RunningBroker> {
  const defaults = defaultsOf(messageBusSchema);
  const config = {
    host: "127.0.0.1",
    pub_port: ports.pub ?? 0,
    sub_port: ports.sub ?? 0,
    keys_dir: top.keys_dir ?? "",
    broker: { ...defaults.broker, metrics_port: 0, ...overrides },
  };
  const deadline = Date.now() + 1000;
  for (;;) {
    try {
      return await startBroker(config, silent);
    } catch (error) {
      if (!/Address already in use/.test(String(error)) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

export function portOf(endpoint: string): number {
  return Number(endpoint.slice(endpoint.lastIndexOf(":") + 1));
}

/**
 * Keeps a receive outstanding at all times, as a real subscriber does: zeromq.js only processes a socket's
 * internal commands (such as re-sending subscriptions after a reconnect) while an operation is pending.
 */
export class Collector {
  readonly messages: Buffer[][] = [];
  private readonly loop: Promise<void>;

  constructor(readonly socket: Subscriber) {
    this.loop = (async () => {
      for await (const frames of socket) this.messages.push(frames);
    })().catch(() => undefined);
  }

  /** Resolves with the first `count` messages, or with what arrived when the deadline passed. */
  async take(count: number, timeoutMs = 5000): Promise<Buffer[][]> {
    await until(() => this.messages.length >= count, timeoutMs, `${count} messages`).catch(() => undefined);
    return this.messages.splice(0, count);
  }

  async close(): Promise<void> {
    this.socket.close();
    await this.loop;
  }
}

/** Resolves once the publisher-side socket has seen subscriptions covering every one of `topics`. */
export async function untilSubscribed(pub: XPublisher, ...topics: string[]): Promise<void> {
  pub.receiveTimeout = 5000;
  const prefixes: string[] = [];
  while (!topics.every((t) => prefixes.some((p) => t.startsWith(p)))) {
    const [frame] = await pub.receive();
    if (frame && frame[0] === 1) prefixes.push(frame.subarray(1).toString());
  }
}

export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A plain ZeroMQ PUB socket, as AICO's services publish: it knows nothing of our hold handshake and filters on
 * the subscriptions it has seen. Resolves once the broker has accepted it and its subscriptions had time to arrive.
 */
export async function plainPublisher(b: RunningBroker, sendHighWaterMark = 100_000): Promise<Publisher> {
  const pub = new Publisher({ sendHighWaterMark, linger: 1000 });
  const before = (await metricSample(b.ops.url, 'aixcl_broker_connected_peers{side="publishers"}')) ?? 0;
  pub.connect(b.pubEndpoint);
  await until(async () => ((await metricSample(b.ops.url, 'aixcl_broker_connected_peers{side="publishers"}')) ?? 0) > before, 5000, "the broker to accept the publisher");
  await new Promise((r) => setTimeout(r, 200));
  return pub;
}

/**
 * What a test file's tests open, closed after each test, newest first: call at the top of the file, then make
 * brokers and subscribers through it (and push other closers onto `cleanup`).
 */
export function busFixture() {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  return {
    cleanup,
    async broker(...args: Parameters<typeof testBroker>): Promise<RunningBroker> {
      const b = await testBroker(...args);
      cleanup.push(() => b.close());
      return b;
    },
    subscriber(b: RunningBroker, prefixes: string[], options: ConstructorParameters<typeof Subscriber>[0] = {}): Collector {
      const sub = new Subscriber({ linger: 0, ...options });
      sub.connect(b.subEndpoint);
      for (const p of prefixes) sub.subscribe(p);
      const collector = new Collector(sub);
      cleanup.push(() => collector.close());
      return collector;
    },
  };
}
