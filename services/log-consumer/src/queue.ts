import type { SealedBatch } from "./encode.js";

/**
 * The boundary between batching and sending: closed batches wait here until the sender takes them, and stay
 * accounted here while a push (and its retries) is under way.
 *
 * This is the seam for a durable spool: a disk-backed queue implements the same interface, with `shed` spilling
 * the oldest queued batches to disk instead of dropping them, and `settle` deleting a delivered batch from disk.
 */
export interface BatchQueue {
  /** Adds a closed batch at the back. */
  push(batch: SealedBatch): void;
  /** The oldest queued batch, which is now in flight; undefined when nothing is queued. */
  shift(): SealedBatch | undefined;
  /** The sender is done with an in-flight batch (delivered, rejected or given up): it stops counting. */
  settle(batch: SealedBatch): void;
  /**
   * Frees at least `bytes` of memory from queued (not in-flight) batches, oldest first. Returns the batches that
   * were dropped to do so; fewer bytes may be freed when not enough is queued.
   */
  shed(bytes: number): SealedBatch[];
  /** Everything still queued, oldest first, emptying the queue (shutdown accounting). */
  drain(): SealedBatch[];
  /** Entries and bytes in memory: queued plus in flight. */
  readonly entries: number;
  readonly bytes: number;
  readonly queuedBatches: number;
}

/** The in-memory queue. Its byte bound is enforced by the pipeline, which also counts the open batch. */
export class MemoryQueue implements BatchQueue {
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
