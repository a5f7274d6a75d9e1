import type { ServiceLog, SpoolDropReason, SpoolMetrics } from "@aixcl/service-runtime";
import { FileSpool } from "@aixcl/service-runtime";
import type { Chunk } from "./chunk.js";
import { OpenChunk, chunkCodec, readMessage, restOf } from "./chunk.js";
import type { Lane, LaneName } from "./lanes.js";
import { LANE_INDEXES, LANES } from "./lanes.js";

/**
 * The log messages the broker holds while no subscriber takes their lane, oldest first, per lane. Messages are
 * packed into the lane's open chunk; a chunk is sealed when it reaches chunkBytes or sealAfterMs after its first
 * message (on disk, what a crash can lose), then queued in the store: in memory, or one file each in the shared
 * FileSpool. Bounded by maxBytes over all lanes: when full, the oldest queued chunks go, counted.
 *
 * Delivery: `peek(lane)` is the oldest undelivered message, the same until `delivered(lane)`; a chunk that is
 * partly delivered when the broker stops goes back to disk as what is left of it, so nothing is sent twice.
 */

/** What the backlog keeps its sealed chunks in: MemoryChunks, or a FileSpool of chunks. */
interface ChunkStore {
  push(chunk: Chunk): void;
  shift(lane: LaneName): Chunk | undefined;
  settle(chunk: Chunk, how: "done" | "unfinished"): void;
  requeue(chunk: Chunk, rest: Chunk): void;
  oldestQueuedAtMs(lane?: LaneName): number | undefined;
  /** Undelivered messages of sealed chunks, queued and in flight (whole chunks). */
  readonly storedEntries: number;
  /** What the bound counts: packed bytes in memory, block-rounded files on disk. */
  readonly usedBytes: number;
  close(): void;
}

/** Sealed chunks in memory, all lanes in one list in the order they were sealed. */
class MemoryChunks implements ChunkStore {
  private readonly queued: Chunk[] = [];
  private readonly inFlight = new Set<Chunk>();
  storedEntries = 0;
  usedBytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly onDropped: (reason: SpoolDropReason, entries: number) => void,
  ) {}

  push(chunk: Chunk): void {
    let lost = 0;
    while (this.queued.length > 0 && this.usedBytes + chunk.bytes > this.maxBytes) {
      const oldest = this.queued.shift() as Chunk;
      this.usedBytes -= oldest.bytes;
      this.storedEntries -= oldest.entries;
      lost += oldest.entries;
    }
    if (lost > 0) this.onDropped("full", lost);
    this.queued.push(chunk);
    this.usedBytes += chunk.bytes;
    this.storedEntries += chunk.entries;
  }

  shift(lane: LaneName): Chunk | undefined {
    const at = this.queued.findIndex((c) => c.lane === lane);
    if (at === -1) return undefined;
    const [chunk] = this.queued.splice(at, 1) as [Chunk];
    this.inFlight.add(chunk);
    return chunk;
  }

  settle(chunk: Chunk): void {
    if (!this.inFlight.delete(chunk)) throw new Error("chunk settled but not in flight");
    this.usedBytes -= chunk.bytes;
    this.storedEntries -= chunk.entries;
  }

  requeue(chunk: Chunk, rest: Chunk): void {
    this.settle(chunk);
    this.queued.unshift(rest);
    this.usedBytes += rest.bytes;
    this.storedEntries += rest.entries;
  }

  oldestQueuedAtMs(lane?: LaneName): number | undefined {
    return this.queued.find((c) => lane === undefined || c.lane === lane)?.createdAtMs;
  }

  close(): void {}
}

export interface BacklogOptions {
  /** Bound over all lanes: packed bytes in memory, or disk use (4 KiB blocks) with a directory. */
  maxBytes: number;
  /** Keep the backlog on disk here, so it survives a restart; "" keeps it in memory only. */
  dir: string;
  fsync: boolean;
  /** Largest sealed chunk (a chunk holds at least one message, however large). */
  chunkBytes: number;
  /**
   * Seal an open chunk this long after its first message: on disk this bounds what a crash loses; in memory it
   * lets an idle lane's messages take their turn when the oldest must go.
   */
  sealAfterMs: number;
}

export interface BacklogHooks {
  log: ServiceLog;
  /** Held messages lost, by reason (backlog_full, backlog_corrupt). */
  onDropped(reason: string, messages: number): void;
  /** The disk backlog's own metrics (aixcl_broker_backlog_spool_*), with a directory. */
  spoolMetrics?: SpoolMetrics;
}

/**
 * Where a lane's deliveries come from: the oldest chunk taken from the store, or, once the store has none of the
 * lane, the open chunk itself (no file written and read back for messages on their way out).
 */
interface Delivering {
  /** Undefined: the open chunk. */
  chunk: Chunk | undefined;
  offset: number;
  delivered: number;
  /** The message at offset once peeked: it stays the same until delivered, even when the open chunk it is read from is sealed. */
  next: Buffer[] | undefined;
  /** Where the message after `next` starts. */
  after: number;
}

export class Backlog {
  readonly durable: boolean;
  private readonly store: ChunkStore;
  private readonly open: readonly [OpenChunk, OpenChunk, OpenChunk];
  private readonly delivering: [Delivering | undefined, Delivering | undefined, Delivering | undefined] = [undefined, undefined, undefined];
  private sealTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly options: BacklogOptions,
    hooks: BacklogHooks,
  ) {
    // Room for the chunk and for the message that crosses its size (most are far below 64 KiB; a larger one grows it).
    const chunk = () => new OpenChunk(options.chunkBytes + 64 * 1024);
    this.open = [chunk(), chunk(), chunk()];
    const onDropped = (reason: SpoolDropReason, entries: number) => hooks.onDropped(`backlog_${reason}`, entries);
    this.durable = options.dir !== "";
    if (!this.durable) {
      this.store = new MemoryChunks(options.maxBytes, onDropped);
    } else {
      if (!hooks.spoolMetrics) throw new Error("a disk backlog needs its spool metrics");
      // On disk, the files are the backlog: memory keeps only the chunks being filled and forwarded.
      this.store = new FileSpool<Chunk>({ dir: options.dir, maxBytes: options.maxBytes, fsync: options.fsync, diskOnly: true }, chunkCodec, {
        metrics: hooks.spoolMetrics,
        log: hooks.log,
        onDropped,
        naming: { key: "broker.backlog.dir", env: "MESSAGE_BUS_BACKLOG_DIR", volume: "broker-backlog", owner: "broker", each: "broker", log: "backlog" },
      });
    }
  }

  /** Keeps a message for the lane's next subscriber. */
  hold(lane: Lane, frames: readonly Uint8Array[], nowMs = Date.now()): void {
    const open = this.open[lane];
    open.append(frames, nowMs);
    if (open.length >= this.options.chunkBytes) this.seal(lane);
    else if (open.entries === 1) this.armSealTimer();
  }

  /**
   * Queues what is undelivered of the open chunk in the store. A message peeked from it and still on its way (a
   * stalled subscriber's queue is full) stays the next one, now read from the chunk just sealed: the open chunk
   * must be sealed at its size even then, or it grows past the bound for as long as the subscriber stalls.
   */
  private seal(lane: Lane, olderFirst = true): void {
    const open = this.open[lane];
    const d = this.delivering[lane];
    const fromOpen = d !== undefined && d.chunk === undefined;
    const offset = fromOpen ? d.offset : 0;
    const skipped = fromOpen ? d.delivered : 0;
    if (fromOpen) this.delivering[lane] = undefined;
    if (open.entries - skipped === 0) {
      open.clear();
      return;
    }
    // When this chunk makes the oldest go, the other lanes' open chunks, if older, are queued first to go before it.
    if (olderFirst && this.store.usedBytes + open.length - offset + 4096 > this.options.maxBytes) {
      for (const other of LANE_INDEXES) {
        const chunk = this.open[other];
        if (other !== lane && chunk.entries > 0 && chunk.createdAtMs <= open.createdAtMs) this.seal(other, false);
      }
    }
    this.store.push(open.seal(LANES[lane], offset, skipped));
    if (fromOpen && d.next) {
      // Reading from the open chunk means the store held none of the lane: the chunk just queued is its oldest.
      // None comes back only when the disk could not give back the file just written (counted as corrupt).
      const chunk = this.store.shift(LANES[lane]);
      if (chunk) this.delivering[lane] = { chunk, offset: 0, delivered: 0, next: d.next, after: d.after - offset };
    }
  }

  private armSealTimer(): void {
    if (this.sealTimer || this.closed) return;
    this.sealTimer = setTimeout(() => {
      this.sealTimer = undefined;
      const now = Date.now();
      for (const lane of LANE_INDEXES) {
        const open = this.open[lane];
        if (open.entries > 0 && now - open.createdAtMs >= this.options.sealAfterMs) this.seal(lane);
      }
      if (this.open.some((o) => o.entries > 0)) this.armSealTimer();
    }, this.options.sealAfterMs).unref();
  }

  /** The lane's oldest undelivered message; the same until delivered() is called. */
  peek(lane: Lane): Buffer[] | undefined {
    for (;;) {
      const d = this.delivering[lane];
      if (d?.next) return d.next;
      if (d?.chunk && d.offset < d.chunk.data.length) {
        ({ frames: d.next, next: d.after } = readMessage(d.chunk.data, d.offset));
        return d.next;
      }
      if (d?.chunk) {
        this.store.settle(d.chunk, "done");
        this.delivering[lane] = undefined;
        continue;
      }
      const open = this.open[lane];
      if (d) {
        // Reading the open chunk: what was appended since is next; all of it delivered, it starts afresh.
        if (d.offset < open.length) {
          ({ frames: d.next, next: d.after } = open.read(d.offset));
          return d.next;
        }
        open.clear();
        this.delivering[lane] = undefined;
        return undefined;
      }
      const chunk = this.store.shift(LANES[lane]);
      if (chunk) this.delivering[lane] = { chunk, offset: 0, delivered: 0, next: undefined, after: 0 };
      else if (open.entries > 0) this.delivering[lane] = { chunk: undefined, offset: 0, delivered: 0, next: undefined, after: 0 };
      else return undefined;
    }
  }

  /** The message peek() returned was sent. */
  delivered(lane: Lane): void {
    const d = this.delivering[lane];
    // Nothing peeked: the message's chunk was lost while it was on its way (counted), or the backlog closed.
    if (!d?.next) return;
    d.offset = d.after;
    d.delivered++;
    d.next = undefined;
    if (!d.chunk && this.open[lane].length >= this.options.chunkBytes) this.seal(lane);
  }

  /** Messages held, in all lanes. */
  get messages(): number {
    let n = this.store.storedEntries;
    for (const open of this.open) n += open.entries;
    for (const d of this.delivering) if (d) n -= d.delivered;
    return n;
  }

  /** Bytes held, as the bound counts them (plus the open chunks). */
  get bytes(): number {
    let bytes = this.store.usedBytes;
    for (const open of this.open) bytes += open.length;
    return bytes;
  }

  /** When the oldest held message was held (for an earlier run's file, when the file was written). */
  get oldestHeldAtMs(): number | undefined {
    let oldest: number | undefined;
    const consider = (ms: number | undefined) => {
      if (ms !== undefined && (oldest === undefined || ms < oldest)) oldest = ms;
    };
    for (const lane of LANE_INDEXES) {
      const d = this.delivering[lane];
      if (d?.chunk && d.offset < d.chunk.data.length) consider(d.chunk.createdAtMs);
      if (this.open[lane].entries > (d && !d.chunk ? d.delivered : 0)) consider(this.open[lane].createdAtMs);
    }
    consider(this.store.oldestQueuedAtMs());
    return oldest;
  }

  /**
   * At a stop: with a directory, what is partly delivered goes back as what is left of it and the open chunks are
   * written, so the next start has everything; in memory, what is held is lost. Returns the messages lost.
   */
  close(): number {
    this.closed = true;
    clearTimeout(this.sealTimer);
    const lost = this.durable ? 0 : this.messages;
    for (const lane of LANE_INDEXES) {
      const d = this.delivering[lane];
      if (d?.chunk) {
        if (d.offset >= d.chunk.data.length) this.store.settle(d.chunk, "done");
        else if (d.offset === 0) this.store.settle(d.chunk, "unfinished");
        else this.store.requeue(d.chunk, restOf(d.chunk, d.offset, d.chunk.entries - d.delivered));
        this.delivering[lane] = undefined;
      }
      if (d) d.next = undefined;
      if (this.durable) this.seal(lane);
    }
    this.store.close();
    return lost;
  }
}
