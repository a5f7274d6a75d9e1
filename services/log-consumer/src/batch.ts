import type { PushBuilder, SealedBatch, StreamSummary } from "./encode.js";
import type { LokiEntry, StreamKey } from "./mapping.js";

export interface BatcherOptions {
  /** Close a batch before it would exceed this many bytes (Promtail's batchsize, default 1 MiB). */
  maxBytes: number;
  /** Close a batch once its first entry is this old (Promtail's batchwait, default 1 s). */
  maxWaitMs: number;
}

/** A stream of the open batch: its ordinal (order of first appearance) and how many entries it has. */
interface OpenStream {
  readonly key: StreamKey;
  readonly ordinal: number;
  entries: number;
}

class OpenBatch {
  readonly streams = new Map<string, OpenStream>();
  entries = 0;
  bytes = 0;

  constructor(
    readonly id: number,
    readonly createdAtMs: number,
    private readonly builder: PushBuilder,
  ) {}

  add(entry: LokiEntry): void {
    let stream = this.streams.get(entry.stream.text);
    if (!stream) {
      stream = { key: entry.stream, ordinal: this.streams.size, entries: 0 };
      this.streams.set(entry.stream.text, stream);
    }
    this.builder.add(stream.ordinal, entry);
    stream.entries++;
    this.entries++;
    this.bytes += entry.bytes;
  }

  seal(compress: boolean): SealedBatch {
    const streams: StreamSummary[] = Array.from(this.streams.values(), (s) => ({ key: s.key, entries: s.entries }));
    const push = this.builder.build(streams.map((s) => s.key), compress);
    return { id: this.id, entries: this.entries, bytes: this.bytes, createdAtMs: this.createdAtMs, streams, push };
  }
}

/**
 * Groups entries into batches closed by size or age, each encoded by `builder` as its entries arrive and
 * compressed when `compress()` says so as it closes. Pure: the caller supplies the clock.
 */
export class Batcher {
  private open: OpenBatch | undefined;
  private nextId = 1;

  constructor(
    private readonly options: BatcherOptions,
    private readonly builder: PushBuilder,
    private readonly compress: () => boolean,
  ) {}

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
  add(entry: LokiEntry, nowMs: number): SealedBatch | undefined {
    let closed: SealedBatch | undefined;
    if (this.open && this.open.bytes + entry.bytes > this.options.maxBytes) closed = this.flush();
    this.open ??= new OpenBatch(this.nextId++, nowMs, this.builder);
    this.open.add(entry);
    return closed;
  }

  /** Closes and returns the open batch when its first entry has waited maxWaitMs. */
  poll(nowMs: number): SealedBatch | undefined {
    return this.open && nowMs - this.open.createdAtMs >= this.options.maxWaitMs ? this.flush() : undefined;
  }

  /** When the open batch will be due, for scheduling the next poll. */
  dueAtMs(): number | undefined {
    return this.open ? this.open.createdAtMs + this.options.maxWaitMs : undefined;
  }

  flush(): SealedBatch | undefined {
    const batch = this.open?.seal(this.compress());
    this.open = undefined;
    return batch;
  }
}
