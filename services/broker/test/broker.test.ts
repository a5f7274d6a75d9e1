import { describe, expect, it } from "vitest";
import { Subscriber, XPublisher } from "zeromq";
import type { LogEntry } from "@aixcl/wire";
import { HOLD_TOPIC, decodeLogMessage, encodeAicoMessage, encodeLogEntry } from "@aixcl/wire";
import type { Logger } from "@aixcl/client-logger";
import { createLogger } from "@aixcl/client-logger";
import type { RunningBroker } from "../src/index.js";
import { busFixture, Collector, portOf, testBroker, until, untilSubscribed } from "./bus.js";

const { cleanup, broker, subscriber } = busFixture();

function logger(b: RunningBroker, options: { format?: "aixcl" | "aico"; maxBuffered?: number } = {}): Logger {
  const log = createLogger({ subsystem: "api_gateway", module: "auth", endpoint: b.pubEndpoint, ...options });
  cleanup.push(() => log.close());
  return log;
}

const context = {
  function: "verify_token",
  filePath: "src/auth/verify.ts",
  lineNumber: 118,
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  sessionId: "sess-9",
  userUuid: "5b0c3f0e-7a3c-4c1e-9f8a-0d1e2f3a4b5c",
  metadata: { request_id: "r-42" },
};

describe("logger -> broker -> subscriber", () => {
  for (const format of ["aixcl", "aico"] as const) {
    it(`delivers every field, ${format} wire format`, async () => {
      const b = await broker();
      const sub = subscriber(b, ["logs"]);
      const log = logger(b, { format });
      await until(() => log.connected, 5000, "logger to see the subscription");
      const before = BigInt(Date.now()) * 1_000_000n;
      log.warning("token expired ✓", { attempt: 3, path: "/v1/login", ok: false }, context);
      const [frames] = await sub.take(1);
      expect(frames).toBeDefined();
      const topic = frames![0]!.toString();
      expect(topic).toBe(format === "aico" ? "logs/api_gateway/auth/v1" : "logs.api_gateway.auth");
      const result = decodeLogMessage(frames!);
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.envelope).toBe(format === "aico");
      const { timestampNs, ...rest } = result.entry;
      expect(timestampNs).toBeGreaterThanOrEqual(before);
      expect(timestampNs).toBeLessThanOrEqual(BigInt(Date.now()) * 1_000_000n);
      expect(rest).toEqual({
        level: "warning",
        subsystem: "api_gateway",
        module: "auth",
        function: "verify_token",
        message: "token expired ✓",
        topic,
        metadata: { request_id: "r-42" },
        filePath: "src/auth/verify.ts",
        lineNumber: 118,
        userUuid: context.userUuid,
        sessionId: "sess-9",
        traceId: context.traceId,
        extra: { attempt: "3", path: "/v1/login", ok: "false" },
      });
    });
  }

  it("carries all four topic/payload combinations through the broker unchanged", async () => {
    const b = await broker();
    const sub = subscriber(b, ["logs.", "logs/"]);
    const pub = new XPublisher({ linger: 0 });
    cleanup.push(() => pub.close());
    pub.connect(b.pubEndpoint);
    await untilSubscribed(pub, "logs.", "logs/");
    const entry: LogEntry = {
      timestampNs: 1_763_700_000_123_456_789n, level: "critical", subsystem: "voice", module: "stt", function: "run",
      message: "model failed", topic: "t", metadata: { a: "1" }, filePath: "f.py", lineNumber: 7, userUuid: "u",
      sessionId: "s", traceId: "tr", extra: { b: "2" },
    };
    const bare = encodeLogEntry(entry);
    const wrapped = encodeAicoMessage(entry, { messageId: "m", timestampNs: entry.timestampNs, source: "voice" });
    const sent = [
      ["logs.voice.stt", bare],
      ["logs/voice/stt/v1", bare],
      ["logs.voice.stt", wrapped],
      ["logs/voice/stt/v1", wrapped],
    ] as const;
    for (const [topic, payload] of sent) await pub.send([topic, payload]);
    const got = await sub.take(4);
    expect(got.map((f) => f[0]!.toString())).toEqual(sent.map(([t]) => t));
    for (const frames of got) expect(decodeLogMessage(frames)).toMatchObject({ ok: true, entry });
  });
});

describe("subscription filtering", () => {
  it("a logs. subscriber receives log topics and nothing else", async () => {
    const b = await broker();
    const sub = subscriber(b, ["logs."]);
    const pub = new XPublisher({ linger: 0 });
    cleanup.push(() => pub.close());
    pub.connect(b.pubEndpoint);
    await untilSubscribed(pub, "logs.");
    for (const topic of ["metrics.cpu", "logs.a.b", "events.login", "logsx.a", "logs.c.d", "LOGS.e.f"]) await pub.send([topic, "x"]);
    const got = await sub.take(10, 1000);
    expect(got.map((f) => f[0]!.toString())).toEqual(["logs.a.b", "logs.c.d"]);
  });
});

describe("oversized messages", () => {
  it("are refused at the socket; the sender reconnects and what follows gets through", async () => {
    const b = await broker({}, { max_message_bytes: 64 * 1024 });
    const sub = subscriber(b, ["logs."]);
    const pub = new XPublisher({ linger: 0 });
    cleanup.push(() => pub.close());
    pub.connect(b.pubEndpoint);
    await untilSubscribed(pub, "logs.");
    await pub.send(["logs.a.b", Buffer.alloc(32 * 1024)]);
    expect((await sub.take(1))[0]?.[1]?.length).toBe(32 * 1024);
    await pub.send(["logs.a.b", Buffer.alloc(2 * 1024 * 1024)]);
    expect(await sub.take(1, 1000)).toEqual([]);
    // Messages sent while the publisher is reconnecting may be lost; keep sending until one arrives.
    await until(async () => {
      await pub.send(["logs.a.b", "small"]);
      return sub.messages.length > 0;
    }, 5000, "a small message after the reconnect");
    expect((await sub.take(1))[0]?.[1]?.toString()).toBe("small");
  });
});

describe("broker restart", () => {
  it("a subscriber that stays connected receives what is published after the broker comes back", async () => {
    const first = await testBroker();
    const ports = { pub: portOf(first.pubEndpoint), sub: portOf(first.subEndpoint) };
    const sub = subscriber(first, ["logs."]);
    const log = logger(first);
    await until(() => log.connected, 5000, "first broker wired");
    log.info("before restart");
    expect((await sub.take(1))[0]?.[0]?.toString()).toBe("logs.api_gateway.auth");

    await first.close();
    await until(() => !log.connected, 5000, "logger to notice the broker is gone");
    log.info("while the broker is down");
    await broker(ports);
    await until(() => log.connected, 10_000, "logger and subscriber to reconnect");
    log.info("after restart");

    const got = await sub.take(2, 10_000);
    const messages = got.map((f) => (decodeLogMessage(f) as { entry: LogEntry }).entry.message);
    // The entry logged while the broker was down was held by the logger, not lost.
    expect(messages).toEqual(["while the broker is down", "after restart"]);
  });
});

describe("a subscriber leaving (HOLD_TOPIC)", () => {
  it("makes loggers hold until it is gone, so what it unsubscribes from is not sent into the gap; the next subscriber gets it in order", async () => {
    const b = await broker();
    const leaving = subscriber(b, ["logs."]);
    const log = logger(b);
    await until(() => log.connected, 5000, "logger wired");
    log.info("before");
    expect((await leaving.take(1)).map((f) => (decodeLogMessage(f) as { entry: LogEntry }).entry.message)).toEqual(["before"]);

    leaving.socket.subscribe(HOLD_TOPIC);
    await until(() => !log.connected, 5000, "logger to hold");
    for (let i = 0; i < 3; i++) log.info(`held ${i}`);
    expect(log.stats()).toMatchObject({ buffered: 3, published: 1 });
    leaving.socket.unsubscribe("logs.");
    await leaving.close();
    expect(leaving.messages).toEqual([]);

    const next = subscriber(b, ["logs."]);
    const got = await next.take(3, 10_000);
    expect(got.map((f) => (decodeLogMessage(f) as { entry: LogEntry }).entry.message)).toEqual(["held 0", "held 1", "held 2"]);
    expect(log.stats()).toMatchObject({ buffered: 0, published: 4 });
  });
});

describe("logger before the bus is reachable", () => {
  it("holds entries, delivers them once subscribed, and counts what its bound forced it to drop", async () => {
    const b = await broker();
    await b.close();
    const pubPort = portOf(b.pubEndpoint);
    const log = createLogger({ subsystem: "s", module: "m", endpoint: b.pubEndpoint, maxBuffered: 5 });
    cleanup.push(() => log.close());
    for (let i = 0; i < 8; i++) log.info(`m${i}`);
    expect(log.stats()).toMatchObject({ buffered: 5, published: 0, dropped: { buffer_full: 3 } });

    const again = await broker({ pub: pubPort });
    const sub = subscriber(again, ["logs."]);
    const got = await sub.take(5, 10_000);
    expect(got.map((f) => (decodeLogMessage(f) as { entry: LogEntry }).entry.message)).toEqual(["m3", "m4", "m5", "m6", "m7"]);
    expect(log.stats()).toMatchObject({ buffered: 0, published: 5 });
  });

  it("waits out a full send queue instead of losing entries (NODROP answers EAGAIN at the high-water mark)", async () => {
    const b = await broker({}, { no_drop: true, send_hwm: 10, recv_hwm: 10 });
    const socket = new Subscriber({ linger: 0, receiveHighWaterMark: 10 });
    socket.connect(b.subEndpoint);
    socket.subscribe("logs.");
    const log = createLogger({ subsystem: "s", module: "m", endpoint: b.pubEndpoint, maxBuffered: 50_000, maxBufferedBytes: 64 * 1024 ** 2 });
    cleanup.push(() => log.close(), () => socket.close());
    await until(() => log.connected, 5000, "logger wired");
    // Nobody reads yet: the 10-deep queues and the kernel's socket buffers along the way fill (2 KB entries,
    // 40 MB in all) and the logger has to wait.
    const pad = "x".repeat(2000);
    for (let i = 0; i < 20_000; i++) log.info(`m${i}`, { pad });
    await new Promise((r) => setTimeout(r, 300));
    expect(log.stats().buffered).toBeGreaterThan(0);
    const sub = new Collector(socket);
    const got = await sub.take(20_000, 20_000);
    expect(got.map((f) => (decodeLogMessage(f) as { entry: LogEntry }).entry.message)).toEqual(Array.from({ length: 20_000 }, (_, i) => `m${i}`));
    expect(log.stats()).toMatchObject({ published: 20_000, buffered: 0, dropped: { buffer_full: 0 } });
  });

  it("close() flushes what is held and counts what could not be delivered", async () => {
    const b = await broker();
    const sub = subscriber(b, ["logs."]);
    const log = createLogger({ subsystem: "s", module: "m", endpoint: b.pubEndpoint, closeTimeoutMs: 3000 });
    for (let i = 0; i < 100; i++) log.info(`m${i}`);
    const stats = await log.close();
    expect(stats).toMatchObject({ published: 100, dropped: { closed: 0, buffer_full: 0 } });
    expect(await sub.take(100)).toHaveLength(100);
    log.info("after close");
    expect(log.stats().dropped.closed).toBe(1);

    const nowhere = createLogger({ subsystem: "s", module: "m", endpoint: "tcp://127.0.0.1:1", closeTimeoutMs: 100 });
    nowhere.info("never delivered");
    expect(await nowhere.close()).toMatchObject({ published: 0, dropped: { closed: 1 } });
  });
});
