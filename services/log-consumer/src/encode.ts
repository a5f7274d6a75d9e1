/** What an encoded push is; the encoders are encode-json.ts and encode-protobuf.ts, chosen by push-builder.ts. */
import type { LokiEntry, StreamKey } from "./mapping.js";

export type PushEncoding = "protobuf" | "json";
/**
 * When protobuf bodies are snappy-compressed: always, or only a batch closed while others wait to be pushed (Loki
 * slow or away: those batches may sit in the spool for long, where compressed they take a fraction of the room).
 */
export type PushCompression = "always" | "when_queued";

export interface EncodedPush {
  readonly body: Uint8Array;
  readonly contentType: string;
}

/**
 * Turns a batch's entries into a push body. Entries are given as they arrive, each with the ordinal of its stream
 * (0, 1, ... in order of first appearance); `build` writes the body for those streams and starts afresh.
 * `compress` applies to protobuf bodies (JSON bodies are sent as they are).
 */
export interface PushBuilder {
  add(stream: number, entry: LokiEntry): void;
  build(streams: readonly StreamKey[], compress: boolean): EncodedPush;
}

export interface StreamSummary {
  readonly key: StreamKey;
  readonly entries: number;
}

/**
 * A closed batch as it waits to be sent: the push body, plus the per-stream counts that reading a 400 needs.
 * Entries are encoded as they are added, so a waiting batch costs its body's size in memory, not its objects;
 * the body is also exactly what a disk spool stores.
 */
export interface SealedBatch {
  /** Increasing per process; identifies the batch in logs and in the spool. */
  readonly id: number;
  readonly entries: number;
  /** Size of the entries (line and metadata, uncompressed): what batch and buffer limits count. */
  readonly bytes: number;
  /** When its first entry arrived (ms since epoch). */
  readonly createdAtMs: number;
  readonly streams: readonly StreamSummary[];
  readonly push: EncodedPush;
}
