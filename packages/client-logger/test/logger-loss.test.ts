/**
 * Every entry the logger takes is counted once, and none is sent that the bus would refuse: against a real ZeroMQ
 * XSUB standing where the broker's is, with the broker's max_message_bytes as its ZeroMQ maxMessageSize.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Upstream } from "@aixcl/testkit";
import { startUpstream, until } from "@aixcl/testkit";
import { defaultsOf, messageBusSchema } from "@aixcl/service-runtime";
import type { Logger, LoggerOptions } from "../src/index.js";
import { createLogger, MAX_MESSAGE_BYTES, truncationMarker } from "../src/index.js";

/** The broker's default max_message_bytes, which the logger's default maxMessageBytes must be. */
const BROKER_MAX_MESSAGE_BYTES = defaultsOf(messageBusSchema).broker.max_message_bytes;

const open: { close(): unknown }[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const o of open.splice(0)) await o.close();
});

async function upstream(options: { maxMessageSize?: number } = {}): Promise<Upstream> {
  const u = await startUpstream(options);
  open.push(u);
  return u;
}

function logger(u: Upstream, options: Partial<LoggerOptions> = {}): Logger {
  const l = createLogger({ subsystem: "shop", module: "cart", endpoint: u.endpoint, ...options });
  open.push({ close: () => l.close() });
  return l;
}

const received = (u: Upstream) => u.messages.flatMap((m) => m.entries);
const stderrLines = () => {
  const lines: string[] = [];
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  return lines;
};

describe("the logger: entries over the bus' message size", () => {
  it("cuts an entry over maxMessageBytes (default: the broker's 1 MiB) at the client, so the connection and the entries after it survive", async () => {
    const u = await upstream({ maxMessageSize: BROKER_MAX_MESSAGE_BYTES });
    await u.subscribe("logs.");
    await u.subscribe("aixcl.batch.");
    const log = logger(u);
    await until("the subscriptions", () => log.connected);
    const lines = stderrLines();
    for (let i = 0; i < 100; i++) log.info(`before ${i}`);
    log.info("x".repeat(2 * 1024 * 1024));
    for (let i = 0; i < 100; i++) log.info(`after ${i}`);
    await until("201 entries", () => received(u).length === 201);
    const big = received(u)[100]?.message ?? "";
    expect(big.startsWith("xxx") && big.endsWith(truncationMarker(2 * 1024 * 1024))).toBe(true);
    expect(received(u)[200]?.message).toBe("after 99");
    expect(Math.max(...u.payloadBytes)).toBeLessThanOrEqual(BROKER_MAX_MESSAGE_BYTES);
    expect(log.stats()).toMatchObject({ published: 201, truncated: 1, dropped: { buffer_full: 0, closed: 0, too_large: 0 } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^@aixcl\/logging \(logs\.shop\.cart\): 1 log entry over maxMessageBytes \(1048576 bytes.*: 1 sent with their longest texts cut/);
    expect(MAX_MESSAGE_BYTES).toBe(BROKER_MAX_MESSAGE_BYTES);
  });

  it("takes maxMessageBytes as an option; drops what cannot fit even cut, counted, and says so on stderr at most once per interval", async () => {
    const u = await upstream({ maxMessageSize: 64 * 1024 });
    await u.subscribe("logs.");
    const log = logger(u, { maxMessageBytes: 64 * 1024 });
    await until("the subscriptions", () => log.connected);
    const lines = stderrLines();
    log.info("large extra", { body: "b".repeat(100_000) });
    const manyFields = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, "v".repeat(20)]));
    log.info("too many fields", manyFields);
    log.info("fine");
    await until("2 entries", () => received(u).length === 2);
    expect(received(u).map((e) => e.message)).toEqual(["large extra", "fine"]);
    expect(received(u)[0]?.extra.body?.endsWith(truncationMarker(100_000))).toBe(true);
    expect(log.stats()).toMatchObject({ published: 2, truncated: 1, dropped: { too_large: 1 } });
    // The first occurrence at once; the second falls within the interval and waits for the next line.
    expect(lines).toHaveLength(1);
  });

  it("refuses limits that cannot work, saying which", () => {
    expect(() => createLogger({ subsystem: "s", module: "m", maxMessageBytes: 100 })).toThrow(/maxMessageBytes must be .* at least 1024/);
    expect(() => createLogger({ subsystem: "s", module: "m", maxBufferedBytes: 1000 })).toThrow(/maxBufferedBytes \(1000\) must be at least maxMessageBytes \(1048576\)/);
  });
});

describe("the logger: bounded in bytes", () => {
  it("holds at most maxBufferedBytes while nobody subscribes, dropping the oldest, counted", async () => {
    const u = await upstream();
    const log = logger(u, { maxBufferedBytes: 8 * 1024, maxMessageBytes: 1024 });
    for (let i = 0; i < 100; i++) log.info(`${i} ${"p".repeat(500)}`);
    const { buffered, dropped } = log.stats();
    // Each entry encodes to about 570 bytes: 14 fit 8 KiB.
    expect(buffered).toBe(14);
    expect(dropped.buffer_full).toBe(86);
    await u.subscribe("logs.");
    await until("14 entries", () => received(u).length === 14);
    expect(received(u)[0]?.message.startsWith("86 ")).toBe(true);
  });
});

describe("the logger: values that cannot be serialized", () => {
  it("become placeholders in extra; the application's log call never throws", async () => {
    const u = await upstream();
    await u.subscribe("logs.");
    const log = logger(u);
    await until("the subscriptions", () => log.connected);
    const circular: Record<string, unknown> = { name: "loop" };
    circular.self = circular;
    const extra = {
      id: 12345678901234567890n,
      circular,
      badJson: { toJSON: () => { throw new Error("toJSON failed"); } },
      get badGetter(): unknown { throw new Error("getter failed"); },
    };
    expect(() => log.info("odd values", extra)).not.toThrow();
    await until("1 entry", () => received(u).length === 1);
    expect(received(u)[0]?.extra).toEqual({
      id: "12345678901234567890",
      circular: expect.stringMatching(/^\[unserializable: Converting circular structure to JSON/),
      badJson: "[unserializable: toJSON failed]",
      badGetter: "[unserializable: getter failed]",
    });
  });
});

describe("the logger: fields without a value", () => {
  it("a null or undefined extra field is no field, as a None attribute is none to the Python handler", async () => {
    const u = await upstream();
    await u.subscribe("logs.");
    const log = logger(u);
    await until("the subscriptions", () => log.connected);
    log.info("login", { user: null, session: undefined, kept: "" });
    await until("1 entry", () => received(u).length === 1);
    expect(received(u)[0]?.extra).toEqual({ kept: "" });
  });
});

describe("the logger: entries encoded after the call", () => {
  it("an entry the encoder cannot write (a number for timestampNs, from JavaScript) is counted and said on stderr; the call returns and the others go", async () => {
    const u = await upstream();
    await u.subscribe("logs.");
    const log = logger(u);
    await until("the subscriptions", () => log.connected);
    const lines = stderrLines();
    log.info("before");
    expect(() => log.info("bad time", undefined, { timestampNs: Date.now() as unknown as bigint })).not.toThrow();
    log.info("after");
    await until("2 entries", () => received(u).length === 2);
    expect(received(u).map((e) => e.message)).toEqual(["before", "after"]);
    expect(log.stats()).toMatchObject({ published: 2, dropped: { unencodable: 1 } });
    expect(lines).toEqual([expect.stringMatching(/^@aixcl\/logging \(logs\.shop\.cart\): a log entry could not be encoded, not sent: TypeError: /)]);
  });

  it("the entry is what the call was given: metadata changed after it does not change the entry", async () => {
    const u = await upstream();
    await u.subscribe("logs.");
    const log = logger(u);
    await until("the subscriptions", () => log.connected);
    const metadata: Record<string, string> = { request: "1" };
    log.info("first", undefined, { metadata });
    metadata.request = "2";
    await until("1 entry", () => received(u).length === 1);
    expect(received(u)[0]?.metadata).toEqual({ request: "1" });
  });

  it("a caller that never yields: every entry it logged is counted by stats() at once, within the bounds", async () => {
    const u = await upstream();
    const log = logger(u, { maxBuffered: 1000 });
    for (let i = 0; i < 1500; i++) log.info(`${i}`);
    expect(log.stats()).toMatchObject({ buffered: 1000, dropped: { buffer_full: 500 } });
    await u.subscribe("logs.");
    await until("1000 entries", () => received(u).length === 1000);
    expect(received(u)[0]?.message).toBe("500");
  });
});

describe("the logger: every entry counted once", () => {
  it("an entry evicted from a full queue while its send is under way is counted published, not dropped as well", async () => {
    const u = await upstream();
    await u.subscribe("logs.");
    const log = logger(u, { maxBuffered: 2 });
    await until("the subscriptions", () => log.connected);
    // Logging from async code: each call lands between the pump's send and what follows it.
    const count = 2000;
    for (let i = 0; i < count; i++) {
      await Promise.resolve();
      log.info(`line ${i}`);
    }
    const stats = await log.close();
    expect(stats.published + stats.dropped.buffer_full + stats.dropped.closed + stats.buffered).toBe(count);
    await until("what was published", () => received(u).length === stats.published);
  });
});
