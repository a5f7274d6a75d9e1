import { encodeAicoMessage, encodeLogBatch, encodeLogEntry } from "@aixcl/wire";
import { serviceLog } from "@aixcl/service-runtime";
import { describe, expect, it } from "vitest";
import { uncompressSync } from "snappy";
import { busEntry, fullEntry } from "@aixcl/testkit";
import type { PushCompression, SealedBatch } from "../src/encode.js";
import { literalHeaderSize } from "../src/snappy.js";
import { PushRequestType } from "./push-proto.js";
import { EntryMapper } from "../src/mapping.js";
import { createMetrics } from "../src/metrics.js";
import { Pipeline } from "../src/pipeline.js";
import { MemoryQueue } from "../src/queue.js";
import { total, valuesBy } from "./helpers.js";

function setup(limits: { maxBatchBytes: number; maxBufferBytes: number }, compress: PushCompression = "always") {
  const lines: Record<string, unknown>[] = [];
  const log = serviceLog("test", "debug", (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  const queue = new MemoryQueue();
  let batches = 0;
  let pipeline: Pipeline | undefined;
  const metrics = createMetrics({
    bufferBytes: () => pipeline?.bufferedBytes ?? 0,
    bufferEntries: () => pipeline?.bufferedEntries ?? 0,
    pushesInFlight: () => 0,
  });
  pipeline = new Pipeline(new EntryMapper({}), queue, metrics, log, {
    ...limits,
    maxBatchWaitMs: 1000,
    encoding: "protobuf",
    compress,
    onBatch: () => batches++,
  });
  return { pipeline, queue, metrics, lines, batches: () => batches };
}

/** The messages inside a queued batch's push body: its lines without the fields the consumer put in them. */
function pushedMessages(batch: SealedBatch): string[] {
  const request = PushRequestType.decode(uncompressSync(Buffer.from(batch.push.body)) as Buffer) as unknown as { streams: { entries: { line: string }[] }[] };
  return request.streams.flatMap((s) => s.entries.map((e) => busEntry(e.line).message));
}

const frames = (topic: string, payload: Uint8Array) => [Buffer.from(topic), payload];
const bare = (message: string) => frames("logs.api_gateway.auth", encodeLogEntry(fullEntry({ message })));

describe("Pipeline", () => {
  it("accepts both topic styles and both payload styles", async () => {
    const { pipeline, metrics } = setup({ maxBatchBytes: 1 << 20, maxBufferBytes: 8 << 20 });
    const entry = fullEntry();
    const envelope = encodeAicoMessage(entry, { messageId: "m1", timestampNs: entry.timestampNs, source: "test" });
    pipeline.accept(frames("logs.api_gateway.auth", encodeLogEntry(entry)), 0);
    pipeline.accept(frames("logs/api_gateway/auth/v1", encodeLogEntry(entry)), 0);
    pipeline.accept(frames("logs.api_gateway.auth", envelope), 0);
    pipeline.accept(frames("logs/api_gateway/auth/v1", envelope), 0);
    expect(await total(metrics.decoded)).toBe(4);
    expect(pipeline.bufferedEntries).toBe(4);
  });

  it("accepts a batch (aixcl.batch.) entry by entry, as if each had come alone on logs.", async () => {
    const { pipeline, metrics, queue } = setup({ maxBatchBytes: 1 << 20, maxBufferBytes: 8 << 20 });
    const entries = Array.from({ length: 20 }, (_, i) => fullEntry({ message: `batched ${i}` }));
    pipeline.accept(frames("aixcl.batch.api_gateway.auth", encodeLogBatch(entries.map(encodeLogEntry))), 0);
    // A bad entry costs itself only, counted like a bad single message.
    pipeline.accept(frames("aixcl.batch.api_gateway.auth", encodeLogBatch([encodeLogEntry(fullEntry({ message: "kept" })), Buffer.from([0x12, 0x01, 0x00])])), 0);
    expect(await total(metrics.received)).toBe(2);
    expect(await total(metrics.decoded)).toBe(21);
    expect(await valuesBy(metrics.decodeErrors, "reason")).toEqual({ invalid_protobuf: 1 });
    pipeline.flush();
    expect(pushedMessages(queue.shift() as SealedBatch)).toEqual([...entries.map((e) => e.message), "kept"]);
  });

  it("counts decode failures by reason and keeps going", async () => {
    const { pipeline, metrics } = setup({ maxBatchBytes: 1 << 20, maxBufferBytes: 8 << 20 });
    pipeline.accept([Buffer.from("logs.a.b")], 0);
    pipeline.accept(frames("metrics.a.b", encodeLogEntry(fullEntry())), 0);
    pipeline.accept(frames("logs.a.b", Buffer.alloc(0)), 0);
    pipeline.accept(frames("logs.a.b", Buffer.from([0x08, 0x96])), 0);
    pipeline.accept(bare("fine"), 0);
    expect(await valuesBy(metrics.decodeErrors)).toEqual({ frame_count: 1, not_a_log_topic: 1, empty_payload: 1, invalid_protobuf: 1 });
    expect(await total(metrics.received)).toBe(5);
    expect(await total(metrics.decoded)).toBe(1);
    expect(pipeline.bufferedEntries).toBe(1);
  });

  it("logs a decode failure once per reason per 10 s, with how many messages since its last line", () => {
    const { pipeline, lines } = setup({ maxBatchBytes: 1 << 20, maxBufferBytes: 8 << 20 });
    for (let ms = 0; ms < 15_000; ms += 100) {
      pipeline.accept(frames("logs.a.b", Buffer.from([0x08, 0x96])), ms);
      pipeline.accept(frames("logs.a.b", Buffer.alloc(0)), ms);
    }
    pipeline.accept(frames("logs.a.b", Buffer.from([0x08, 0x96])), 20_000);
    const logged = lines.filter((l) => l.msg === "skipped a message that could not be decoded").map((l) => [l.reason, l.messages]);
    expect(logged).toEqual([
      ["invalid_protobuf", 1],
      ["empty_payload", 1],
      ["invalid_protobuf", 100],
      ["empty_payload", 100],
      ["invalid_protobuf", 50],
    ]);
  });

  it("queues a batch when it is full or old, and tells the sender", () => {
    const { pipeline, queue, batches } = setup({ maxBatchBytes: 4096, maxBufferBytes: 1 << 20 });
    for (let i = 0; i < 20; i++) pipeline.accept(bare("x".repeat(400)), 1000);
    expect(queue.queuedBatches).toBeGreaterThan(0);
    expect(batches()).toBe(queue.queuedBatches);
    const before = queue.queuedBatches;
    expect(pipeline.dueAtMs).toBe(1000 + 1000);
    pipeline.tick(1999);
    expect(queue.queuedBatches).toBe(before);
    pipeline.tick(2000);
    expect(queue.queuedBatches).toBe(before + 1);
    expect(queue.entries).toBe(20);
  });

  it("when_queued: a batch closed while none waits goes uncompressed, one closed behind a waiting batch compressed", () => {
    const { pipeline, queue } = setup({ maxBatchBytes: 4096, maxBufferBytes: 1 << 20 }, "when_queued");
    const line = "the same words again and again ".repeat(12);
    // Each batch closes when the next entry would overflow it; nothing is taken from the queue meanwhile.
    for (let i = 0; i < 30; i++) pipeline.accept(bare(line), 1000);
    const [first, second] = [queue.shift(), queue.shift()] as SealedBatch[];
    const raw = (b: SealedBatch) => uncompressSync(Buffer.from(b.push.body)) as Buffer;
    const uncompressed = (b: SealedBatch) => b.push.body.length === raw(b).length + literalHeaderSize(raw(b).length);
    expect(first && uncompressed(first)).toBe(true);
    expect(second && uncompressed(second)).toBe(false);
    expect(second && second.push.body.length < raw(second).length / 2).toBe(true);
    expect(pushedMessages(first as SealedBatch).every((l) => l === line)).toBe(true);
    expect(pushedMessages(second as SealedBatch).every((l) => l === line)).toBe(true);
  });

  it("stays within the buffer bound, dropping the oldest queued batches, and accounts for every entry", async () => {
    const maxBufferBytes = 64 * 1024;
    const { pipeline, queue, metrics, lines } = setup({ maxBatchBytes: 8 * 1024, maxBufferBytes });
    let peak = 0;
    for (let i = 0; i < 2000; i++) {
      pipeline.accept(bare(`line ${i} ${"y".repeat(200)}`), i);
      peak = Math.max(peak, pipeline.bufferedBytes);
    }
    expect(peak).toBeLessThanOrEqual(maxBufferBytes);
    const dropped = await valuesBy(metrics.dropped);
    expect(dropped.buffer_full).toBeGreaterThan(1000);
    expect(pipeline.bufferedEntries + (dropped.buffer_full ?? 0)).toBe(2000);
    // The newest entries are the ones kept.
    pipeline.flush();
    const kept: string[] = [];
    for (let batch = queue.shift(); batch; batch = queue.shift()) kept.push(...pushedMessages(batch));
    expect(kept.at(-1)).toMatch(/^line 1999 /);
    expect(kept.some((l) => l.startsWith("line 0 "))).toBe(false);
    // Every drop within these two seconds: one log line, the first batch's figures (the counter has them all).
    expect(lines.filter((l) => l.msg === "buffer full: dropped the oldest queued batches")).toMatchObject([{ batches: 1 }]);
  });

  it("drops new entries when everything in memory is in flight", async () => {
    const { pipeline, queue, metrics } = setup({ maxBatchBytes: 2048, maxBufferBytes: 6 * 1024 });
    for (let i = 0; i < 200 && queue.queuedBatches < 3; i++) pipeline.accept(bare("z".repeat(300)), 0);
    while (queue.shift()); // all in flight: nothing can be shed
    const inFlight = queue.entries;
    const before = pipeline.bufferedEntries;
    for (let i = 0; i < 50; i++) pipeline.accept(bare("z".repeat(300)), 0);
    expect(pipeline.bufferedBytes).toBeLessThanOrEqual(6 * 1024);
    const dropped = (await valuesBy(metrics.dropped)).buffer_full ?? 0;
    expect(dropped).toBeGreaterThan(0);
    expect(queue.entries).toBe(inFlight);
    expect(pipeline.bufferedEntries - before + dropped).toBe(50);
  });

  it("drops an entry larger than a batch, counted", async () => {
    const { pipeline, metrics } = setup({ maxBatchBytes: 2048, maxBufferBytes: 1 << 20 });
    pipeline.accept(bare("w".repeat(5000)), 0);
    expect(await valuesBy(metrics.dropped)).toEqual({ entry_too_large: 1 });
    expect(pipeline.bufferedEntries).toBe(0);
  });
});
