/**
 * The shared FileSpool's own features, beyond what the log consumer's spool tests cover through its batches: lanes
 * (queued apart, one bound and one sequence across them), the memory bound on read-back, and requeue (a partly
 * delivered item goes back as what is left of it, in its place). Real files, no sockets.
 */
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { SpoolCodec, SpoolItem } from "../src/index.js";
import { FileSpool, createSpoolMetrics } from "../src/index.js";
import { tempDir } from "@aixcl/testkit";

interface Item extends SpoolItem {
  readonly lines: string[];
}

const codec: SpoolCodec<Item> = {
  encode: (item) => ({ header: { lane: item.lane, createdAtMs: item.createdAtMs }, body: Buffer.from(item.lines.join("\n")) }),
  decode(header, body) {
    const h = header as { lane?: string; createdAtMs: number };
    const lines = body.toString().split("\n");
    return { lines, entries: lines.length, bytes: body.length, createdAtMs: h.createdAtMs, ...(h.lane === undefined ? {} : { lane: h.lane }) };
  },
};

const item = (lane: string | undefined, ...lines: string[]): Item => ({ lines, entries: lines.length, bytes: lines.join("\n").length, createdAtMs: Date.now(), ...(lane === undefined ? {} : { lane }) });
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const naming = { key: "test.dir", env: "TEST_DIR", volume: "test", owner: "tester", each: "tester", log: "test" };

function open(dir: string, maxBytes = 1024 ** 3, diskOnly = false, maxMemoryBytes?: number) {
  const dropped: Record<string, number> = {};
  const metrics = createSpoolMetrics(new Registry(), "test_");
  const spool = new FileSpool<Item>({ dir, maxBytes, fsync: false, diskOnly, ...(maxMemoryBytes === undefined ? {} : { maxMemoryBytes }) }, codec, {
    metrics,
    log: silent,
    naming,
    onDropped: (reason, n) => (dropped[reason] = (dropped[reason] ?? 0) + n),
  });
  return { spool, dropped, metrics };
}

describe("FileSpool lanes", () => {
  it("queues each lane apart, in order, and a restart finds the lanes again", () => {
    const dir = join(tempDir("spool-lanes"), "spool");
    const first = open(dir);
    for (const [lane, line] of [["dot", "d1"], ["slash", "s1"], ["dot", "d2"], ["slash", "s2"], ["dot", "d3"]] as const) first.spool.push(item(lane, line));
    expect(readdirSync(dir).filter((f) => f.endsWith(".batch")).sort()).toEqual([
      expect.stringMatching(/^0{15}1-e1-b2-s\d+-ldot\.batch$/),
      expect.stringMatching(/^0{15}2-e1-b2-s\d+-lslash\.batch$/),
      expect.stringMatching(/-ldot\.batch$/),
      expect.stringMatching(/-lslash\.batch$/),
      expect.stringMatching(/-ldot\.batch$/),
    ]);
    expect(first.spool.shift("slash")?.lines).toEqual(["s1"]);
    expect(first.spool.shift("dot")?.lines).toEqual(["d1"]);
    expect(first.spool.oldestQueuedAtMs("slash")).toBeLessThanOrEqual(Date.now());
    first.spool.shed(Number.POSITIVE_INFINITY);

    // Dies without settling: both in-flight items come back too.
    const second = open(dir);
    expect(second.spool.storedEntries).toBe(5);
    expect([second.spool.shift("dot"), second.spool.shift("dot"), second.spool.shift("dot"), second.spool.shift("dot")].map((i) => i?.lines[0])).toEqual(["d1", "d2", "d3", undefined]);
    expect([second.spool.shift("slash"), second.spool.shift("slash")].map((i) => i?.lines[0])).toEqual(["s1", "s2"]);
    // An earlier run's item says when its file was written.
    const third = open(dir);
    const oldest = readdirSync(dir).filter((f) => f.endsWith("-lslash.batch")).sort()[0] as string;
    expect(third.spool.oldestQueuedAtMs("slash")).toBe(statSync(join(dir, oldest)).mtimeMs);
  });

  it("one bound over all lanes: the oldest go first, whatever their lane", () => {
    const dir = join(tempDir("spool-lanes"), "spool");
    const { spool, dropped } = open(dir, 3 * 4096);
    spool.push(item("dot", "a"));
    spool.push(item("slash", "b"));
    spool.push(item("dot", "c"));
    spool.push(item("slash", "d"));
    expect(dropped).toEqual({ full: 1 });
    expect(spool.shift("dot")?.lines).toEqual(["c"]);
    expect(spool.shift("slash")?.lines).toEqual(["b"]);
  });
});

describe("FileSpool diskOnly", () => {
  it("keeps nothing in memory once written: each item is read back, in order, when taken", async () => {
    const { spool, metrics } = open(join(tempDir("spool-disk-only"), "spool"), 1024 ** 3, true);
    for (const line of ["a", "b", "c"]) spool.push(item(undefined, line));
    expect([spool.entries, spool.bytes, spool.storedEntries]).toEqual([0, 0, 3]);
    expect([spool.shift()?.lines, spool.shift()?.lines]).toEqual([["a"], ["b"]]);
    expect((await metrics.replayedBatches.get()).values[0]?.value).toBe(2);
    expect((await metrics.spilled.get()).values[0]?.value ?? 0).toBe(0);
  });
});

describe("FileSpool memory", () => {
  it("reading an item back moves the oldest resident ones to disk only, so memory stays within maxMemoryBytes", async () => {
    // Items of 10 bytes; room for three in memory.
    const { spool, metrics } = open(join(tempDir("spool-memory"), "spool"), 1024 ** 3, false, 30);
    const ten = (label: string) => item(undefined, label.padEnd(10, "."));
    for (const label of ["a", "b", "c", "d"]) spool.push(ten(label));
    expect(spool.shed(spool.bytes - 30)).toEqual([]); // the owner keeps its bound when pushing: a goes to disk only
    const order: string[] = [];
    for (let taken = spool.shift(); taken; taken = spool.shift()) {
      expect(spool.bytes).toBeLessThanOrEqual(30);
      order.push((taken.lines[0] as string)[0] as string);
      spool.settle(taken, "done");
    }
    expect(order).toEqual(["a", "b", "c", "d"]);
    // a was read back (b went to disk only for it, and was read back in turn); c and d never left memory.
    expect((await metrics.spilled.get()).values[0]?.value).toBe(2);
  });

  it("an item kept in memory only (its write failed) is counted once while queued and in flight", () => {
    const dir = join(tempDir("spool-memory-only"), "spool");
    const { spool } = open(dir, 1024 ** 3, true);
    rmSync(dir, { recursive: true });
    spool.push(item(undefined, "0123456789"));
    expect(spool.bytes).toBe(10);
    const taken = spool.shift() as Item;
    expect(spool.bytes).toBe(10);
    spool.settle(taken, "done");
    expect([spool.bytes, spool.entries]).toEqual([0, 0]);
  });
});

describe("FileSpool requeue", () => {
  it("what is left of a partly delivered item takes its place, on disk, and is all a restart sends of it", () => {
    const dir = join(tempDir("spool-requeue"), "spool");
    const first = open(dir);
    first.spool.push(item(undefined, "1", "2", "3", "4"));
    first.spool.push(item(undefined, "5"));
    const taken = first.spool.shift() as Item;
    first.spool.requeue(taken, item(undefined, "3", "4"));
    expect(first.spool.storedEntries).toBe(3);
    expect(readdirSync(dir).filter((f) => f.endsWith(".batch")).sort()[0]).toMatch(/^0{15}1-e2-/);
    expect(first.spool.shift()?.lines).toEqual(["3", "4"]);

    const second = open(dir);
    expect([second.spool.shift()?.lines, second.spool.shift()?.lines, second.spool.shift()]).toEqual([["3", "4"], ["5"], undefined]);
  });
});
