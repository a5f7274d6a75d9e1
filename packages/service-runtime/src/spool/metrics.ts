import type { Registry } from "prom-client";
import { Counter, Gauge } from "prom-client";

/** A spool's own metrics, named `<prefix>spool_*` (the consumer's are aixcl_log_consumer_spool_*). */
export function createSpoolMetrics(registry: Registry, prefix: string) {
  const opts = { registers: [registry] };
  return {
    bytes: new Gauge({ name: `${prefix}spool_bytes`, help: "Disk used by the spool (batch files, counted in 4 KiB blocks).", ...opts }),
    limitBytes: new Gauge({ name: `${prefix}spool_limit_bytes`, help: "Configured maximum disk use of the spool.", ...opts }),
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
