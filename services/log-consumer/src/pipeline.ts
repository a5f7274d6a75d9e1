import type { DecodeErrorReason, LogEntry } from "@aixcl/wire";
import { decodeLogBatch, decodeLogMessage, isBatchTopic } from "@aixcl/wire";
import { LogThrottle } from "@aixcl/client-logger";
import type { ServiceLog } from "@aixcl/service-runtime";
import { Batcher } from "./batch.js";
import type { PushCompression, PushEncoding, SealedBatch } from "./encode.js";
import { pushBuilder } from "./push-builder.js";
import type { EntryMapper } from "./mapping.js";
import type { ConsumerMetrics } from "./metrics.js";
import { DROP_REASONS } from "./metrics.js";
import type { BatchQueue } from "./queue.js";

export interface PipelineOptions {
  maxBatchBytes: number;
  maxBatchWaitMs: number;
  /** Bound on everything held in memory: the batch being filled, queued batches and batches in flight. */
  maxBufferBytes: number;
  encoding: PushEncoding;
  compress: PushCompression;
  /** Called when a batch was queued, so the sender can start it. */
  onBatch: () => void;
}

/**
 * Everything the receive loop does with a message, synchronously: decode, map to a Loki entry, make room within
 * the buffer bound, encode into the open batch, and queue a batch that closes. It never waits on anything, so the socket
 * is drained as fast as the CPU allows.
 */
export class Pipeline {
  private readonly batcher: Batcher;
  /** Decode failures are logged per reason, and buffer drops, at most once per 10 s each; the counters have every one. */
  private readonly decodeErrorLogs = new Map<string, LogThrottle>();
  private readonly bufferFullLog = new LogThrottle<"batches" | "entries" | "bytes">();

  constructor(
    private readonly mapper: EntryMapper,
    private readonly queue: BatchQueue,
    private readonly metrics: ConsumerMetrics,
    private readonly log: ServiceLog,
    private readonly options: PipelineOptions,
  ) {
    this.batcher = new Batcher({ maxBytes: options.maxBatchBytes, maxWaitMs: options.maxBatchWaitMs }, pushBuilder(options.encoding), () => options.compress === "always" || queue.queuedBatches > 0);
  }

  get bufferedBytes(): number {
    return this.batcher.bytes + this.queue.bytes;
  }

  get bufferedEntries(): number {
    return this.batcher.entries + this.queue.entries;
  }

  /** When the batch being filled is due to be closed by age, or undefined when none is open. */
  get dueAtMs(): number | undefined {
    return this.batcher.dueAtMs();
  }

  /** One bus message: a single entry (logs., logs/) or a batch of them (aixcl.batch.). */
  accept(frames: readonly Uint8Array[], nowMs: number): void {
    this.metrics.received.inc();
    this.nowMs = nowMs;
    const topic = frames[0];
    if (topic !== undefined && isBatchTopic(topic)) {
      decodeLogBatch(frames, this.acceptEntry, this.decodeFailed);
      return;
    }
    const decoded = decodeLogMessage(frames);
    if (!decoded.ok) this.decodeFailed(decoded.reason, decoded.detail);
    else this.acceptEntry(decoded.entry);
  }

  /** The time of the message being accepted (a batch's entries share it). */
  private nowMs = 0;

  private readonly decodeFailed = (reason: DecodeErrorReason, detail: string): void => {
    this.metrics.decodeErrors.labels(reason).inc();
    this.logDecodeError(reason, detail, this.nowMs);
  };

  private readonly acceptEntry = (decoded: LogEntry): void => {
    this.metrics.decoded.inc();
    const entry = this.mapper.map(decoded);
    if (entry.bytes > this.options.maxBatchBytes) {
      this.metrics.dropped.labels(DROP_REASONS.entryTooLarge).inc();
      this.log.warn("dropped an entry larger than batch.max_bytes", { bytes: entry.bytes, stream: entry.stream.text });
      return;
    }
    const excess = this.bufferedBytes + entry.bytes - this.options.maxBufferBytes;
    if (excess > 0) {
      // Oldest queued batches go first: during an outage the newest logs are the ones worth keeping.
      for (const batch of this.queue.shed(excess)) this.dropBatch(batch);
      if (this.bufferedBytes + entry.bytes > this.options.maxBufferBytes) {
        this.metrics.dropped.labels(DROP_REASONS.bufferFull).inc();
        return;
      }
    }
    this.enqueue(this.batcher.add(entry, this.nowMs));
  };

  /** Closes the open batch if it is old enough. */
  tick(nowMs: number): void {
    this.enqueue(this.batcher.poll(nowMs));
  }

  /** Closes the open batch whatever its age (shutdown). */
  flush(): void {
    this.enqueue(this.batcher.flush());
  }

  private enqueue(batch: SealedBatch | undefined): void {
    if (!batch) return;
    this.queue.push(batch);
    this.options.onBatch();
  }

  private dropBatch(batch: SealedBatch): void {
    this.metrics.dropped.labels(DROP_REASONS.bufferFull).inc(batch.entries);
    const since = this.bufferFullLog.note(this.nowMs, { batches: 1, entries: batch.entries, bytes: batch.bytes });
    if (since) this.log.warn("buffer full: dropped the oldest queued batches", { batches: since.batches, entries: since.entries, bytes: since.bytes });
  }

  private logDecodeError(reason: string, detail: string, nowMs: number): void {
    let throttle = this.decodeErrorLogs.get(reason);
    if (!throttle) this.decodeErrorLogs.set(reason, (throttle = new LogThrottle()));
    const since = throttle.note(nowMs);
    if (since) this.log.warn("skipped a message that could not be decoded", { reason, detail, messages: since.times });
  }
}
