/**
 * The logger's choice between single entries and batches, against a real ZeroMQ XSUB standing where the broker's
 * is: the subscriptions it sends upstream are what the logger sees, and every message it receives is what the
 * logger sent. Batches only while a subscriber takes aixcl.batch.; never in AICO's format; a hold holds them too.
 */
import { afterEach, describe, expect, it } from "vitest";
import { XSubscriber } from "zeromq";
import { decodeLogBatch, decodeLogMessage, HOLD_TOPIC } from "@aixcl/wire";
import type { Logger, LoggerOptions } from "../src/index.js";
import { BATCH_LIMITS, createLogger } from "../src/index.js";

interface Upstream {
  endpoint: string;
  subscribe(prefix: string, on?: boolean): Promise<void>;
  /** Messages received so far: topic and the messages of the entries they carry. */
  messages: { topic: string; lines: string[] }[];
  /** Payload size of each message, in the order of messages. */
  payloadBytes: number[];
  close(): void;
}

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

async function upstream(): Promise<Upstream> {
  const socket = new XSubscriber({ linger: 0 });
  await socket.bind("tcp://127.0.0.1:*");
  const messages: Upstream["messages"] = [];
  const payloadBytes: number[] = [];
  void (async () => {
    for await (const frames of socket) {
      const topic = frames[0]?.toString() ?? "";
      const lines: string[] = [];
      if (topic.startsWith("aixcl.batch.")) decodeLogBatch(frames, (e) => lines.push(e.message), (reason) => lines.push(`error ${reason}`));
      else {
        const r = decodeLogMessage(frames);
        lines.push(r.ok ? r.entry.message : `error ${r.reason}`);
      }
      messages.push({ topic, lines });
      payloadBytes.push(frames[1]?.length ?? 0);
    }
  })().catch(() => undefined);
  const u: Upstream = {
    endpoint: socket.lastEndpoint ?? "",
    subscribe: (prefix, on = true) => socket.send(Buffer.concat([Buffer.from([on ? 1 : 0]), Buffer.from(prefix)])),
    messages,
    payloadBytes,
    close: () => socket.close(),
  };
  open.push(u);
  return u;
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function connectedLogger(u: Upstream, options: Partial<LoggerOptions> = {}): Promise<Logger> {
  const logger = createLogger({ subsystem: "shop", module: "cart", endpoint: u.endpoint, ...options });
  open.push({ close: () => logger.close() });
  await until("the logger to see the subscriptions", () => logger.connected);
  return logger;
}

const lines = (u: Upstream) => u.messages.flatMap((m) => m.lines);

describe("the logger: single entries or batches", () => {
  it("sends single entries on logs.<subsystem>.<module> while nobody takes batches, however many wait", async () => {
    const u = await upstream();
    await u.subscribe("logs.");
    const logger = await connectedLogger(u);
    for (let i = 0; i < 200; i++) logger.info(`line ${i}`);
    await until("200 lines", () => lines(u).length === 200);
    expect(u.messages.every((m) => m.topic === "logs.shop.cart" && m.lines.length === 1)).toBe(true);
    expect(lines(u)).toEqual(Array.from({ length: 200 }, (_, i) => `line ${i}`));
  });

  it("sends what waits as batches on aixcl.batch.<subsystem>.<module> while a subscriber takes them, in order", async () => {
    const u = await upstream();
    await u.subscribe("logs.");
    await u.subscribe("aixcl.batch.");
    const logger = await connectedLogger(u);
    for (let i = 0; i < 2500; i++) logger.info(`line ${i}`);
    await until("2500 lines", () => lines(u).length === 2500);
    expect(lines(u)).toEqual(Array.from({ length: 2500 }, (_, i) => `line ${i}`));
    const batches = u.messages.filter((m) => m.topic === "aixcl.batch.shop.cart");
    expect(batches.length).toBe(u.messages.length);
    // Each batch as full as BATCH_LIMITS.maxBytes allows (these entries are ~60 bytes): a handful of messages, not 2,500.
    expect(u.messages.length).toBeLessThanOrEqual(8);
    // maxBytes counts the entries' own bytes; the batch adds each one's tag and length (3 bytes here).
    u.payloadBytes.forEach((bytes, i) => expect(bytes).toBeLessThanOrEqual(BATCH_LIMITS.maxBytes + 3 * (u.messages[i]?.lines.length ?? 0)));
    expect(Math.max(...u.payloadBytes)).toBeGreaterThan(BATCH_LIMITS.maxBytes * 0.9);
    expect(logger.stats().published).toBe(2500);
  });

  it("waits up to batchWindowMs for company: entries logged within the window share a message", async () => {
    const u = await upstream();
    await u.subscribe("logs.");
    await u.subscribe("aixcl.batch.");
    const logger = await connectedLogger(u, { batchWindowMs: 200 });
    for (let i = 0; i < 5; i++) {
      logger.info(`spaced ${i}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await until("5 lines", () => lines(u).length === 5);
    expect(u.messages).toEqual([{ topic: "aixcl.batch.shop.cart", lines: ["spaced 0", "spaced 1", "spaced 2", "spaced 3", "spaced 4"] }]);
  });

  it("sends a lone entry as it is while single entries are taken, and as a batch of one when only batches are", async () => {
    const u = await upstream();
    await u.subscribe("logs.");
    await u.subscribe("aixcl.batch.");
    const logger = await connectedLogger(u);
    logger.info("alone");
    await until("1 line", () => lines(u).length === 1);
    expect(u.messages).toEqual([{ topic: "logs.shop.cart", lines: ["alone"] }]);

    await u.subscribe("logs.", false);
    await new Promise((r) => setTimeout(r, 50));
    logger.info("alone again");
    await until("2 lines", () => lines(u).length === 2);
    expect(u.messages[1]).toEqual({ topic: "aixcl.batch.shop.cart", lines: ["alone again"] });
  });

  it("holds batches too while someone subscribes to the hold topic", async () => {
    const u = await upstream();
    await u.subscribe("aixcl.batch.");
    const logger = await connectedLogger(u);
    await u.subscribe(HOLD_TOPIC);
    await until("the hold to reach the logger", () => !logger.connected);
    for (let i = 0; i < 10; i++) logger.info(`held ${i}`);
    await new Promise((r) => setTimeout(r, 100));
    expect(u.messages).toEqual([]);
    await u.subscribe(HOLD_TOPIC, false);
    await until("10 lines", () => lines(u).length === 10);
    expect(lines(u)).toEqual(Array.from({ length: 10 }, (_, i) => `held ${i}`));
  });

  it("never batches in AICO's wire format: AICO's consumers know nothing of batches", async () => {
    const u = await upstream();
    await u.subscribe("logs/");
    await u.subscribe("aixcl.batch.");
    const logger = await connectedLogger(u, { format: "aico" });
    for (let i = 0; i < 50; i++) logger.info(`aico ${i}`);
    await until("50 lines", () => lines(u).length === 50);
    expect(new Set(u.messages.map((m) => m.topic))).toEqual(new Set(["logs/shop/cart/v1"]));
  });
});
