import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

const PREFIX = "aixcl_log_consumer_";

/** Reasons entries are dropped by the consumer itself; Loki's own refusal reasons (from 400 bodies) join them. */
export const DROP_REASONS = {
  /** The in-memory buffer was full: the oldest queued batch (or the new entry) went. */
  bufferFull: "buffer_full",
  /** An entry larger than a whole batch. */
  entryTooLarge: "entry_too_large",
  /** 429/5xx/connection errors outlasted max_retries. */
  retriesExhausted: "retries_exhausted",
  /** Not delivered when the shutdown flush deadline passed. */
  shutdown: "shutdown",
  /** A bug in the consumer; the log has the stack. */
  internalError: "internal_error",
} as const;

/** Live values read at scrape time rather than updated on every entry. */
export interface GaugeSources {
  bufferEntries(): number;
  bufferBytes(): number;
  pushesInFlight(): number;
}

export function createMetrics(sources: GaugeSources, registry: Registry = new Registry()) {
  collectDefaultMetrics({ register: registry });
  const opts = { registers: [registry] };
  return {
    registry,
    received: new Counter({ name: `${PREFIX}messages_received_total`, help: "Messages received from the bus.", ...opts }),
    decoded: new Counter({ name: `${PREFIX}entries_decoded_total`, help: "Messages decoded into log entries.", ...opts }),
    decodeErrors: new Counter({
      name: `${PREFIX}decode_errors_total`,
      help: "Messages that could not be decoded, by reason; they are skipped.",
      labelNames: ["reason"],
      ...opts,
    }),
    pushedEntries: new Counter({ name: `${PREFIX}entries_pushed_total`, help: "Entries Loki accepted.", ...opts }),
    pushedBytes: new Counter({
      name: `${PREFIX}bytes_pushed_total`,
      help: "Bytes of entries Loki accepted (line and structured metadata, before compression).",
      ...opts,
    }),
    pushDuration: new Histogram({
      name: `${PREFIX}push_duration_seconds`,
      help: "Duration of push attempts, by HTTP status code (or 'error').",
      labelNames: ["status_code"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      ...opts,
    }),
    retries: new Counter({
      name: `${PREFIX}push_retries_total`,
      help: "Push attempts that will be retried, by reason.",
      labelNames: ["reason"],
      ...opts,
    }),
    dropped: new Counter({
      name: `${PREFIX}dropped_entries_total`,
      help: "Entries that will never reach Loki, by reason (consumer reasons and Loki's own refusal reasons).",
      labelNames: ["reason"],
      ...opts,
    }),
    bufferEntries: new Gauge({
      name: `${PREFIX}buffer_entries`,
      help: "Entries buffered in memory (batching, queued, in flight).",
      collect() {
        this.set(sources.bufferEntries());
      },
      ...opts,
    }),
    bufferBytes: new Gauge({
      name: `${PREFIX}buffer_bytes`,
      help: "Bytes buffered in memory (batching, queued, in flight).",
      collect() {
        this.set(sources.bufferBytes());
      },
      ...opts,
    }),
    bufferLimitBytes: new Gauge({ name: `${PREFIX}buffer_limit_bytes`, help: "Configured buffer.max_bytes.", ...opts }),
    inFlight: new Gauge({
      name: `${PREFIX}pushes_in_flight`,
      help: "Batches being pushed or waiting to retry.",
      collect() {
        this.set(sources.pushesInFlight());
      },
      ...opts,
    }),
    lokiAuthRefused: new Gauge({
      name: `${PREFIX}loki_auth_refused`,
      help: "1 while Loki refuses the consumer's credentials or tenant id (its last answer was 401 or 403): batches are kept and retried.",
      ...opts,
    }),
    lastSuccess: new Gauge({
      name: `${PREFIX}last_successful_push_timestamp_seconds`,
      help: "Unix time of the last push Loki accepted (0 = none yet).",
      ...opts,
    }),
  };
}

export type ConsumerMetrics = ReturnType<typeof createMetrics>;
