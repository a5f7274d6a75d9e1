/**
 * The broker holds log messages no subscriber takes, with real ZeroMQ sockets: plain PUB publishers (as AICO's
 * services publish) as well as the shared logger, AICO's wire format as well as ours. What it cannot keep, and what
 * a subscriber cannot take, is counted exactly.
 */
import { describe, expect, it } from "vitest";
import { Subscriber, XPublisher } from "zeromq";
import { HOLD_TOPIC, decodeLogBatch, encodeLogBatch, isBatchTopic } from "@aixcl/wire";
import type { Logger } from "@aixcl/client-logger";
import { createLogger } from "@aixcl/client-logger";
import type { WireFormat } from "@aixcl/testkit";
import { WIRE_FORMATS, logMessage, messageText, metricSample, tempDir } from "@aixcl/testkit";
import type { RunningBroker } from "../src/index.js";
import { busFixture, Collector, plainPublisher, portOf, testBroker, until, untilSubscribed } from "./bus.js";

const { cleanup, broker, subscriber } = busFixture();

const metric = async (b: RunningBroker, sample: string) => (await metricSample(b.ops.url, sample)) ?? Number.NaN;
const seqOf = (text: string) => Number(/^seq=(\d+)/.exec(text)?.[1]);
const seqs = (messages: Buffer[][]) => messages.map((frames) => seqOf(messageText(frames)));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
/** The entries' messages in the order the messages came, batches opened. */
const entryLines = (messages: Buffer[][]) =>
  messages.flatMap((frames) => {
    if (!isBatchTopic(frames[0] as Buffer)) return [messageText(frames)];
    const out: string[] = [];
    decodeLogBatch(frames, (e) => out.push(e.message), (reason) => out.push(`error ${reason}`));
    return out;
  });
/** A numbered line of about 300 bytes, like a real log line (`repeat` times that). */
const line = (n: number, repeat = 1) => `seq=${n} ${"request handled ".repeat(18 * repeat)}`;

async function publish(pub: { send(frames: Buffer[]): Promise<void> }, format: WireFormat, from: number, to: number, repeat = 1): Promise<void> {
  for (let n = from; n < to; n++) await pub.send(logMessage(format, "held_app", "worker", line(n, repeat)));
}

describe("log messages nobody takes are held, then forwarded in order", () => {
  for (const format of WIRE_FORMATS) {
    it(`a plain PUB publisher's messages sent before any subscriber reach the first one, ${format} format`, async () => {
      const b = await broker();
      const pub = await plainPublisher(b);
      cleanup.push(() => pub.close());
      await publish(pub, format, 0, 2000);
      await until(async () => (await metric(b, "aixcl_broker_backlog_messages")) === 2000, 5000, "2000 messages held");
      expect((await fetch(`${b.ops.url}/readyz`)).status).toBe(200);
      expect(await metric(b, "aixcl_broker_backlog_bytes")).toBeGreaterThan(2000 * 300);
      expect(await metric(b, "aixcl_broker_backlog_oldest_age_seconds")).toBeGreaterThan(0);

      const sub = subscriber(b, ["logs.", "logs/"]);
      await publish(pub, format, 2000, 2100);
      expect(seqs(await sub.take(2100, 10_000))).toEqual(range(0, 2100));
      expect(await metric(b, "aixcl_broker_backlog_messages")).toBe(0);
      expect(await metric(b, "aixcl_broker_backlog_held_messages_total")).toBeGreaterThanOrEqual(2000);
      expect(await metric(b, "aixcl_broker_backlog_forwarded_messages_total")).toBe(await metric(b, "aixcl_broker_backlog_held_messages_total"));
      expect(await metric(b, 'aixcl_broker_messages_total{family="logs"}')).toBe(2100);
    });
  }

  it("the shared logger is wanted as soon as the broker runs: it sends, the broker holds", async () => {
    const b = await broker();
    const log: Logger = createLogger({ subsystem: "held_app", module: "worker", endpoint: b.pubEndpoint, format: "aico" });
    cleanup.push(() => log.close());
    await until(() => log.connected, 5000, "the broker's own subscription to reach the logger");
    for (let n = 0; n < 50; n++) log.info(line(n));
    await until(async () => (await metric(b, "aixcl_broker_backlog_messages")) === 50, 5000, "50 messages held");
    expect(log.stats()).toMatchObject({ published: 50, buffered: 0 });
    const sub = subscriber(b, ["logs/"]);
    expect(seqs(await sub.take(50))).toEqual(range(0, 50));
  });

  it("each topic style is held apart: a subscriber of one gets its messages while the other's wait", async () => {
    const b = await broker();
    const pub = await plainPublisher(b);
    cleanup.push(() => pub.close());
    await publish(pub, "aixcl", 0, 10);
    await publish(pub, "aico", 10, 20);
    const aico = subscriber(b, ["logs/"]);
    expect(seqs(await aico.take(10))).toEqual(range(10, 20));
    await publish(pub, "aico", 20, 30);
    expect(seqs(await aico.take(10))).toEqual(range(20, 30));
    expect(await metric(b, "aixcl_broker_backlog_messages")).toBe(10);
    const ours = subscriber(b, ["logs."]);
    expect(seqs(await ours.take(10))).toEqual(range(0, 10));
  });

  it("two subscribers: the backlog goes to the first; both get every message from then on", async () => {
    const b = await broker();
    const pub = await plainPublisher(b);
    cleanup.push(() => pub.close());
    await publish(pub, "aixcl", 0, 100);
    const first = subscriber(b, ["logs."]);
    expect(seqs(await first.take(100))).toEqual(range(0, 100));
    const second = subscriber(b, ["logs."]);
    await until(async () => (await metric(b, 'aixcl_broker_connected_peers{side="subscribers"}')) === 2, 5000, "two subscribers");
    await new Promise((r) => setTimeout(r, 200));
    await publish(pub, "aixcl", 100, 200);
    expect(seqs(await first.take(100))).toEqual(range(100, 200));
    expect(seqs(await second.take(100))).toEqual(range(100, 200));
  });

  it("other topics are never held: a subscriber arriving later gets none of what was sent before", async () => {
    const b = await broker();
    // Someone takes metrics., so the publisher sends them; the late subscriber must not get the earlier ones.
    const early = subscriber(b, ["metrics."]);
    const pub = new XPublisher({ linger: 0 });
    cleanup.push(() => pub.close());
    pub.connect(b.pubEndpoint);
    await until(async () => (await metric(b, "aixcl_broker_subscriptions")) === 1, 5000, "metrics. subscribed");
    // The subscription also has to travel on to the publisher, or it drops the message itself.
    await untilSubscribed(pub, "metrics.cpu", "logs.app.mod");
    for (const [topic, seen] of [["metrics.cpu", "before"], ["logs.app.mod", "before"]]) await pub.send([topic as string, seen as string]);
    expect((await early.take(1))[0]?.[0]?.toString()).toBe("metrics.cpu");
    const late = subscriber(b, ["metrics.", "logs."]);
    await until(async () => (await metric(b, "aixcl_broker_subscriptions")) === 2, 5000, "logs. subscribed");
    await new Promise((r) => setTimeout(r, 200));
    await pub.send(["metrics.cpu", "after"]);
    const got = await late.take(2);
    expect(got.map((f) => `${f[0]} ${f[1]}`)).toEqual(["logs.app.mod before", "metrics.cpu after"]);
    expect(await metric(b, "aixcl_broker_backlog_held_messages_total")).toBe(1);
  });
});

describe("a leaving subscriber's hold (HOLD_TOPIC) holds plain publishers too", () => {
  it("a subscriber that asks publishers to hold before it unsubscribes loses nothing a plain PUB sends meanwhile", async () => {
    const b = await broker();
    const pub = await plainPublisher(b);
    cleanup.push(() => pub.close());
    const leaving = subscriber(b, ["logs/"]);
    await until(async () => (await metric(b, "aixcl_broker_subscriptions")) === 1, 5000, "subscribed");
    let sent = 0;
    let sending = true;
    const sender = (async () => {
      while (sending) {
        await publish(pub, "aico", sent, sent + 20);
        sent += 20;
        await new Promise((r) => setImmediate(r));
      }
    })();
    await until(() => leaving.messages.length > 1000, 10_000, "messages flowing");
    // The consumer's stop: hold, read until quiet, unsubscribe, read until quiet, close.
    leaving.socket.subscribe(HOLD_TOPIC);
    const quiet = async () => {
      for (let count = -1; count !== leaving.messages.length; ) {
        count = leaving.messages.length;
        await new Promise((r) => setTimeout(r, 150));
      }
    };
    await quiet();
    leaving.socket.unsubscribe("logs/");
    await quiet();
    await leaving.close();
    await new Promise((r) => setTimeout(r, 200));
    sending = false;
    await sender;
    const next = subscriber(b, ["logs/"]);
    const rest = await next.take(sent - leaving.messages.length, 20_000);
    expect([...seqs(leaving.messages), ...seqs(rest)]).toEqual(range(0, sent));
  });
});

describe("what the broker cannot keep or deliver is counted", () => {
  for (const format of WIRE_FORMATS) {
    it(`the bound: a subscriber away long enough loses exactly the oldest, as counted, ${format} format`, async () => {
      const b = await broker({}, { backlog: { max_bytes: 1024 * 1024, dir: "", fsync: false } });
      const pub = await plainPublisher(b);
      cleanup.push(() => pub.close());
      const total = 10_000;
      await publish(pub, format, 0, total);
      await until(async () => (await metric(b, "aixcl_broker_backlog_held_messages_total")) === total, 10_000, "all held or dropped");
      const dropped = await metric(b, 'aixcl_broker_dropped_messages_total{family="logs",reason="backlog_full"}');
      expect(dropped).toBeGreaterThan(total / 2);
      expect(await metric(b, "aixcl_broker_backlog_bytes")).toBeLessThanOrEqual(1024 * 1024 + 256 * 1024);
      const sub = subscriber(b, ["logs.", "logs/"]);
      expect(seqs(await sub.take(total - dropped, 10_000))).toEqual(range(dropped, total));
      expect(await sub.take(1, 500)).toEqual([]);
    });
  }

  it("a log subscriber that falls behind: what it cannot take yet is held, and what the bound drops is exactly what it lost", async () => {
    const b = await broker({}, { send_hwm: 100, backlog: { max_bytes: 1024 * 1024, dir: "", fsync: false } });
    const socket = new Subscriber({ linger: 0, receiveHighWaterMark: 100 });
    socket.connect(b.subEndpoint);
    socket.subscribe("logs.");
    cleanup.push(() => socket.close());
    const pub = await plainPublisher(b);
    cleanup.push(() => pub.close());
    await until(async () => (await metric(b, "aixcl_broker_subscriptions")) === 1, 5000, "subscribed");
    const total = 10_000;
    // Nobody reads: the subscriber's queues and the kernel's socket buffers fill, the broker holds the rest, and its
    // bound drops the oldest held. 3 KB lines, 30 MB in all: more than the socket buffers take.
    await publish(pub, "aixcl", 0, total, 10);
    await until(async () => (await metric(b, 'aixcl_broker_messages_total{family="logs"}')) === total, 10_000, "all received");
    // The bound holds while the subscriber is stalled, with a held message waiting for its room all along.
    expect(await metric(b, "aixcl_broker_backlog_bytes")).toBeLessThanOrEqual(1024 * 1024 + 256 * 1024 + 64 * 1024);
    const sub = new Collector(socket);
    await until(async () => (await metric(b, "aixcl_broker_backlog_messages")) === 0, 10_000, "the backlog forwarded");
    const dropped = await metric(b, 'aixcl_broker_dropped_messages_total{family="logs",reason="backlog_full"}');
    await until(() => sub.messages.length >= total - dropped, 10_000, "what was not dropped to arrive").catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const got = seqs(sub.messages);
    expect(dropped).toBeGreaterThan(0);
    expect(got.length).toBe(total - dropped);
    expect(got).toEqual([...got].sort((x, y) => x - y));
    expect(new Set(got).size).toBe(got.length);
  });

  it("other topics a subscriber cannot take are dropped, as ZeroMQ does, and counted exactly", async () => {
    const b = await broker({}, { send_hwm: 100 });
    const socket = new Subscriber({ linger: 0, receiveHighWaterMark: 100 });
    socket.connect(b.subEndpoint);
    socket.subscribe("metrics.");
    cleanup.push(() => socket.close());
    const pub = new XPublisher({ linger: 0, sendHighWaterMark: 100_000 });
    cleanup.push(() => pub.close());
    pub.connect(b.pubEndpoint);
    await until(async () => (await metric(b, "aixcl_broker_subscriptions")) === 1, 5000, "subscribed");
    await new Promise((r) => setTimeout(r, 200));
    // 3 KB messages, 60 MB in all: more than the kernel's socket buffers take.
    const total = 20_000;
    const pad = "x".repeat(3000);
    for (let n = 0; n < total; n++) await pub.send(["metrics.cpu", `${n} ${pad}`]);
    await until(async () => (await metric(b, 'aixcl_broker_messages_total{family="other"}')) === total, 10_000, "all received");
    const sub = new Collector(socket);
    const dropped = await metric(b, 'aixcl_broker_dropped_messages_total{family="other",reason="subscriber_full"}');
    await until(() => sub.messages.length >= total - dropped, 10_000, "what was not dropped to arrive").catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const got = sub.messages.map((f) => Number(f[1]?.toString().split(" ")[0]));
    expect(dropped).toBeGreaterThan(0);
    expect(got.length + dropped).toBe(total);
    expect(got).toEqual([...got].sort((x, y) => x - y));
  });
});

describe("the backlog on disk (broker.backlog.dir)", () => {
  for (const format of WIRE_FORMATS) {
    it(`survives a broker restart: the next broker forwards what the last one held, once, in order, ${format} format`, async () => {
      const dir = tempDir("backlog");
      const backlog = { max_bytes: 64 * 1024 * 1024, dir, fsync: false };
      const first = await testBroker({}, { backlog });
      const pub = await plainPublisher(first);
      cleanup.push(() => pub.close());
      await publish(pub, format, 0, 3000);
      await until(async () => (await metric(first, "aixcl_broker_backlog_messages")) === 3000, 5000, "3000 held");
      await first.close();
      const second = await broker({ pub: portOf(first.pubEndpoint), sub: portOf(first.subEndpoint) }, { backlog });
      expect(await metric(second, "aixcl_broker_backlog_messages")).toBe(3000);
      const sub = subscriber(second, ["logs.", "logs/"]);
      expect(seqs(await sub.take(3000, 10_000))).toEqual(range(0, 3000));
      expect(await sub.take(1, 500)).toEqual([]);
    });
  }

  it("survives a broker restart with our clients' batches too: those that came after a subscriber's hold, sent before the publisher heard of it", async () => {
    const dir = tempDir("backlog");
    const backlog = { max_bytes: 64 * 1024 * 1024, dir, fsync: false };
    const first = await testBroker({}, { backlog });
    const leaving = subscriber(first, ["aixcl.batch."]);
    await until(async () => (await metric(first, 'aixcl_broker_log_subscribed{topics="aixcl.batch."}')) === 1, 5000, "the batch lane taken");
    // A plain PUB is a publisher that has not heard of the hold yet: it goes on sending what was subscribed.
    const pub = await plainPublisher(first);
    cleanup.push(() => pub.close());
    leaving.socket.subscribe(HOLD_TOPIC);
    await until(async () => (await metric(first, 'aixcl_broker_log_subscribed{topics="aixcl.batch."}')) === 0, 5000, "the hold");
    for (let n = 0; n < 100; n++) {
      const entries = [0, 1, 2].map((i) => logMessage("aixcl", "batched_app", "worker", line(3 * n + i))[1]);
      await pub.send([Buffer.from("aixcl.batch.batched_app.worker"), encodeLogBatch(entries)]);
    }
    await until(async () => (await metric(first, "aixcl_broker_backlog_messages")) === 100, 5000, "100 batches held");
    await leaving.close();
    await first.close();
    const second = await broker({ pub: portOf(first.pubEndpoint), sub: portOf(first.subEndpoint) }, { backlog });
    const sub = subscriber(second, ["aixcl.batch."]);
    expect(entryLines(await sub.take(100, 10_000)).map(seqOf)).toEqual(range(0, 300));
    expect(await metric(second, 'aixcl_broker_dropped_messages_total{family="logs",reason="backlog_corrupt"}')).toBe(0);
  });
});

describe("our clients' batches (aixcl.batch.)", () => {
  it("go to a subscriber that takes them; after it left (the consumer's stop: hold, read, close), the logger's entries are held and the next gets all of them", async () => {
    const b = await broker();
    const all = ["logs.", "logs/", "aixcl.batch."];
    const first = subscriber(b, all);
    const log: Logger = createLogger({ subsystem: "batched_app", module: "worker", endpoint: b.pubEndpoint, maxBuffered: 100_000 });
    cleanup.push(() => log.close());
    await until(async () => (await metric(b, 'aixcl_broker_log_subscribed{topics="aixcl.batch."}')) === 1, 5000, "the batch lane taken");
    await until(() => log.connected, 5000, "the logger connected");
    await new Promise((r) => setTimeout(r, 100));
    for (let n = 0; n < 3000; n++) log.info(line(n));
    await until(() => entryLines(first.messages).length === 3000, 10_000, "3000 entries");
    expect(entryLines(first.messages).map(seqOf)).toEqual(range(0, 3000));
    // Fewer messages than entries: the broker forwarded batches.
    expect(first.messages.length).toBeLessThan(300);
    expect(first.messages.some((frames) => frames[0]?.toString() === "aixcl.batch.batched_app.worker")).toBe(true);

    // The consumer's stop: it asks publishers to hold, reads what is on its way, then goes.
    first.socket.subscribe(HOLD_TOPIC);
    await until(() => !log.connected, 5000, "the hold to reach the logger");
    await first.close();
    // The logger sees the broker's own logs. again, but no batch subscriber: single entries, which the broker holds.
    for (let n = 3000; n < 6000; n++) log.info(line(n));
    await until(async () => (await metric(b, "aixcl_broker_backlog_messages")) === 3000, 10_000, "3000 held");
    const next = subscriber(b, all);
    await until(() => entryLines(next.messages).length >= 3000, 10_000, "3000 more entries");
    expect(entryLines(next.messages).map(seqOf)).toEqual(range(3000, 6000));
    expect(await metric(b, "aixcl_broker_backlog_messages")).toBe(0);
  });
});
