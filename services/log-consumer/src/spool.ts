import type { ServiceLog, SpoolCodec, SpoolMetrics, SpoolNaming, SpoolOptions } from "@aixcl/service-runtime";
import { FileSpool, createSpoolMetrics as createMetrics, decodeSpoolRecord, encodeSpoolRecord } from "@aixcl/service-runtime";
import type { Counter, Registry } from "prom-client";
import type { SealedBatch } from "./encode.js";
import type { BatchQueue } from "./queue.js";

/**
 * The consumer's durable queue: every closed batch is written to its own file in the spool directory (the shared
 * FileSpool, see its notes on the disk bound, CRC and fsync) before the sender can take it, and deleted once the
 * sender is done with it. So a file exists exactly while its batch is undelivered, and a restart (after a stop, a
 * crash or SIGKILL) sends what it finds, oldest first.
 *
 * Memory: only the newest batches keep their push body in memory (the pipeline's buffer.max_bytes); when it is
 * full, `shed` drops the in-memory copies of the oldest queued batches and they are read back from disk when
 * their turn comes (spilling the oldest still in memory if the read-back would pass the bound, maxMemoryBytes).
 * The file holds the batch's header (id, counts, content type, streams) as JSON and the push body exactly as it
 * is sent to Loki.
 */

export type { SpoolOptions, SpoolMetrics };
export { SpoolDirError } from "@aixcl/service-runtime";

/** Drop reasons of the spool (the consumer's dropped_entries_total{reason}). */
export const SPOOL_DROP_REASONS = {
  /** The spool reached spool.max_bytes: its oldest queued batches were deleted. */
  full: "spool_full",
  /** A spool file could not be read back or failed its checksum (disk error, power loss without fsync). */
  corrupt: "spool_corrupt",
} as const;

const NAMING: SpoolNaming = { key: "spool.dir", env: "LOG_CONSUMER_SPOOL_DIR", volume: "log-consumer-spool", owner: "log consumer", each: "consumer", log: "spool" };

interface Header {
  id: number;
  entries: number;
  bytes: number;
  createdAtMs: number;
  contentType: string;
  streams: { text: string; labels: [string, string][]; entries: number }[];
}

const batchCodec: SpoolCodec<SealedBatch> = {
  encode(batch) {
    const header: Header = {
      id: batch.id,
      entries: batch.entries,
      bytes: batch.bytes,
      createdAtMs: batch.createdAtMs,
      contentType: batch.push.contentType,
      streams: batch.streams.map((s) => ({ text: s.key.text, labels: [...s.key.labels], entries: s.entries })),
    };
    return { header, body: batch.push.body };
  },
  decode(raw, body) {
    const header = raw as Header;
    return {
      id: header.id,
      entries: header.entries,
      bytes: header.bytes,
      createdAtMs: header.createdAtMs,
      streams: header.streams.map((s) => ({ key: { text: s.text, labels: new Map(s.labels) }, entries: s.entries })),
      push: { body, contentType: header.contentType },
    };
  },
};

export function encodeSpoolFile(batch: SealedBatch): Buffer[] {
  return encodeSpoolRecord(batchCodec.encode(batch));
}

/** The batch stored in a spool file; throws with the reason when the file is damaged. */
export function decodeSpoolFile(data: Buffer): SealedBatch {
  const { header, body } = decodeSpoolRecord(data);
  return batchCodec.decode(header, body);
}

export function createSpoolMetrics(registry: Registry, prefix = "aixcl_log_consumer_"): SpoolMetrics {
  return createMetrics(registry, prefix);
}

export class Spool extends FileSpool<SealedBatch> implements BatchQueue {
  constructor(options: SpoolOptions, metrics: SpoolMetrics, dropped: Counter<"reason">, log: ServiceLog) {
    super(options, batchCodec, { metrics, log, naming: NAMING, onDropped: (reason, entries) => dropped.labels(SPOOL_DROP_REASONS[reason]).inc(entries) });
  }
}
