/**
 * What arrives on the consumer's SUB socket, through a real broker, and what it becomes in the real Loki:
 * CurveZMQ with the broker's allow-list, the maximum message size, fuzzed frames, and hostile text in the fields
 * that become labels (subsystem, module, level).
 */
import { chmodSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import protobuf from "protobufjs";
import type { RunningBroker } from "@aixcl/broker";
import { startBroker } from "@aixcl/broker";
import { DECODE_ERROR_REASONS, decodeLogMessage, encodeAicoMessage, encodeLogEntry } from "@aixcl/wire";
import { KeyFileError, createLogger, loadClientKeys } from "@aixcl/client-logger";
import type { MessageBusConfig } from "@aixcl/service-runtime";
import { defaultsOf, generateKeys, messageBusSchema, serviceLog, stackKeyDirs } from "@aixcl/service-runtime";
import type { LokiHandle } from "@aixcl/testkit";
import { busEntry, fullEntry, metricSample, printComponentLogsOnFailure, requireComponent, seededRandom, startLoki, tempDir } from "@aixcl/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningConsumer } from "../src/index.js";
import { loadConsumerConfig, startConsumer } from "../src/index.js";
import { total, valuesBy } from "./helpers.js";
import { captureLog, connectRawPublisher, consumerConfig, until, writeConsumerConfig } from "./support.js";

const loki = requireComponent("loki");
if (loki.skip) console.warn(`skipping the bus input tests: ${loki.skip}`);

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function brokerConfig(keysDir = ""): MessageBusConfig {
  const defaults = defaultsOf(messageBusSchema).broker;
  return { host: "127.0.0.1", pub_port: 0, sub_port: 0, keys_dir: keysDir, broker: { ...defaults, metrics_port: 0 } };
}

async function broker(keysDir = ""): Promise<RunningBroker> {
  const started = await startBroker(brokerConfig(keysDir), serviceLog("broker", "error", () => {}));
  cleanups.push(() => started.close());
  return started;
}

const portOf = (endpoint: string) => Number(endpoint.slice(endpoint.lastIndexOf(":") + 1));

// A counter that was never incremented is not exposed: that reads as 0.
const metricText = async (url: string, sample: string) => (await metricSample(url, sample)) ?? 0;

/** A LogEntry written field by field, so string fields can hold bytes that are not UTF-8. */
function rawLogEntry(fields: { timestampNs: bigint; level: number; subsystem: Uint8Array; module: Uint8Array; message: Uint8Array; metadata?: [Uint8Array, Uint8Array][] }): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | 2).fork().uint32((1 << 3) | 0).int64(Number(fields.timestampNs / 1_000_000_000n)).uint32((2 << 3) | 0).int32(Number(fields.timestampNs % 1_000_000_000n)).ldelim();
  w.uint32((2 << 3) | 0).int32(fields.level);
  w.uint32((3 << 3) | 2).bytes(fields.subsystem);
  w.uint32((4 << 3) | 2).bytes(fields.module);
  w.uint32((6 << 3) | 2).bytes(fields.message);
  for (const [key, value] of fields.metadata ?? []) w.uint32((8 << 3) | 2).fork().uint32((1 << 3) | 2).bytes(key).uint32((2 << 3) | 2).bytes(value).ldelim();
  return w.finish();
}

describe.skipIf(loki.skip !== undefined)("the consumer's bus input, through a real broker, into the real Loki", () => {
  let lokiHandle: LokiHandle;
  const consumers: RunningConsumer[] = [];
  printComponentLogsOnFailure();

  beforeAll(async () => {
    lokiHandle = await startLoki();
  });
  afterAll(async () => {
    await lokiHandle?.stop();
  });
  afterEach(async () => {
    for (const c of consumers.splice(0)) await c.stop();
  });

  async function consumer(subPort: number, settings: Record<string, unknown> = {}, extra: { bus?: Record<string, unknown> } = {}) {
    const config = consumerConfig({
      bus: { host: "127.0.0.1", sub_port: subPort, ...extra.bus },
      loki: { url: lokiHandle.url },
      batch: { max_wait: "200ms" },
      ops: { port: 0 },
      ...settings,
    });
    const { log, lines } = captureLog();
    const started = await startConsumer(config, { log });
    consumers.push(started);
    return { consumer: started, lines };
  }

  describe("CurveZMQ", () => {
    function keys() {
      const dir = tempDir("consumer-keys");
      generateKeys(dir, ["app", "log-consumer"]);
      return dir;
    }

    it("an allow-listed consumer receives, encrypted, and delivers to Loki", async () => {
      const dirs = stackKeyDirs(keys());
      const bus = await broker(dirs.broker);
      const { lines } = await consumer(portOf(bus.subEndpoint), { labels: { static: { run: "curve" } } }, { bus: { keys_dir: dirs.client("log-consumer") } });
      const log = createLogger({ subsystem: "secure", module: "m", endpoint: bus.pubEndpoint, curve: loadClientKeys(dirs.client("app"), "app") });
      cleanups.push(() => log.close());
      await until("the logger to see the consumer's subscription", () => log.connected, 10_000);
      for (let n = 0; n < 20; n++) log.info(`secret ${n}`);
      const got = await lokiHandle.waitFor('{run="curve"}', 20, 20_000);
      expect(got.flatMap((s) => s.values.map((v) => busEntry(v[1]).message)).sort()).toEqual(Array.from({ length: 20 }, (_, n) => `secret ${n}`).sort());
      expect(lines.find((l) => l.msg === "log consumer started")).toMatchObject({ curve: true });
      expect(lines.find((l) => l.msg === "connected to the bus")).toMatchObject({ curve: true });
      expect(await metricText(bus.ops.url, 'aixcl_broker_auth_decisions_total{result="allowed",reason="listed"}')).toBeGreaterThanOrEqual(2);
    });

    it("a consumer whose key is not allow-listed is refused, counted on both sides, and says what to check", async () => {
      const dirs = stackKeyDirs(keys());
      const bus = await broker(dirs.broker);
      // Its own key pair, with the right broker key: the broker does not know it.
      const strangerRoot = tempDir("stranger-keys");
      generateKeys(strangerRoot, ["log-consumer"]);
      const strangerDir = stackKeyDirs(strangerRoot).client("log-consumer");
      copyFileSync(join(dirs.broker, "broker.pub"), join(strangerDir, "broker.pub"));
      const { consumer: c, lines } = await consumer(portOf(bus.subEndpoint), {}, { bus: { keys_dir: strangerDir } });
      await until("a refused handshake", async () => (await valuesBy(c.busMetrics.handshakeFailures, "kind")).auth !== undefined, 10_000);
      expect(await metricText(bus.ops.url, 'aixcl_broker_auth_decisions_total{result="denied",reason="unknown_key"}')).toBeGreaterThanOrEqual(1);
      expect(lines.find((l) => l.msg === "the broker refused the connection")).toMatchObject({ kind: "auth", hint: expect.stringMatching(/allowed_clients/) });
      const ready = (await (await fetch(`${c.opsUrl}/readyz`)).json()) as { checks: Record<string, boolean> };
      expect(ready.checks.bus_connected).toBe(false);
    });

    it("a plaintext consumer is refused by a CURVE broker and is told to set keys_dir", async () => {
      const bus = await broker(stackKeyDirs(keys()).broker);
      const { consumer: c, lines } = await consumer(portOf(bus.subEndpoint));
      await until("a refused handshake", async () => (await total(c.busMetrics.handshakeFailures)) >= 1, 10_000);
      expect(lines.find((l) => l.msg === "the broker refused the connection")).toMatchObject({ hint: expect.stringMatching(/keys_dir/) });
      expect(await metricText(bus.ops.url, 'aixcl_broker_handshake_failures_total{side="subscribers",kind="protocol"}')).toBeGreaterThanOrEqual(1);
    });

    it("a missing or readable secret key stops the start, naming the file", () => {
      const dir = stackKeyDirs(keys()).client("log-consumer");
      const secret = join(dir, "clients", "log-consumer.secret");
      chmodSync(secret, 0o644);
      const load = (env: NodeJS.ProcessEnv) => () => loadConsumerConfig({ ...env, LOG_CONSUMER_CONFIG: writeConsumerConfig({}) });
      expect(load({ MESSAGE_BUS_KEYS_DIR: dir })).toThrow(KeyFileError);
      expect(load({ MESSAGE_BUS_KEYS_DIR: dir })).toThrow(/log-consumer\.secret: readable by group or others .*chmod 600/);
      expect(load({ MESSAGE_BUS_KEYS_DIR: dir, MESSAGE_BUS_CLIENT_NAME: "nobody" })).toThrow(/clients\/nobody\.pub: missing; create keys with `\.\/aixcl keys`/);
    });
  });

  it("a message above bus.max_message_bytes is refused at the socket; the consumer reconnects and goes on", async () => {
    const bus = await broker();
    const { consumer: c, lines } = await consumer(portOf(bus.subEndpoint), { labels: { static: { run: "maxsize" } } }, { bus: { max_message_bytes: "64KiB" } });
    const publisher = connectRawPublisher(bus.pubEndpoint);
    cleanups.push(() => publisher.close());
    await publisher.waitForSubscriber("logs.");
    const now = BigInt(Date.now()) * 1_000_000n;
    const entry = (message: string, n: bigint) => encodeLogEntry(fullEntry({ message, timestampNs: now + n }));
    await publisher.publish("logs.big.m", entry("before", 0n));
    await until("the first entry", async () => (await total(c.metrics.decoded)) === 1);
    await publisher.publish("logs.big.m", entry(`huge ${"x".repeat(200 * 1024)}`, 1n));
    await until("the consumer to drop the connection", async () => (await total(c.busMetrics.disconnects)) >= 1, 10_000);
    // ZeroMQ reconnects and subscribes again; until the broker has the subscription, what is sent is not for us.
    // The same entry each time: Loki keeps one of identical entries.
    await until("an entry after the reconnect", async () => {
      await publisher.publish("logs.big.m", entry("after", 2n));
      return (await total(c.metrics.decoded)) >= 2;
    }, 10_000);
    const got = await lokiHandle.waitFor('{run="maxsize"}', 2, 20_000);
    expect(got.flatMap((s) => s.values.map((v) => busEntry(v[1]).message)).sort()).toEqual(["after", "before"]);
    expect(await total(c.metrics.decodeErrors)).toBe(0);
    expect(lines.some((l) => l.msg === "ZeroMQ gave up the connection (a message above bus.max_message_bytes?); connecting again")).toBe(true);
    expect(lines.filter((l) => l.msg === "connected to the bus").length).toBeGreaterThanOrEqual(2);
  });

  it("fuzz: 20,000 random and mutated messages and wrong frame counts; no crash, every failure counted by its reason", { timeout: 120_000 }, async () => {
    const bus = await broker();
    const { consumer: c } = await consumer(portOf(bus.subEndpoint), { labels: { static: { run: "fuzz" } } });
    const publisher = connectRawPublisher(bus.pubEndpoint);
    cleanups.push(() => publisher.close());
    await publisher.waitForSubscriber("logs.", "logs/");

    const seed = 0x5eed08;
    const next = seededRandom(seed);
    const pick = (n: number) => Math.floor(next() * n);
    const now = BigInt(Date.now()) * 1_000_000n;
    const seeds = [
      encodeLogEntry(fullEntry({ timestampNs: now })),
      encodeAicoMessage(fullEntry({ timestampNs: now }), { messageId: "m", timestampNs: now, source: "s" }),
      encodeLogEntry(fullEntry({ timestampNs: now, message: "", metadata: {}, extra: {} })),
    ];
    const topics = ["logs.api.auth", "logs/api/auth/v1", "logs.", "logs/", "logs.a.b.c.d", "logs/\u00ff/x"];
    const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => pick(256)));
    const mutate = (input: Uint8Array): Uint8Array => {
      let bytes = Buffer.from(input);
      for (let k = 1 + pick(4); k > 0; k--) {
        switch (pick(5)) {
          case 0:
            if (bytes.length) bytes[pick(bytes.length)] = (bytes[pick(bytes.length)] as number) ^ (1 << pick(8));
            break;
          case 1:
            bytes = bytes.subarray(0, pick(bytes.length + 1));
            break;
          case 2: {
            const at = pick(bytes.length + 1);
            bytes = Buffer.concat([bytes.subarray(0, at), randomBytes(1 + pick(8)), bytes.subarray(at)]);
            break;
          }
          case 3: {
            const other = seeds[pick(seeds.length)] as Uint8Array;
            bytes = Buffer.concat([bytes.subarray(0, pick(bytes.length + 1)), Buffer.from(other).subarray(pick(other.length))]);
            break;
          }
          default:
            if (bytes.length) bytes[pick(bytes.length)] = pick(256);
        }
      }
      return bytes;
    };

    const CASES = 20_000;
    const expected = new Map<string, number>();
    let delivered = 0;
    let decodable = 0;
    for (let i = 0; i < CASES; i++) {
      const kind = pick(10);
      const topic = kind === 9 ? `logs.${randomBytes(pick(12)).toString("latin1")}` : (topics[pick(topics.length)] as string);
      const payload = kind === 8 ? randomBytes(pick(200)) : mutate(seeds[pick(seeds.length)] as Uint8Array);
      const frames: Uint8Array[] = kind === 7 ? [Buffer.from(topic)] : kind === 6 ? [Buffer.from(topic), payload, randomBytes(pick(20))] : [Buffer.from(topic), payload];
      // Only topics under a subscribed prefix reach the consumer; predict what its decoder will say of each.
      const topicFrame = frames[0] as Uint8Array;
      if (!(Buffer.from(topicFrame).subarray(0, 5).toString("latin1") === "logs." || Buffer.from(topicFrame).subarray(0, 5).toString("latin1") === "logs/")) continue;
      delivered++;
      const result = decodeLogMessage(frames);
      if (result.ok) decodable++;
      else expected.set(result.reason, (expected.get(result.reason) ?? 0) + 1);
      // Send in small bursts so no high-water mark is reached (PUB drops there, which would not be the consumer's doing).
      await publisher.sendFrames(frames);
      if (i % 500 === 499) await until(`${delivered} received`, async () => (await total(c.metrics.received)) === delivered, 20_000);
    }
    await until(`${delivered} received`, async () => (await total(c.metrics.received)) === delivered, 20_000);
    await until("every decoded entry settled", async () => (await total(c.metrics.pushedEntries)) + (await total(c.metrics.dropped)) === decodable, 60_000);

    const errors = await valuesBy(c.metrics.decodeErrors);
    console.log(`receive-path fuzz (seed ${seed}): ${CASES} cases, ${delivered} reached the consumer, ${decodable} decoded, errors ${JSON.stringify(errors)}, Loki/consumer drops ${JSON.stringify(await valuesBy(c.metrics.dropped))}`);
    expect(errors).toEqual(Object.fromEntries(expected));
    for (const reason of Object.keys(errors)) expect(DECODE_ERROR_REASONS as readonly string[]).toContain(reason);
    expect(expected.get("frame_count")).toBeGreaterThan(1000);
    expect(await total(c.metrics.decoded)).toBe(decodable);
    expect((await valuesBy(c.metrics.dropped)).internal_error).toBeUndefined();
    expect((await fetch(`${c.opsUrl}/healthz`)).status).toBe(200);
  });

  it("non-UTF-8 text and label injection in subsystem, module and level come out as valid, escaped Loki labels", async () => {
    const bus = await broker();
    const { consumer: c } = await consumer(portOf(bus.subEndpoint), { labels: { static: { run: "hostile" } } });
    const publisher = connectRawPublisher(bus.pubEndpoint);
    cleanups.push(() => publisher.close());
    await publisher.waitForSubscriber("logs.");
    const now = BigInt(Date.now()) * 1_000_000n;
    const utf8 = (text: string) => Buffer.from(text, "utf8");
    const cases = [
      { topic: "logs.a.b", subsystem: utf8('evil"} {level="critical'), module: utf8('m", admin="true'), level: 20, message: "injection in subsystem and module", metadata: [[utf8('k"}{x'), utf8('v"} x')]] as [Buffer, Buffer][] },
      { topic: "logs.a.b", subsystem: utf8('Ünïcødé\nnew="line"\\'), module: utf8("a\u0000b"), level: 999, message: "level out of range" },
      { topic: "logs.a.b", subsystem: utf8("x".repeat(500)), module: utf8("}".repeat(10)), level: -7, message: "negative level, long subsystem" },
      { topic: 'logs.ev"il}{x="1.m', subsystem: utf8(""), module: utf8(""), level: 30, message: "injection in the topic" },
      // Not UTF-8: the decoder replaces the bytes with U+FFFD and keeps the entry; never a broken label.
      { topic: "logs.a.b", subsystem: Buffer.from([0xff, 0xfe, 0x61, 0xc3]), module: Buffer.from([0x6d, 0xed, 0xa0, 0x80, 0x6e]), level: 40, message: "not utf-8", metadata: [[utf8("k"), Buffer.from([0x76, 0xff])]] as [Buffer, Buffer][] },
    ];
    const outcomes = [];
    for (const [i, k] of cases.entries()) {
      const frames = [Buffer.from(k.topic), rawLogEntry({ timestampNs: now + BigInt(i), level: k.level, subsystem: k.subsystem, module: k.module, message: utf8(k.message), metadata: k.metadata })];
      outcomes.push(decodeLogMessage(frames));
      await publisher.sendFrames(frames);
    }
    const decoded = outcomes.filter((o) => o.ok);
    expect(decoded).toHaveLength(cases.length);
    await until("every message received", async () => (await total(c.metrics.received)) === cases.length);
    expect(await total(c.metrics.decodeErrors)).toBe(cases.length - decoded.length);
    const got = await lokiHandle.waitFor('{run="hostile"}', decoded.length, 20_000);
    const values = got.flatMap((s) => s.values.map(([, line, meta]) => ({ labels: s.stream, line, ...busEntry(line, meta) })));
    expect(values).toHaveLength(decoded.length);

    // Loki's own view: only our label names, every value within its alphabet.
    const range = { start: `${now - 60_000_000_000n}`, end: `${now + 60_000_000_000n}` };
    const names = (await (await fetch(`${lokiHandle.url}/loki/api/v1/labels?${new URLSearchParams(range)}`)).json()) as { data: string[] };
    expect(names.data.filter((n) => n !== "service_name").sort()).toEqual(["level", "run", "service"]);
    const series = (await (await fetch(`${lokiHandle.url}/loki/api/v1/series?${new URLSearchParams({ ...range, "match[]": '{run="hostile"}' })}`)).json()) as { data: Record<string, string>[] };
    expect(series.data.length).toBeGreaterThanOrEqual(3);
    for (const labels of series.data) {
      expect(Object.keys(labels).filter((n) => n !== "service_name").sort()).toEqual(["level", "run", "service"]);
      expect(labels.service).toMatch(/^[a-z0-9_-]{1,64}$/);
      expect(["unknown", "debug", "info", "warning", "error", "critical"]).toContain(labels.level);
    }
    const byLine = new Map(values.map((v) => [v.message, v]));
    expect(byLine.get("injection in subsystem and module")?.labels).toMatchObject({ service: "evil_level_critical", level: "info" });
    const injected = byLine.get("injection in subsystem and module")?.fields ?? {};
    expect(injected.module).toBe("m_admin_true");
    // The metadata key becomes a valid name; its value stays exactly what was sent.
    expect(Object.entries(injected).filter(([k]) => k.startsWith("meta_"))).toEqual([[expect.stringMatching(/^meta_k_+x$/), 'v"} x']]);
    expect(byLine.get("level out of range")?.labels).toMatchObject({ service: "_n_c_d_new_line_", level: "unknown" });
    expect(byLine.get("negative level, long subsystem")?.labels).toMatchObject({ service: "x".repeat(64), level: "unknown" });
    expect(byLine.get("injection in the topic")?.labels).toMatchObject({ service: "ev_il_x_1", level: "warning" });
    // Whatever the decoder made of each message is exactly what Loki has.
    for (const outcome of decoded) {
      if (!outcome.ok) continue;
      const v = byLine.get(outcome.entry.message);
      expect(v?.labels).toMatchObject({ service: outcome.entry.subsystem, level: outcome.entry.level });
      expect(v?.fields.module).toBe(outcome.entry.module);
      for (const text of [v?.line ?? "", ...Object.values(v?.fields ?? {})]) expect((text as unknown as { isWellFormed(): boolean }).isWellFormed()).toBe(true);
    }
    console.log(`hostile input: ${cases.length} messages, ${decoded.length} in Loki with safe labels, refused: ${JSON.stringify(await valuesBy(c.metrics.decodeErrors))}`);
  });
});
