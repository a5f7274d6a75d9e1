import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writevSync } from "node:fs";
import { join, resolve } from "node:path";
import { LogThrottle } from "@aixcl/client-logger";
import type { ServiceLog } from "../ops/log.js";
import { decodeSpoolRecord, encodeSpoolRecord } from "./format.js";
import type { SpoolRecord } from "./format.js";
import type { SpoolNaming } from "./lock.js";
import { SpoolDirError, SpoolLock } from "./lock.js";
import type { SpoolMetrics } from "./metrics.js";

/**
 * A durable FIFO of items, one file each: every item pushed is written to its own file before anyone can take
 * it, and deleted once its taker is done with it. So a file exists exactly while its item is undelivered, and a
 * restart (after a stop, a crash or SIGKILL) finds what is left, oldest first. The log consumer keeps its batches
 * for Loki here, the broker the log messages it holds for an absent subscriber.
 *
 * - Memory: only the newest items keep their body in memory; `shed` drops the in-memory copies of the oldest
 *   queued items ("spilled") and they are read back from disk when their turn comes ("replayed").
 * - Disk: bounded by maxBytes, counted in 4 KiB blocks (what a file really occupies), so many small items cannot
 *   exceed it either. When a new item does not fit, the oldest queued items are deleted and their entries counted
 *   as dropped ("full"). The index kept in memory is a few numbers per file.
 * - A file is written under a temporary name and renamed, so a crash leaves whole files or a .tmp that the next
 *   start deletes. Each file carries a CRC32; a file that fails it is deleted and counted ("corrupt").
 * - fsync (off by default): without it a written item survives the process (SIGKILL, OOM kill, container
 *   restart) but not a power loss or kernel crash in the few seconds before the kernel writes it back. With it,
 *   each file and the directory entry are synced before push returns, which costs a disk flush per item.
 * - Lanes (optional): items of different lanes are queued apart and taken per lane, in order within each lane;
 *   the disk bound and the oldest-first deletion span all lanes.
 *
 * File: see format.ts. Name: <sequence>-e<entries>-b<bytes>-s<file size>[-l<lane>].batch, so a start indexes the
 * spool from a directory listing.
 */

/** What the spool needs to know of an item; the codec stores the rest. */
export interface SpoolItem {
  readonly entries: number;
  /** Memory the item takes (what the owner's memory bound counts). */
  readonly bytes: number;
  readonly createdAtMs: number;
  /** Queue it apart from items of other lanes (lowercase letters only). */
  readonly lane?: string;
}

export interface SpoolCodec<T extends SpoolItem> {
  encode(item: T): SpoolRecord;
  /** Rebuilds the item stored by encode; throws when the header does not describe one. */
  decode(header: unknown, body: Buffer): T;
}

export interface SpoolOptions {
  dir: string;
  /** Disk bound, counted in 4 KiB blocks. */
  maxBytes: number;
  /** Sync each file and the directory before going on. */
  fsync: boolean;
  /**
   * Keep an item on disk only once it is written, reading it back when its turn comes, instead of keeping the
   * newest in memory until shed() (default false). An item that could not be written stays in memory.
   */
  diskOnly?: boolean;
  /**
   * Memory the spool's items may take, resident and in flight (default unbounded). Reading an item back from disk
   * first moves the oldest resident items to disk only to stay within it, so a read-back never grows memory past
   * the owner's bound; shed() is how the owner keeps it when pushing.
   */
  maxMemoryBytes?: number;
  /** The directory lock's lease (see SpoolLock); default 10 s. */
  leaseMs?: number;
}

/** Why entries were lost: "full" (deleted to make room for newer ones), "corrupt" (a file failed its checksum or could not be read). */
export type SpoolDropReason = "full" | "corrupt";

export interface SpoolHooks {
  metrics: SpoolMetrics;
  /** Entries lost, by reason; the owner counts them in its own drop metric. */
  onDropped(reason: SpoolDropReason, entries: number): void;
  log: ServiceLog;
  naming: SpoolNaming;
}

/** How the taker finished with an in-flight item. */
export type SpoolSettlement =
  /** Delivered, refused, or given up on: its file is deleted. */
  | "done"
  /** Not delivered because the owner is stopping: its file stays for the next start. */
  | "unfinished";

const BLOCK = 4096;
const NAME = /^(\d{16})-e(\d+)-b(\d+)-s(\d+)(?:-l([a-z]+))?\.batch$/;
const LANE = /^[a-z]+$/;
/** Replay progress is logged at most this often. */
const PROGRESS_INTERVAL_MS = 5_000;

const blocks = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

/** One undelivered item: always indexed, its body in memory or only on disk. */
interface Slot<T> {
  readonly seq: number;
  readonly entries: number;
  readonly bytes: number;
  readonly lane: string | undefined;
  /** Spool bytes it occupies (block-rounded); 0 when it could not be written (then it lives in memory only). */
  readonly diskBytes: number;
  readonly file: string | undefined;
  item: T | undefined;
  /** Known for items of this run; for those of an earlier run, the file's time once asked for. */
  createdAtMs: number | undefined;
  /** Found at start: left over from an earlier run. */
  readonly previousRun: boolean;
}

export class FileSpool<T extends SpoolItem> {
  readonly durable = true;
  private readonly dir: string;
  /**
   * Queued items, oldest first, in two runs: those on disk only (or, when a write failed, memory only), then
   * those in memory. Every spilled item is older than every resident one, because memory is freed from the oldest.
   */
  private readonly spilled: Slot<T>[] = [];
  private readonly resident: Slot<T>[] = [];
  private readonly inFlight = new Map<T, Slot<T>>();
  private readonly lock: SpoolLock;
  private readonly metrics: SpoolMetrics;
  private readonly log: ServiceLog;
  private readonly naming: SpoolNaming;
  private dirFd: number | undefined;
  private nextSeq: number;
  private diskBytes = 0;
  private storedCount = 0;
  private storedEntryCount = 0;
  /** Entries and bytes in memory: resident plus in flight. */
  entries = 0;
  bytes = 0;
  private readonly replay: { batches: number; entries: number; startedMs: number; done: number; doneEntries: number; loggedMs: number };
  /** A failing disk fails every write, and a full spool deletes at every write. */
  private readonly writeErrorLog = new LogThrottle();
  private readonly fullLog = new LogThrottle<"batches" | "entries">();

  constructor(
    private readonly options: SpoolOptions,
    private readonly codec: SpoolCodec<T>,
    private readonly hooks: SpoolHooks,
  ) {
    ({ metrics: this.metrics, log: this.log, naming: this.naming } = hooks);
    this.dir = resolve(options.dir);
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.lock = SpoolLock.take(this.dir, this.naming, {
        leaseMs: options.leaseMs,
        onWait: (holder, leaseMs) =>
          this.log.warn(`${this.naming.log}: the directory's lock is held by ${holder}; waiting up to ${leaseMs} ms for its lease to expire`, { dir: this.dir }),
        onLost: (reason) =>
          this.log.error(`${this.naming.log}: lost the directory's lock: another process may be sending these files too; restart this one`, { dir: this.dir, reason }),
      });
    } catch (error) {
      if (error instanceof SpoolDirError) throw error;
      const e = error as NodeJS.ErrnoException;
      const { key, env, volume } = this.naming;
      throw new SpoolDirError(key, this.dir, `cannot use it (${e.code ?? e.message}); set ${key} (${env}) to a directory this user can write, in compose the ${volume} volume`);
    }
    if (options.fsync) this.dirFd = openSync(this.dir, "r");
    this.nextSeq = this.index() + 1;
    const now = Date.now();
    this.replay = { batches: this.storedCount, entries: this.storedEntryCount, startedMs: now, done: 0, doneEntries: 0, loggedMs: now };
    this.metrics.limitBytes.set(options.maxBytes);
    this.updateGauges();
    if (this.storedCount > 0) {
      this.log.info(`${this.naming.log}: delivering batches left by the previous run`, { dir: this.dir, batches: this.storedCount, entries: this.storedEntryCount, bytes: this.diskBytes });
    }
  }

  get queuedBatches(): number {
    return this.spilled.length + this.resident.length;
  }

  /** Undelivered entries (queued and in flight): what a stop now leaves for the next start. */
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

  /** When the oldest queued item (of `lane`, or of any) was made; an earlier run's item says when its file was written. */
  oldestQueuedAtMs(lane?: string): number | undefined {
    const slot = this.find(this.spilled, lane) ?? this.find(this.resident, lane);
    if (!slot) return undefined;
    if (slot.createdAtMs === undefined && slot.file) {
      try {
        slot.createdAtMs = statSync(slot.file).mtimeMs;
      } catch {
        return undefined;
      }
    }
    return slot.createdAtMs;
  }

  private find(run: Slot<T>[], lane: string | undefined): Slot<T> | undefined {
    return lane === undefined ? run[0] : run.find((s) => s.lane === lane);
  }

  /** Reads the directory: item files become queued items on disk only; partial writes are deleted. */
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
      this.spilled.push({ seq, entries, bytes, lane: m[5], diskBytes: blocks(size), file: join(this.dir, name), item: undefined, createdAtMs: undefined, previousRun: true });
    }
    this.spilled.sort((a, b) => a.seq - b.seq);
    for (const slot of this.spilled) this.store(slot);
    return lastSeq;
  }

  private store(slot: Slot<T>): void {
    this.diskBytes += slot.diskBytes;
    this.storedCount++;
    this.storedEntryCount += slot.entries;
  }

  private unstore(slot: Slot<T>): void {
    if (!slot.file) return;
    try {
      unlinkSync(slot.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn(`${this.naming.log}: could not delete a batch file`, { file: slot.file, error: (error as Error).message });
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

  /** Writes the item to its file and queues it at the back (of its lane). */
  push(item: T): void {
    if (item.lane !== undefined && !LANE.test(item.lane)) throw new Error(`spool lane must be lowercase letters, got ${JSON.stringify(item.lane)}`);
    const slot = this.written(this.nextSeq++, item, true);
    if (this.options.diskOnly) {
      // Every item then waits in `spilled`, in order; one whose write failed keeps its only copy there.
      if (slot.file) slot.item = undefined;
      this.spilled.push(slot);
    } else {
      this.resident.push(slot);
    }
    if (slot.item) {
      this.entries += item.entries;
      this.bytes += item.bytes;
    }
    this.updateGauges();
  }

  /** A slot for `item` under `seq`, its file written when there is room (after deleting the oldest, if `makeRoom`). */
  private written(seq: number, item: T, makeRoom: boolean): Slot<T> {
    const parts = encodeSpoolRecord(this.codec.encode(item));
    const size = parts.reduce((n, p) => n + p.length, 0);
    if (makeRoom) this.makeRoom(blocks(size));
    let file: string | undefined;
    if (this.diskBytes + blocks(size) <= this.options.maxBytes) file = this.write(seq, item, parts, size);
    else this.writeFailed(item, "no room: the spool is taken up by batches in flight");
    const slot: Slot<T> = { seq, entries: item.entries, bytes: item.bytes, lane: item.lane, diskBytes: file ? blocks(size) : 0, file, item, createdAtMs: item.createdAtMs, previousRun: false };
    if (file) this.store(slot);
    return slot;
  }

  /** Deletes the oldest queued items until `needed` more bytes fit, counting their entries as dropped. */
  private makeRoom(needed: number): void {
    let lost = 0;
    let lostBatches = 0;
    for (const run of [this.spilled, this.resident]) {
      for (let i = 0; this.diskBytes + needed > this.options.maxBytes && i < run.length; ) {
        const slot = run[i] as Slot<T>;
        // An item kept in memory only (its write failed) frees no disk; it goes out when taken.
        if (!slot.file) {
          i++;
          continue;
        }
        run.splice(i, 1);
        if (slot.item && run === this.resident) {
          this.entries -= slot.entries;
          this.bytes -= slot.bytes;
        }
        this.unstore(slot);
        lost += slot.entries;
        lostBatches++;
      }
    }
    if (lost > 0) {
      this.hooks.onDropped("full", lost);
      const since = this.fullLog.note(Date.now(), { batches: lostBatches, entries: lost });
      if (since) this.log.warn(`${this.naming.log} full: deleted the oldest queued batches`, { batches: since.batches, entries: since.entries, max_bytes: this.options.maxBytes });
    }
  }

  private write(seq: number, item: T, parts: Buffer[], size: number): string | undefined {
    const name = `${String(seq).padStart(16, "0")}-e${item.entries}-b${item.bytes}-s${size}${item.lane === undefined ? "" : `-l${item.lane}`}.batch`;
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
      this.writeFailed(item, (error as Error).message);
      return undefined;
    }
  }

  private writeFailed(item: T, reason: string): void {
    this.metrics.writeErrors.inc();
    const since = this.writeErrorLog.note(Date.now());
    if (since) this.log.error(`${this.naming.log}: could not write a batch; it is kept in memory only and lost if the ${this.naming.each} stops`, { entries: item.entries, reason, failed_writes: since.times });
  }

  /** The oldest queued item (of `lane`, when given), which is now in flight; undefined when none is queued. */
  shift(lane?: string): T | undefined {
    for (let slot = this.take(this.spilled, lane); slot; slot = this.take(this.spilled, lane)) {
      // One kept in memory only (its write failed) is counted already; one on disk only comes back into memory.
      if (!slot.item) {
        const item = this.readBack(slot);
        if (!item) continue;
        this.spillOldest(this.bytes + slot.bytes - (this.options.maxMemoryBytes ?? Number.POSITIVE_INFINITY));
        slot.item = item;
        this.entries += slot.entries;
        this.bytes += slot.bytes;
      }
      this.inFlight.set(slot.item, slot);
      return slot.item;
    }
    const slot = this.take(this.resident, lane);
    if (!slot?.item) return undefined;
    this.inFlight.set(slot.item, slot);
    return slot.item;
  }

  private take(run: Slot<T>[], lane: string | undefined): Slot<T> | undefined {
    if (lane === undefined) return run.shift();
    const at = run.findIndex((s) => s.lane === lane);
    return at === -1 ? undefined : run.splice(at, 1)[0];
  }

  private readBack(slot: Slot<T>): T | undefined {
    try {
      const { header, body } = decodeSpoolRecord(readFileSync(slot.file as string));
      const item = this.codec.decode(header, body);
      this.metrics.replayedBatches.inc();
      this.metrics.replayedEntries.inc(slot.entries);
      return item;
    } catch (error) {
      this.log.error(`${this.naming.log}: a batch file is damaged; its entries are lost`, { file: slot.file, entries: slot.entries, error: (error as Error).message });
      this.hooks.onDropped("corrupt", slot.entries);
      this.unstore(slot);
      this.updateGauges();
      if (slot.previousRun) this.replayProgress(slot);
      return undefined;
    }
  }

  private inFlightSlot(item: T): Slot<T> {
    const slot = this.inFlight.get(item);
    if (!slot) throw new Error("batch settled but not in flight");
    this.inFlight.delete(item);
    this.entries -= slot.entries;
    this.bytes -= slot.bytes;
    return slot;
  }

  /** The taker is done with an in-flight item; it stops counting, and its file is deleted when done. */
  settle(item: T, how: SpoolSettlement): void {
    const slot = this.inFlightSlot(item);
    // Unfinished at a stop: the file stays for the next start.
    if (how === "done") {
      this.unstore(slot);
      if (slot.previousRun) this.replayProgress(slot);
    }
    this.updateGauges();
  }

  /**
   * The taker delivered part of an in-flight item: `rest`, what it did not, replaces it at the head of its queue,
   * on disk under the same sequence number, so neither a restart nor the next shift repeats the delivered part.
   */
  requeue(item: T, rest: T): void {
    const old = this.inFlightSlot(item);
    const slot = this.written(old.seq, rest, false);
    // Written under the same sequence number first, then the old file goes: a crash in between repeats, never loses.
    this.unstore(old);
    if (!slot.file) slot.item = rest;
    else slot.item = undefined;
    const at = this.spilled.findIndex((s) => s.seq > slot.seq);
    this.spilled.splice(at === -1 ? this.spilled.length : at, 0, slot);
    if (slot.item) {
      this.entries += slot.entries;
      this.bytes += slot.bytes;
    }
    this.updateGauges();
  }

  /** Counts an item of the previous run as done (delivered, refused or damaged) and logs progress now and then. */
  private replayProgress(slot: Slot<T>): void {
    const r = this.replay;
    r.done++;
    r.doneEntries += slot.entries;
    const now = Date.now();
    if (r.done === r.batches) {
      this.log.info(`${this.naming.log}: the previous run's batches are delivered`, { batches: r.batches, entries: r.entries, seconds: Math.round((now - r.startedMs) / 100) / 10 });
    } else if (now - r.loggedMs >= PROGRESS_INTERVAL_MS) {
      r.loggedMs = now;
      this.log.info(`${this.naming.log}: delivering the previous run's batches`, {
        done_batches: r.done,
        of_batches: r.batches,
        done_entries: r.doneEntries,
        of_entries: r.entries,
        percent: Math.floor((100 * r.done) / r.batches),
      });
    }
  }

  /** Frees memory from the oldest resident items, which stay queued on disk; returns those lost doing so (not on disk). */
  shed(bytes: number): T[] {
    const lost: T[] = [];
    this.spillOldest(bytes, lost);
    return lost;
  }

  /**
   * Moves the oldest resident items to disk only until `bytes` are freed. One that is not on disk (its write failed)
   * is released into `lost` when given, as in a memory-only queue; otherwise it stays and so do the ones after it.
   */
  private spillOldest(bytes: number, lost?: T[]): void {
    let freed = 0;
    while (freed < bytes) {
      const slot = this.resident[0];
      if (!slot?.item || (!slot.file && !lost)) break;
      this.resident.shift();
      freed += slot.bytes;
      this.entries -= slot.entries;
      this.bytes -= slot.bytes;
      if (slot.file) {
        slot.item = undefined;
        this.spilled.push(slot);
        this.metrics.spilled.inc();
      } else {
        lost?.push(slot.item);
      }
    }
  }

  /** At a stop, queued items stay on disk for the next start; only those the spool could not write are lost. */
  drain(): T[] {
    const lost = [...this.spilled, ...this.resident].filter((s) => !s.file && s.item).map((s) => s.item as T);
    this.spilled.length = 0;
    this.resident.length = 0;
    return lost;
  }

  /** Releases the directory; the files stay. */
  close(): void {
    if (this.dirFd !== undefined) closeSync(this.dirFd);
    this.dirFd = undefined;
    this.lock.release();
  }

  /** Why the directory's lock was lost (another process may use the directory), or undefined while it is held. */
  get lockLost(): string | undefined {
    return this.lock.lost;
  }
}
