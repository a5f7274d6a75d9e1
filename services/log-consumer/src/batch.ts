import type { LokiEntry, StreamKey } from "./mapping.js";

export interface BatchStream {
  readonly key: StreamKey;
  readonly entries: LokiEntry[];
}

/** One push request's worth of entries, grouped by stream. Immutable once the batcher hands it out. */
export interface Batch {
  /** Increasing per process; identifies the batch in logs (and, later, in the spool). */
  readonly id: number;
  readonly streams: ReadonlyMap<string, BatchStream>;
  readonly entries: number;
  readonly bytes: number;
  /** When its first entry arrived (ms since epoch). */
  readonly createdAtMs: number;
}

export interface BatcherOptions {
  /** Close a batch before it would exceed this many bytes (Promtail's batchsize, default 1 MiB). */
  maxBytes: number;
  /** Close a batch once its first entry is this old (Promtail's batchwait, default 1 s). */
  maxWaitMs: number;
}

class OpenBatch {
  readonly streams = new Map<string, BatchStream>();
  entries = 0;
  bytes = 0;

  constructor(
    readonly id: number,
    readonly createdAtMs: number,
  ) {}

  add(entry: LokiEntry): void {
    let stream = this.streams.get(entry.stream.text);
    if (!stream) {
      stream = { key: entry.stream, entries: [] };
      this.streams.set(entry.stream.text, stream);
    }
    stream.entries.push(entry);
    this.entries++;
    this.bytes += entry.bytes;
  }

  close(): Batch {
    return { id: this.id, streams: this.streams, entries: this.entries, bytes: this.bytes, createdAtMs: this.createdAtMs };
  }
}

/** Groups entries into batches closed by size or age. Pure: the caller supplies the clock. */
export class Batcher {
  private open: OpenBatch | undefined;
  private nextId = 1;

  constructor(private readonly options: BatcherOptions) {}

  /** Bytes held in the batch still being filled. */
  get bytes(): number {
    return this.open?.bytes ?? 0;
  }

  get entries(): number {
    return this.open?.entries ?? 0;
  }

  /**
   * Adds an entry. When it does not fit the open batch, that batch is closed and returned and the entry
   * starts a new one. A single entry larger than maxBytes gets a batch of its own.
   */
  add(entry: LokiEntry, nowMs: number): Batch | undefined {
    let closed: Batch | undefined;
    if (this.open && this.open.bytes + entry.bytes > this.options.maxBytes) closed = this.flush();
    this.open ??= new OpenBatch(this.nextId++, nowMs);
    this.open.add(entry);
    return closed;
  }

  /** Closes and returns the open batch when its first entry has waited maxWaitMs. */
  poll(nowMs: number): Batch | undefined {
    return this.open && nowMs - this.open.createdAtMs >= this.options.maxWaitMs ? this.flush() : undefined;
  }

  /** When the open batch will be due, for scheduling the next poll. */
  dueAtMs(): number | undefined {
    return this.open ? this.open.createdAtMs + this.options.maxWaitMs : undefined;
  }

  flush(): Batch | undefined {
    const batch = this.open?.close();
    this.open = undefined;
    return batch;
  }
}
