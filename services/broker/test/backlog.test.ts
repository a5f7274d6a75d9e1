/**
 * The backlog without sockets: order per lane, delivery from sealed chunks and from the chunk being filled, the
 * byte bound (oldest first, counted), and on disk: what a stop keeps, what a restart finds, no message twice.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createSpoolMetrics } from "@aixcl/service-runtime";
import { tempDir } from "@aixcl/testkit";
import type { BacklogOptions } from "../src/backlog.js";
import { Backlog } from "../src/backlog.js";
import type { Lane } from "../src/lanes.js";

const silent = { debug() {}, info() {}, warn() {}, error() {} };

function open(options: Partial<BacklogOptions> = {}) {
  const dropped: Record<string, number> = {};
  const backlog = new Backlog(
    { maxBytes: 64 * 1024 * 1024, dir: "", fsync: false, chunkBytes: 4096, sealAfterMs: 60_000, ...options },
    { log: silent, spoolMetrics: createSpoolMetrics(new Registry(), "test_"), onDropped: (reason, n) => (dropped[reason] = (dropped[reason] ?? 0) + n) },
  );
  return { backlog, dropped };
}

const topics = ["logs.svc.mod", "logs/svc/mod/v1", "aixcl.batch.svc.mod"];
const message = (lane: Lane, n: number, pad = 40) => [Buffer.from(topics[lane] as string), Buffer.from(`m${n} ${"x".repeat(pad)}`)];
const seqOf = (frames: Buffer[]) => Number(/^m(\d+) /.exec(frames[1]?.toString() ?? "")?.[1]);

/** Delivers everything the lane holds; returns the sequence numbers in the order delivered. */
function drain(backlog: Backlog, lane: Lane, max = Number.POSITIVE_INFINITY): number[] {
  const out: number[] = [];
  for (let frames = backlog.peek(lane); frames && out.length < max; frames = out.length < max ? backlog.peek(lane) : undefined) {
    expect(frames[0]?.toString()).toBe(topics[lane]);
    out.push(seqOf(frames));
    backlog.delivered(lane);
  }
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe("backlog in memory", () => {
  it("keeps each lane in order, apart from the other, and counts what it holds", () => {
    const { backlog } = open();
    for (let n = 0; n < 500; n++) backlog.hold((n % 2) as Lane, message((n % 2) as Lane, n));
    expect(backlog.messages).toBe(500);
    expect(backlog.bytes).toBeGreaterThan(500 * 40);
    expect(drain(backlog, 1)).toEqual(range(0, 500).filter((n) => n % 2 === 1));
    expect(backlog.peek(1)).toBeUndefined();
    expect(backlog.messages).toBe(250);
    expect(drain(backlog, 0)).toEqual(range(0, 500).filter((n) => n % 2 === 0));
    expect([backlog.messages, backlog.bytes]).toEqual([0, 0]);
    expect(backlog.oldestHeldAtMs).toBeUndefined();
  });

  it("peek gives the same message until it is delivered, even when its chunk is sealed meanwhile", () => {
    const { backlog } = open({ chunkBytes: 1024 });
    backlog.hold(0, message(0, 0));
    const first = backlog.peek(0);
    // The send of `first` is under way (or waits for a full subscriber) while more arrive and fill the chunk.
    for (let n = 1; n < 100; n++) backlog.hold(0, message(0, n));
    expect(backlog.peek(0)).toBe(first);
    backlog.delivered(0);
    expect(drain(backlog, 0)).toEqual(range(1, 100));
  });

  it("delivers while it fills: messages held between deliveries keep their place", () => {
    const { backlog } = open({ chunkBytes: 2048 });
    const delivered: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7; i++) backlog.hold(0, message(0, next++));
      delivered.push(...drain(backlog, 0, 5));
    }
    delivered.push(...drain(backlog, 0));
    expect(delivered).toEqual(range(0, next));
  });

  it("full: the oldest chunks go first, across lanes, and are counted", () => {
    // 100 messages of ~60 packed bytes per 4 KiB chunk... a bound of 8 chunks.
    const { backlog, dropped } = open({ maxBytes: 8 * 4096, chunkBytes: 4096 });
    for (let n = 0; n < 2000; n++) backlog.hold((n < 1000 ? 0 : 1) as Lane, message((n < 1000 ? 0 : 1) as Lane, n));
    const kept = [...drain(backlog, 0), ...drain(backlog, 1)];
    expect(kept.length + (dropped.backlog_full ?? 0)).toBe(2000);
    expect(dropped.backlog_full).toBeGreaterThan(0);
    // What is left is exactly the newest: every message after the first one kept.
    expect(kept).toEqual(range(kept[0] as number, 2000));
  });

  for (const where of ["memory", "disk"] as const) {
    it(`a stalled subscriber, ${where === "disk" ? "on disk" : "in memory"}: the open chunk is sealed at its size while a message peeked from it waits, so the bound holds; order is kept`, () => {
      const dir = where === "disk" ? join(tempDir("backlog"), "backlog") : "";
      const { backlog, dropped } = open({ dir, maxBytes: 8 * 4096, chunkBytes: 4096 });
      backlog.hold(0, message(0, 0));
      // Peeked from the open chunk (nothing sealed yet), and never sent while the subscriber's queue stays full.
      const first = backlog.peek(0);
      for (let n = 1; n < 2000; n++) {
        backlog.hold(0, message(0, n));
        expect(backlog.bytes).toBeLessThanOrEqual(8 * 4096 + 2 * 4096);
      }
      expect(backlog.peek(0)).toBe(first);
      backlog.delivered(0);
      const rest = drain(backlog, 0);
      expect(dropped.backlog_full).toBeGreaterThan(0);
      expect(1 + rest.length + (dropped.backlog_full ?? 0)).toBe(2000);
      expect(rest).toEqual([...rest].sort((a, b) => a - b));
      expect(rest.at(-1)).toBe(1999);
      backlog.close();
    });
  }

  it("close() reports what it held as lost", () => {
    const { backlog } = open();
    for (let n = 0; n < 10; n++) backlog.hold(0, message(0, n));
    drain(backlog, 0, 3);
    expect(backlog.close()).toBe(7);
  });
});

describe("backlog on disk", () => {
  const files = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".batch"));

  it("a stop keeps what is held, partly delivered chunks as what is left of them; the next start delivers it once, in order", () => {
    const dir = join(tempDir("backlog"), "backlog");
    const first = open({ dir, chunkBytes: 2048 });
    for (let n = 0; n < 300; n++) first.backlog.hold((n % 3) as Lane, message((n % 3) as Lane, n));
    // Part of lane 0 is delivered, and one message is peeked but not sent when the stop comes.
    const sent = drain(first.backlog, 0, 40);
    first.backlog.peek(0);
    expect(first.backlog.close()).toBe(0);
    expect(files(dir).length).toBeGreaterThan(2);

    // Every lane comes back, our clients' batches included (their chunks were once refused as "not a backlog chunk").
    const second = open({ dir, chunkBytes: 2048 });
    expect(second.backlog.messages).toBe(300 - 40);
    const lane0 = drain(second.backlog, 0);
    expect([...sent, ...lane0]).toEqual(range(0, 300).filter((n) => n % 3 === 0));
    expect(drain(second.backlog, 1)).toEqual(range(0, 300).filter((n) => n % 3 === 1));
    expect(drain(second.backlog, 2)).toEqual(range(0, 300).filter((n) => n % 3 === 2));
    expect(second.dropped).toEqual({});
    second.backlog.close();
    expect(files(dir)).toEqual([]);
  });

  it("writes a chunk within sealAfterMs, so a crash loses at most that much", async () => {
    const dir = join(tempDir("backlog"), "backlog");
    const first = open({ dir, sealAfterMs: 50 });
    for (let n = 0; n < 5; n++) first.backlog.hold(1, message(1, n));
    await new Promise((r) => setTimeout(r, 200));
    first.backlog.hold(1, message(1, 5));
    // No close(): the process dies here. What was sealed is on disk, the last message was not yet.
    const second = open({ dir });
    expect(drain(second.backlog, 1)).toEqual(range(0, 5));
    second.backlog.close();
  });

  it("a damaged file is counted and skipped", () => {
    const dir = join(tempDir("backlog"), "backlog");
    const first = open({ dir, chunkBytes: 1024 });
    for (let n = 0; n < 60; n++) first.backlog.hold(0, message(0, n));
    first.backlog.close();
    const [victim] = files(dir).sort();
    const path = join(dir, victim as string);
    const bytes = readFileSync(path);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 1;
    writeFileSync(path, bytes);
    const entries = Number(/-e(\d+)-/.exec(victim as string)?.[1]);
    const second = open({ dir, chunkBytes: 1024 });
    expect(drain(second.backlog, 0)).toEqual(range(entries, 60));
    expect(second.dropped).toEqual({ backlog_corrupt: entries });
  });
});
