/**
 * The durable spool on a real file system, without sockets: what is on disk when, what a restart finds, the disk
 * and memory bounds, damaged files, the directory lock.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { serviceLog } from "@aixcl/service-runtime";
import { fullEntry, tempDir } from "@aixcl/testkit";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { SealedBatch } from "../src/encode.js";
import { createMetrics } from "../src/metrics.js";
import { Spool, SpoolDirError, createSpoolMetrics, decodeSpoolFile } from "../src/spool.js";
import { lokiEntries, sealedOf, total, valuesBy } from "./helpers.js";

function openSpool(dir: string, options: { maxBytes?: number; fsync?: boolean; leaseMs?: number } = {}) {
  const registry = new Registry();
  const consumerMetrics = createMetrics({ bufferBytes: () => 0, bufferEntries: () => 0, pushesInFlight: () => 0 }, registry);
  const metrics = createSpoolMetrics(registry);
  const lines: Record<string, unknown>[] = [];
  const log = serviceLog("test", "debug", (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  const spool = new Spool({ dir, maxBytes: options.maxBytes ?? 1024 ** 3, fsync: options.fsync ?? false, leaseMs: options.leaseMs }, metrics, consumerMetrics.dropped, log);
  return { spool, metrics, dropped: consumerMetrics.dropped, lines };
}

/** This process's pid namespace, as the lock records it. */
function pidNamespace(): string {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return "";
  }
}

/** A lock file as a process `pid` on `host` writes it (in our pid namespace when on our host). */
const lockText = (pid: number, host: string) => `${JSON.stringify({ token: "t", pid, host, pidns: host === hostname() ? pidNamespace() : "", beat: 0 })}\n`;

const freshDir = () => join(tempDir("spool-test"), "spool");
const batchFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".batch")).sort();

/** A batch of `n` entries whose lines say which batch they belong to. */
function batch(label: string, n = 3, size = 40): SealedBatch {
  return sealedOf(lokiEntries(Array.from({ length: n }, (_, i) => fullEntry({ message: `${label} #${i} ${"x".repeat(size)}` }))));
}

function sameBatch(actual: SealedBatch | undefined, expected: SealedBatch): void {
  expect(actual).toBeDefined();
  expect(Buffer.from(actual?.push.body ?? [])).toEqual(Buffer.from(expected.push.body));
  expect(actual?.push.contentType).toBe(expected.push.contentType);
  expect({ id: actual?.id, entries: actual?.entries, bytes: actual?.bytes, createdAtMs: actual?.createdAtMs }).toEqual({
    id: expected.id,
    entries: expected.entries,
    bytes: expected.bytes,
    createdAtMs: expected.createdAtMs,
  });
  expect(actual?.streams.map((s) => [s.key.text, [...s.key.labels], s.entries])).toEqual(expected.streams.map((s) => [s.key.text, [...s.key.labels], s.entries]));
}

describe("spool", () => {
  it("writes each batch before the sender can take it, deletes it once done, keeps it when unfinished", async () => {
    const dir = freshDir();
    const { spool, metrics } = openSpool(dir);
    const [a, b, c] = [batch("a"), batch("b"), batch("c")];
    for (const x of [a, b, c]) spool.push(x);
    expect(batchFiles(dir)).toHaveLength(3);
    expect([spool.queuedBatches, spool.storedEntries, spool.entries, spool.bytes]).toEqual([3, 9, 9, a.bytes + b.bytes + c.bytes]);
    expect(spool.shift()).toBe(a);
    spool.settle(a, "done");
    expect(batchFiles(dir)).toHaveLength(2);
    expect(spool.shift()).toBe(b);
    spool.settle(b, "unfinished");
    expect(batchFiles(dir)).toHaveLength(2);
    expect([spool.queuedBatches, spool.storedEntries, spool.entries]).toEqual([1, 6, 3]);
    expect(() => spool.settle(b, "done")).toThrow(/not in flight/);
    expect(spool.usedBytes).toBe(2 * 4096);
    const gauges = await Promise.all([metrics.bytes.get(), metrics.batches.get(), metrics.entries.get()]);
    expect(gauges.map((g) => g.values[0]?.value)).toEqual([8192, 2, 6]);
  });

  it("a restart sends what the previous run left, oldest first, byte for byte", async () => {
    const dir = freshDir();
    const first = openSpool(dir);
    const sent = [batch("a"), batch("b", 5), batch("c", 1)];
    for (const x of sent) first.spool.push(x);
    const inFlight = first.spool.shift();
    expect(inFlight).toBe(sent[0]);
    // No settle, no close: the process dies here.

    const second = openSpool(dir);
    expect(second.spool.queuedBatches).toBe(3);
    expect(second.spool.storedEntries).toBe(9);
    expect(second.spool.bytes).toBe(0); // nothing in memory until it is read back
    expect(second.lines.find((l) => l.msg === "spool: delivering batches left by the previous run")).toMatchObject({ batches: 3, entries: 9 });
    const replayed = [second.spool.shift(), second.spool.shift(), second.spool.shift()];
    replayed.forEach((r, i) => sameBatch(r, sent[i] as SealedBatch));
    expect(second.spool.shift()).toBeUndefined();
    expect(await total(second.metrics.replayedBatches)).toBe(3);
    expect(await total(second.metrics.replayedEntries)).toBe(9);
    for (const r of replayed) second.spool.settle(r as SealedBatch, "done");
    expect(batchFiles(dir)).toEqual([]);
    expect(second.lines.find((l) => l.msg === "spool: the previous run's batches are delivered")).toMatchObject({ batches: 3, entries: 9 });

    // New batches continue the sequence after the old ones, so order survives restarts.
    second.spool.push(batch("d"));
    const [name] = batchFiles(dir);
    expect(Number(name?.slice(0, 16))).toBe(4);
  });

  it("memory: shed releases the oldest in-memory copies, which stay queued on disk and come back in order", async () => {
    const dir = freshDir();
    const { spool, metrics } = openSpool(dir);
    const batches = [batch("a"), batch("b"), batch("c"), batch("d")];
    for (const x of batches) spool.push(x);
    const before = spool.bytes;
    expect(spool.shed((batches[0] as SealedBatch).bytes + 1)).toEqual([]);
    expect(spool.bytes).toBe(before - (batches[0] as SealedBatch).bytes - (batches[1] as SealedBatch).bytes);
    expect(await total(metrics.spilled)).toBe(2);
    expect(spool.queuedBatches).toBe(4);
    const out = [spool.shift(), spool.shift(), spool.shift(), spool.shift()];
    out.forEach((r, i) => sameBatch(r, batches[i] as SealedBatch));
    expect(out[2]).toBe(batches[2]); // still in memory: the same object, not read back
    expect(await total(metrics.replayedBatches)).toBe(2);
    expect(spool.bytes).toBe(before);
  });

  it("full: the oldest queued batches are deleted and counted, batches in flight never, the disk bound holds", async () => {
    const dir = freshDir();
    // Each batch file takes one 4 KiB block; room for five.
    const { spool, dropped, lines } = openSpool(dir, { maxBytes: 5 * 4096 });
    const batches = Array.from({ length: 9 }, (_, i) => batch(`b${i}`, 2));
    spool.push(batches[0] as SealedBatch);
    expect(spool.shift()).toBe(batches[0]); // in flight
    for (const x of batches.slice(1)) {
      spool.push(x);
      expect(spool.usedBytes).toBeLessThanOrEqual(5 * 4096);
    }
    expect(batchFiles(dir)).toHaveLength(5);
    expect(await valuesBy(dropped)).toEqual({ spool_full: 4 * 2 });
    // Four deletions, one line: a full spool deletes at every write, and says so once per 10 s (the counter has all).
    expect(lines.filter((l) => l.msg === "spool full: deleted the oldest queued batches")).toMatchObject([{ batches: 1, entries: 2 }]);
    // Kept: the one in flight and the newest four.
    spool.settle(batches[0] as SealedBatch, "done");
    const left = [spool.shift(), spool.shift(), spool.shift(), spool.shift(), spool.shift()];
    expect(left).toEqual([...batches.slice(5), undefined]);
  });

  it("a damaged file is deleted and its entries counted; half-written files are removed at start", async () => {
    const dir = freshDir();
    const first = openSpool(dir);
    const batches = [batch("a"), batch("b", 4), batch("c"), batch("d", 2)];
    for (const x of batches) first.spool.push(x);
    const [fa, fb, , fd] = batchFiles(dir).map((f) => join(dir, f));
    const flipped = readFileSync(fb as string);
    flipped[flipped.length - 3] = (flipped[flipped.length - 3] as number) ^ 0x40;
    writeFileSync(fb as string, flipped);
    writeFileSync(fd as string, readFileSync(fd as string).subarray(0, 30));
    writeFileSync(join(dir, "0000000000000099-e1-b1-s1.batch.tmp"), "half");
    expect(() => decodeSpoolFile(readFileSync(fb as string))).toThrow(/checksum/);

    const second = openSpool(dir);
    expect(existsSync(join(dir, "0000000000000099-e1-b1-s1.batch.tmp"))).toBe(false);
    sameBatch(second.spool.shift(), batches[0] as SealedBatch);
    sameBatch(second.spool.shift(), batches[2] as SealedBatch);
    expect(second.spool.shift()).toBeUndefined();
    expect(await valuesBy(second.dropped)).toEqual({ spool_corrupt: 4 + 2 });
    expect(existsSync(fb as string)).toBe(false);
    expect(existsSync(fa as string)).toBe(true);
    expect(second.lines.filter((l) => l.msg === "spool: a batch file is damaged; its entries are lost")).toHaveLength(2);
  });

  it("a write that fails keeps the batch in memory and counts it; shedding it then loses it", async () => {
    const dir = freshDir();
    const { spool, metrics } = openSpool(dir);
    rmSync(dir, { recursive: true });
    const a = batch("a");
    spool.push(a);
    expect(await total(metrics.writeErrors)).toBe(1);
    expect([spool.queuedBatches, spool.storedEntries, spool.usedBytes]).toEqual([1, 0, 0]);
    expect(spool.shed(1)).toEqual([a]);
    const b = batch("b");
    spool.push(b);
    expect(spool.drain()).toEqual([b]);
  });

  it("with fsync the files are the same", () => {
    const dir = freshDir();
    const { spool } = openSpool(dir, { fsync: true });
    const a = batch("a");
    spool.push(a);
    spool.close();
    sameBatch(decodeSpoolFile(readFileSync(join(dir, batchFiles(dir)[0] as string))), a);
  });

  it("one consumer per directory: a live owner on this host refuses a second one, a gone one's lock is taken over", () => {
    const dir = freshDir();
    const first = openSpool(dir);
    first.spool.close();
    // A live process other than us on this host (same pid namespace) holds it: refused at once.
    writeFileSync(join(dir, "LOCK"), lockText(process.ppid, hostname()));
    expect(() => openSpool(dir)).toThrow(SpoolDirError);
    expect(() => openSpool(dir)).toThrow(/^spool.dir .*\/spool: in use by another log consumer \(pid \d+ on host .*: it runs\); give each consumer its own spool.dir/);
    // A process of this host that has exited: taken over at once.
    const gone = spawnSync("true").pid as number;
    writeFileSync(join(dir, "LOCK"), lockText(gone, hostname()));
    const taken = openSpool(dir);
    expect(JSON.parse(readFileSync(join(dir, "LOCK"), "utf8"))).toMatchObject({ pid: process.pid, host: hostname() });
    taken.spool.close();
    expect(existsSync(join(dir, "LOCK"))).toBe(false);
  });

  it("another host's lock is taken over only once its lease has expired, never while it is renewed", () => {
    const dir = freshDir();
    openSpool(dir).spool.close();
    // Another host (another container) whose owner renews its lease: refused, though no pid can be checked.
    const renewer = spawn(process.execPath, ["-e", `let beat = 0; setInterval(() => require("fs").writeFileSync(${JSON.stringify(join(dir, "LOCK"))}, JSON.stringify({ token: "t", pid: 1, host: "another-host", pidns: "", beat: beat++ })), 50)`]);
    try {
      for (let i = 0; i < 100 && !existsSync(join(dir, "LOCK")); i++) spawnSync("sleep", ["0.05"]);
      expect(() => openSpool(dir, { leaseMs: 500 })).toThrow(/in use by another log consumer \(pid 1 on host another-host: its lease was just renewed\)/);
    } finally {
      renewer.kill("SIGKILL");
    }
    // The same lock once nobody renews it: taken over after one lease, not before.
    writeFileSync(join(dir, "LOCK"), lockText(1, "another-host"));
    const started = performance.now();
    const taken = openSpool(dir, { leaseMs: 500 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(500);
    expect(taken.lines.some((l) => /lock is held by pid 1 on host another-host; waiting up to 500 ms/.test(String(l.msg)))).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, "LOCK"), "utf8"))).toMatchObject({ pid: process.pid, host: hostname() });
    taken.spool.close();
  });

  it("an owner whose lock was taken over says so, and leaves the new owner's lock alone", async () => {
    const dir = freshDir();
    const owner = openSpool(dir, { leaseMs: 200 });
    // What a newcomer does once this owner has been silent for a lease (frozen, say).
    rmSync(join(dir, "LOCK"));
    writeFileSync(join(dir, "LOCK"), lockText(1, "another-host"));
    await new Promise((r) => setTimeout(r, 300));
    expect(owner.spool.lockLost).toMatch(/LOCK was taken over by another process/);
    expect(owner.lines.some((l) => /lost the directory's lock/.test(String(l.msg)))).toBe(true);
    owner.spool.close();
    expect(readFileSync(join(dir, "LOCK"), "utf8")).toBe(lockText(1, "another-host"));
  });

  it("a directory that cannot be used stops the start, naming spool.dir and what to do", () => {
    const file = join(tempDir("spool-test"), "a-file");
    writeFileSync(file, "");
    expect(() => openSpool(join(file, "spool"))).toThrow(/^spool.dir .*a-file\/spool: cannot use it \(ENOTDIR\); set spool.dir \(LOG_CONSUMER_SPOOL_DIR\)/);
  });
});
