import { describe, expect, it } from "vitest";
import { fullEntry } from "@aixcl/testkit";
import { Batcher } from "../src/batch.js";
import { pushBuilder } from "../src/push-builder.js";
import { MemoryQueue } from "../src/queue.js";
import { lokiEntries, sealedOf } from "./helpers.js";

const [entry] = lokiEntries([fullEntry({ message: "x".repeat(100) })]);
if (!entry) throw new Error("fixture");

describe("Batcher", () => {
  it("closes a batch before it would exceed max bytes", () => {
    const batcher = new Batcher({ maxBytes: entry.bytes * 3, maxWaitMs: 1000 }, pushBuilder("protobuf"), () => true);
    const closed = [];
    for (let i = 0; i < 10; i++) {
      const batch = batcher.add(entry, 0);
      if (batch) closed.push(batch);
    }
    expect(closed.map((b) => b.entries)).toEqual([3, 3, 3]);
    expect(closed.every((b) => b.bytes <= entry.bytes * 3)).toBe(true);
    expect(batcher.entries).toBe(1);
    expect(batcher.flush()?.entries).toBe(1);
    expect(batcher.flush()).toBeUndefined();
  });

  it("gives an entry larger than max bytes a batch of its own", () => {
    const batcher = new Batcher({ maxBytes: entry.bytes - 1, maxWaitMs: 1000 }, pushBuilder("protobuf"), () => true);
    expect(batcher.add(entry, 0)).toBeUndefined();
    expect(batcher.add(entry, 0)?.entries).toBe(1);
  });

  it("closes a batch once its first entry is max wait old", () => {
    const batcher = new Batcher({ maxBytes: 1 << 20, maxWaitMs: 1000 }, pushBuilder("protobuf"), () => true);
    expect(batcher.poll(5000)).toBeUndefined();
    batcher.add(entry, 10_000);
    batcher.add(entry, 10_900);
    expect(batcher.dueAtMs()).toBe(11_000);
    expect(batcher.poll(10_999)).toBeUndefined();
    const batch = batcher.poll(11_000);
    expect(batch?.entries).toBe(2);
    expect(batch?.createdAtMs).toBe(10_000);
    expect(batcher.dueAtMs()).toBeUndefined();
  });

  it("groups entries by stream and numbers batches", () => {
    const entries = lokiEntries([fullEntry(), fullEntry({ level: "error" }), fullEntry(), fullEntry({ subsystem: "db" })]);
    const batcher = new Batcher({ maxBytes: 1 << 20, maxWaitMs: 1000 }, pushBuilder("protobuf"), () => true);
    for (const e of entries) batcher.add(e, 0);
    const first = batcher.flush();
    batcher.add(entries[0] ?? entry, 0);
    const second = batcher.flush();
    expect(first?.streams.map((s) => [s.key.text, s.entries])).toEqual([
      ['{level="warning", service="api_gateway"}', 2],
      ['{level="error", service="api_gateway"}', 1],
      ['{level="warning", service="db"}', 1],
    ]);
    expect(second?.id).toBe((first?.id ?? 0) + 1);
  });
});

describe("MemoryQueue", () => {
  const batch = (n: number) => sealedOf(Array.from({ length: n }, () => entry));

  it("hands batches out oldest first and counts them until settled", () => {
    const queue = new MemoryQueue();
    const a = batch(1);
    const b = batch(2);
    queue.push(a);
    queue.push(b);
    expect([queue.entries, queue.bytes, queue.queuedBatches]).toEqual([3, 3 * entry.bytes, 2]);
    expect(queue.shift()).toBe(a);
    expect([queue.entries, queue.queuedBatches]).toEqual([3, 1]);
    queue.settle(a);
    expect(queue.entries).toBe(2);
    expect(() => queue.settle(a)).toThrow(/not in flight/);
  });

  it("sheds the oldest queued batches, never those in flight", () => {
    const queue = new MemoryQueue();
    const [a, b, c] = [batch(1), batch(1), batch(1)];
    for (const x of [a, b, c]) queue.push(x);
    expect(queue.shift()).toBe(a);
    expect(queue.shed(1)).toEqual([b]);
    expect(queue.shed(10 * entry.bytes)).toEqual([c]);
    expect(queue.shed(1)).toEqual([]);
    expect([queue.entries, queue.bytes]).toEqual([1, entry.bytes]);
    expect(queue.drain()).toEqual([]);
  });
});
