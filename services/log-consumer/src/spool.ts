import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writevSync,
} from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { crc32 } from "node:zlib";
import type { ServiceLog } from "@aixcl/shared";
import type { Registry } from "prom-client";
import { Counter, Gauge } from "prom-client";
import type { SealedBatch } from "./encode.js";
import type { BatchQueue, Settlement } from "./queue.js";

/**
 * The durable queue: every closed batch is written to its own file in the spool directory before the sender can
 * take it, and deleted once the sender is done with it. So a file exists exactly while its batch is undelivered,
 * and a restart (after a stop, a crash or SIGKILL) sends what it finds, oldest first.
 *
 * - Memory: only the newest batches keep their push body in memory (the pipeline's buffer.max_bytes); when it is
 *   full, `shed` drops the in-memory copies of the oldest queued batches ("spilled") and they are read back from
 *   disk when their turn comes ("replayed").
 * - Disk: bounded by max_bytes, counted in 4 KiB blocks (what a file really occupies), so many small batches
 *   cannot exceed it either. When a new batch does not fit, the oldest queued batches are deleted and their entries
 *   counted as dropped (spool_full). The index kept in memory is a few numbers per file.
 * - A file is written under a temporary name and renamed, so a crash leaves whole files or a .tmp that the next
 *   start deletes. Each file carries a CRC32; a file that fails it is deleted and counted (spool_corrupt).
 * - fsync (off by default): without it a written batch survives the process (SIGKILL, OOM kill, container
 *   restart) but not a power loss or kernel crash in the few seconds before the kernel writes it back. With it,
 *   each batch and the directory entry are synced before the receive loop goes on, which costs a disk flush per
 *   batch.
 *
 * File: magic "AXSP1\n", u32 header length, u32 body length, u32 CRC32 of header and body (little-endian), then
 * the header (JSON: batch id, counts, content type, streams) and the push body exactly as it is sent to Loki.
 * Name: <sequence>-e<entries>-b<bytes>-s<file size>.batch, so a start indexes the spool from a directory listing.
 */

export interface SpoolOptions {
  dir: string;
  /** Disk bound, counted in 4 KiB blocks. */
  maxBytes: number;
  /** Sync each batch file and the directory before going on. */
  fsync: boolean;
}

/** Drop reasons of the spool (the consumer's dropped_entries_total{reason}). */
export const SPOOL_DROP_REASONS = {
  /** The spool reached spool.max_bytes: its oldest queued batches were deleted. */
  full: "spool_full",
  /** A spool file could not be read back or failed its checksum (disk error, power loss without fsync). */
  corrupt: "spool_corrupt",
} as const;

const MAGIC = Buffer.from("AXSP1\n");
const PREFIX_BYTES = MAGIC.length + 12;
const BLOCK = 4096;
const LOCK_FILE = "LOCK";
const NAME = /^(\d{16})-e(\d+)-b(\d+)-s(\d+)\.batch$/;
/** Replay progress is logged at most this often. */
const PROGRESS_INTERVAL_MS = 5_000;

const blocks = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

interface Header {
  id: number;
  entries: number;
  bytes: number;
  createdAtMs: number;
  contentType: string;
  streams: { text: string; labels: [string, string][]; entries: number }[];
}

/** One undelivered batch: always indexed, its push body in memory or only on disk. */
interface Slot {
  readonly seq: number;
  readonly entries: number;
  readonly bytes: number;
  /** Spool bytes it occupies (block-rounded); 0 when it could not be written (then it lives in memory only). */
  readonly diskBytes: number;
  readonly file: string | undefined;
  batch: SealedBatch | undefined;
  /** Found at start: left over from an earlier run. */
  readonly previousRun: boolean;
}

export function encodeSpoolFile(batch: SealedBatch): Buffer[] {
  const header: Header = {
    id: batch.id,
    entries: batch.entries,
    bytes: batch.bytes,
    createdAtMs: batch.createdAtMs,
    contentType: batch.push.contentType,
    streams: batch.streams.map((s) => ({ text: s.key.text, labels: [...s.key.labels], entries: s.entries })),
  };
  const headerBytes = Buffer.from(JSON.stringify(header));
  const body = batch.push.body;
  const prefix = Buffer.alloc(PREFIX_BYTES);
  MAGIC.copy(prefix);
  prefix.writeUInt32LE(headerBytes.length, MAGIC.length);
  prefix.writeUInt32LE(body.byteLength, MAGIC.length + 4);
  prefix.writeUInt32LE(crc32(body, crc32(headerBytes)), MAGIC.length + 8);
  return [prefix, headerBytes, Buffer.from(body.buffer, body.byteOffset, body.byteLength)];
}

/** The batch stored in a spool file; throws with the reason when the file is damaged. */
export function decodeSpoolFile(data: Buffer): SealedBatch {
  if (data.length < PREFIX_BYTES || !data.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error("not a spool file");
  const headerLength = data.readUInt32LE(MAGIC.length);
  const bodyLength = data.readUInt32LE(MAGIC.length + 4);
  if (PREFIX_BYTES + headerLength + bodyLength !== data.length) throw new Error(`truncated: ${data.length} bytes, expected ${PREFIX_BYTES + headerLength + bodyLength}`);
  const headerBytes = data.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength);
  const body = data.subarray(PREFIX_BYTES + headerLength);
  if (crc32(body, crc32(headerBytes)) !== data.readUInt32LE(MAGIC.length + 8)) throw new Error("checksum mismatch");
  const header = JSON.parse(headerBytes.toString("utf8")) as Header;
  return {
    id: header.id,
    entries: header.entries,
    bytes: header.bytes,
    createdAtMs: header.createdAtMs,
    streams: header.streams.map((s) => ({ key: { text: s.text, labels: new Map(s.labels) }, entries: s.entries })),
    push: { body, contentType: header.contentType },
  };
}

export function createSpoolMetrics(registry: Registry, prefix = "aixcl_log_consumer_") {
  const opts = { registers: [registry] };
  return {
    bytes: new Gauge({ name: `${prefix}spool_bytes`, help: "Disk used by the spool (batch files, counted in 4 KiB blocks).", ...opts }),
    limitBytes: new Gauge({ name: `${prefix}spool_limit_bytes`, help: "Configured spool.max_bytes.", ...opts }),
    entries: new Gauge({ name: `${prefix}spool_entries`, help: "Undelivered entries in the spool (queued and in flight).", ...opts }),
    batches: new Gauge({ name: `${prefix}spool_batches`, help: "Undelivered batches in the spool (queued and in flight).", ...opts }),
    writtenBytes: new Counter({ name: `${prefix}spool_written_bytes_total`, help: "Bytes written to spool files.", ...opts }),
    spilled: new Counter({
      name: `${prefix}spool_spilled_batches_total`,
      help: "Batches whose in-memory copy was released because the memory buffer was full; they wait on disk only.",
      ...opts,
    }),
    replayedBatches: new Counter({ name: `${prefix}spool_replayed_batches_total`, help: "Batches read back from the spool to be sent.", ...opts }),
    replayedEntries: new Counter({ name: `${prefix}spool_replayed_entries_total`, help: "Entries read back from the spool to be sent.", ...opts }),
    writeErrors: new Counter({
      name: `${prefix}spool_write_errors_total`,
      help: "Batches that could not be written to the spool (disk full or failing); they are kept in memory only.",
      ...opts,
    }),
  };
}

export type SpoolMetrics = ReturnType<typeof createSpoolMetrics>;

/** Why the spool directory cannot be used; the message names spool.dir and what to do. */
export class SpoolDirError extends Error {
  constructor(dir: string, reason: string) {
    super(`spool.dir ${dir}: ${reason}`);
    this.name = "SpoolDirError";
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * One consumer per spool directory: two would send the same files. The lock names the process and host; a lock
 * from a process that is gone, or from another host (a recreated container), is stale and taken over.
 */
function takeLock(dir: string): string {
  const file = join(dir, LOCK_FILE);
  const me = `${process.pid} ${hostname()}\n`;
  try {
    writeFileSync(file, me, { flag: "wx", mode: 0o600 });
    return file;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const [pid = "", host = ""] = readFileSync(file, "utf8").trim().split(" ");
  if (host === hostname() && Number(pid) !== process.pid && processAlive(Number(pid))) {
    throw new SpoolDirError(dir, `in use by another log consumer (pid ${pid}); give each consumer its own spool.dir`);
  }
  writeFileSync(file, me, { mode: 0o600 });
  return file;
}

export class Spool implements BatchQueue {
  readonly durable = true;
  private readonly dir: string;
  /**
   * Queued batches, oldest first, in two runs: those on disk only, then those also in memory. Every spilled batch
   * is older than every resident one, because memory is freed from the oldest.
   */
  private readonly spilled: Slot[] = [];
  private readonly resident: Slot[] = [];
  private readonly inFlight = new Map<SealedBatch, Slot>();
  private readonly lockFile: string;
  private dirFd: number | undefined;
  private nextSeq: number;
  private diskBytes = 0;
  private storedCount = 0;
  private storedEntryCount = 0;
  /** Entries and bytes in memory: resident plus in flight. */
  entries = 0;
  bytes = 0;
  private readonly replay: { batches: number; entries: number; startedMs: number; done: number; doneEntries: number; loggedMs: number };
  private writeErrorLoggedMs = 0;

  constructor(
    private readonly options: SpoolOptions,
    private readonly metrics: SpoolMetrics,
    private readonly dropped: Counter<"reason">,
    private readonly log: ServiceLog,
  ) {
    this.dir = resolve(options.dir);
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.lockFile = takeLock(this.dir);
    } catch (error) {
      if (error instanceof SpoolDirError) throw error;
      const e = error as NodeJS.ErrnoException;
      throw new SpoolDirError(
        this.dir,
        `cannot use it (${e.code ?? e.message}); set spool.dir (LOG_CONSUMER_SPOOL_DIR) to a directory this user can write, in compose the log-consumer-spool volume`,
      );
    }
    if (options.fsync) this.dirFd = openSync(this.dir, "r");
    this.nextSeq = this.index() + 1;
    const now = Date.now();
    this.replay = { batches: this.storedCount, entries: this.storedEntryCount, startedMs: now, done: 0, doneEntries: 0, loggedMs: now };
    metrics.limitBytes.set(options.maxBytes);
    this.updateGauges();
    if (this.storedCount > 0) {
      log.info("spool: delivering batches left by the previous run", { dir: this.dir, batches: this.storedCount, entries: this.storedEntryCount, bytes: this.diskBytes });
    }
  }

  get queuedBatches(): number {
    return this.spilled.length + this.resident.length;
  }

  get storedEntries(): number {
    return this.storedEntryCount;
  }

  /** Spool bytes in use (block-rounded). */
  get usedBytes(): number {
    return this.diskBytes;
  }

  get storedBatches(): number {
    return this.storedCount;
  }

  /** Reads the directory: batch files become queued batches on disk only; partial writes are deleted. */
  private index(): number {
    let lastSeq = 0;
    for (const name of readdirSync(this.dir)) {
      if (name.endsWith(".tmp")) {
        rmSync(join(this.dir, name), { force: true });
        continue;
      }
      const m = NAME.exec(name);
      if (!m) continue;
      const [seq, entries, bytes, size] = [m[1], m[2], m[3], m[4]].map(Number) as [number, number, number, number];
      lastSeq = Math.max(lastSeq, seq);
      this.spilled.push({ seq, entries, bytes, diskBytes: blocks(size), file: join(this.dir, name), batch: undefined, previousRun: true });
    }
    this.spilled.sort((a, b) => a.seq - b.seq);
    for (const slot of this.spilled) this.store(slot);
    return lastSeq;
  }

  private store(slot: Slot): void {
    this.diskBytes += slot.diskBytes;
    this.storedCount++;
    this.storedEntryCount += slot.entries;
  }

  private unstore(slot: Slot): void {
    if (!slot.file) return;
    try {
      unlinkSync(slot.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn("spool: could not delete a batch file", { file: slot.file, error: (error as Error).message });
    }
    this.diskBytes -= slot.diskBytes;
    this.storedCount--;
    this.storedEntryCount -= slot.entries;
  }

  private updateGauges(): void {
    this.metrics.bytes.set(this.diskBytes);
    this.metrics.entries.set(this.storedEntryCount);
    this.metrics.batches.set(this.storedCount);
  }

  push(batch: SealedBatch): void {
    const seq = this.nextSeq++;
    const parts = encodeSpoolFile(batch);
    const size = parts.reduce((n, p) => n + p.length, 0);
    this.makeRoom(blocks(size));
    let file: string | undefined;
    if (this.diskBytes + blocks(size) <= this.options.maxBytes) file = this.write(seq, batch, parts, size);
    else this.writeFailed(batch, "no room: the spool is taken up by batches in flight");
    const slot: Slot = { seq, entries: batch.entries, bytes: batch.bytes, diskBytes: file ? blocks(size) : 0, file, batch, previousRun: false };
    if (file) this.store(slot);
    this.resident.push(slot);
    this.entries += batch.entries;
    this.bytes += batch.bytes;
    this.updateGauges();
  }

  /** Deletes the oldest queued batches until `needed` more bytes fit, counting their entries as dropped. */
  private makeRoom(needed: number): void {
    let lost = 0;
    let lostBatches = 0;
    for (const run of [this.spilled, this.resident]) {
      for (let i = 0; this.diskBytes + needed > this.options.maxBytes && i < run.length; ) {
        const slot = run[i] as Slot;
        // A batch kept in memory only (its write failed) frees no disk; it goes out when sent.
        if (!slot.file) {
          i++;
          continue;
        }
        run.splice(i, 1);
        if (slot.batch) {
          this.entries -= slot.entries;
          this.bytes -= slot.bytes;
        }
        this.unstore(slot);
        lost += slot.entries;
        lostBatches++;
      }
    }
    if (lost > 0) {
      this.dropped.labels(SPOOL_DROP_REASONS.full).inc(lost);
      this.log.warn("spool full: deleted the oldest queued batches", { batches: lostBatches, entries: lost, max_bytes: this.options.maxBytes });
    }
  }

  private write(seq: number, batch: SealedBatch, parts: Buffer[], size: number): string | undefined {
    const name = `${String(seq).padStart(16, "0")}-e${batch.entries}-b${batch.bytes}-s${size}.batch`;
    const tmp = join(this.dir, `${name}.tmp`);
    const file = join(this.dir, name);
    let fd: number | undefined;
    try {
      fd = openSync(tmp, "w", 0o600);
      for (let written = writevSync(fd, parts); written < size; ) written += writevSync(fd, [Buffer.concat(parts).subarray(written)]);
      if (this.options.fsync) fdatasyncSync(fd);
      closeSync(fd);
      fd = undefined;
      renameSync(tmp, file);
      if (this.dirFd !== undefined) fsyncSync(this.dirFd);
      this.metrics.writtenBytes.inc(size);
      return file;
    } catch (error) {
      if (fd !== undefined) closeSync(fd);
      rmSync(tmp, { force: true });
      this.writeFailed(batch, (error as Error).message);
      return undefined;
    }
  }

  private writeFailed(batch: SealedBatch, reason: string): void {
    this.metrics.writeErrors.inc();
    const now = Date.now();
    // A failing disk fails every write; one line per 10 s is enough, the counter has them all.
    if (now - this.writeErrorLoggedMs < 10_000) return;
    this.writeErrorLoggedMs = now;
    this.log.error("spool: could not write a batch; it is kept in memory only and lost if the consumer stops", { batch: batch.id, entries: batch.entries, reason });
  }

  shift(): SealedBatch | undefined {
    for (let slot = this.spilled.shift(); slot; slot = this.spilled.shift()) {
      const batch = this.readBack(slot);
      if (!batch) continue;
      slot.batch = batch;
      this.entries += slot.entries;
      this.bytes += slot.bytes;
      this.inFlight.set(batch, slot);
      return batch;
    }
    const slot = this.resident.shift();
    if (!slot?.batch) return undefined;
    this.inFlight.set(slot.batch, slot);
    return slot.batch;
  }

  private readBack(slot: Slot): SealedBatch | undefined {
    try {
      const batch = decodeSpoolFile(readFileSync(slot.file as string));
      this.metrics.replayedBatches.inc();
      this.metrics.replayedEntries.inc(slot.entries);
      return batch;
    } catch (error) {
      this.log.error("spool: a batch file is damaged; its entries are lost", { file: slot.file, entries: slot.entries, error: (error as Error).message });
      this.dropped.labels(SPOOL_DROP_REASONS.corrupt).inc(slot.entries);
      this.unstore(slot);
      this.updateGauges();
      if (slot.previousRun) this.replayProgress(slot);
      return undefined;
    }
  }

  settle(batch: SealedBatch, how: Settlement): void {
    const slot = this.inFlight.get(batch);
    if (!slot) throw new Error(`batch ${batch.id} settled but not in flight`);
    this.inFlight.delete(batch);
    this.entries -= slot.entries;
    this.bytes -= slot.bytes;
    // Unfinished at a stop: the file stays for the next start.
    if (how === "done") {
      this.unstore(slot);
      if (slot.previousRun) this.replayProgress(slot);
    }
    this.updateGauges();
  }

  /** Counts a batch of the previous run as done (delivered, refused or damaged) and logs progress now and then. */
  private replayProgress(slot: Slot): void {
    const r = this.replay;
    r.done++;
    r.doneEntries += slot.entries;
    const now = Date.now();
    if (r.done === r.batches) {
      this.log.info("spool: the previous run's batches are delivered", { batches: r.batches, entries: r.entries, seconds: Math.round((now - r.startedMs) / 100) / 10 });
    } else if (now - r.loggedMs >= PROGRESS_INTERVAL_MS) {
      r.loggedMs = now;
      this.log.info("spool: delivering the previous run's batches", {
        done_batches: r.done,
        of_batches: r.batches,
        done_entries: r.doneEntries,
        of_entries: r.entries,
        percent: Math.floor((100 * r.done) / r.batches),
      });
    }
  }

  /** Frees memory from the oldest resident batches, which stay queued on disk. */
  shed(bytes: number): SealedBatch[] {
    const lost: SealedBatch[] = [];
    let freed = 0;
    while (freed < bytes) {
      const slot = this.resident.shift();
      if (!slot?.batch) break;
      freed += slot.bytes;
      this.entries -= slot.entries;
      this.bytes -= slot.bytes;
      if (slot.file) {
        slot.batch = undefined;
        this.spilled.push(slot);
        this.metrics.spilled.inc();
      } else {
        // Not on disk (its write failed): releasing it loses it, as in the memory-only queue.
        lost.push(slot.batch);
      }
    }
    return lost;
  }

  /** At a stop, queued batches stay on disk for the next start; only those the spool could not write are lost. */
  drain(): SealedBatch[] {
    const lost = this.resident.filter((s) => !s.file).map((s) => s.batch as SealedBatch);
    this.spilled.length = 0;
    this.resident.length = 0;
    return lost;
  }

  /** Releases the directory; the files stay. */
  close(): void {
    if (this.dirFd !== undefined) closeSync(this.dirFd);
    this.dirFd = undefined;
    rmSync(this.lockFile, { force: true });
  }
}
