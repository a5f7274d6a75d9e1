import type { SealedBatch } from "./encode.js";

/** How the sender finished with an in-flight batch. */
export type Settlement =
  /** Delivered, refused by Loki, or given up on: the queue forgets it. */
  | "done"
  /** Not delivered because the consumer is stopping: a durable queue keeps it for the next start. */
  | "unfinished";

/**
 * The boundary between batching and sending: closed batches wait here until the sender takes them, and stay
 * accounted here while a push (and its retries) is under way. Two implementations: `MemoryQueue`, and the
 * durable `Spool` (spool.ts), which writes every batch to disk before the sender can take it.
 */
export interface BatchQueue {
  /** True when undelivered batches survive a stop or crash (then they are not counted as dropped at shutdown). */
  readonly durable: boolean;
  /** Adds a closed batch at the back. */
  push(batch: SealedBatch): void;
  /** The oldest queued batch, which is now in flight; undefined when nothing is queued. */
  shift(): SealedBatch | undefined;
  /** The sender is done with an in-flight batch; it stops counting (and, in a spool, is deleted when done). */
  settle(batch: SealedBatch, how: Settlement): void;
  /**
   * Frees at least `bytes` of memory from queued (not in-flight) batches, oldest first. Returns the batches that
   * are lost to do so (the spool returns none: their copy on disk stays queued); fewer bytes may be freed when
   * not enough is queued in memory.
   */
  shed(bytes: number): SealedBatch[];
  /** At shutdown: the queued batches that will be lost, emptying the queue of them (none for a spool). */
  drain(): SealedBatch[];
  /** Entries and bytes in memory: queued plus in flight. */
  readonly entries: number;
  readonly bytes: number;
  /** Batches waiting to be sent (in memory or only on disk). */
  readonly queuedBatches: number;
  /** Entries kept for the next start: everything not yet delivered, in a durable queue; 0 otherwise. */
  readonly storedEntries: number;
}

/** The in-memory queue. Its byte bound is enforced by the pipeline, which also counts the open batch. */
export class MemoryQueue implements BatchQueue {
  readonly durable = false;
  readonly storedEntries = 0;
  private readonly queued: SealedBatch[] = [];
  private readonly inFlight = new Set<SealedBatch>();
  entries = 0;
  bytes = 0;

  get queuedBatches(): number {
    return this.queued.length;
  }

  push(batch: SealedBatch): void {
    this.queued.push(batch);
    this.entries += batch.entries;
    this.bytes += batch.bytes;
  }

  shift(): SealedBatch | undefined {
    const batch = this.queued.shift();
    if (batch) this.inFlight.add(batch);
    return batch;
  }

  settle(batch: SealedBatch): void {
    if (!this.inFlight.delete(batch)) throw new Error(`batch ${batch.id} settled but not in flight`);
    this.entries -= batch.entries;
    this.bytes -= batch.bytes;
  }

  shed(bytes: number): SealedBatch[] {
    const dropped: SealedBatch[] = [];
    let freed = 0;
    while (freed < bytes) {
      const batch = this.queued.shift();
      if (!batch) break;
      this.entries -= batch.entries;
      this.bytes -= batch.bytes;
      freed += batch.bytes;
      dropped.push(batch);
    }
    return dropped;
  }

  drain(): SealedBatch[] {
    return this.shed(Number.POSITIVE_INFINITY);
  }
}
