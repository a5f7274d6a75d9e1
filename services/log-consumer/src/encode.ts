import { ProtobufPushBuilder } from "./encode-protobuf.js";
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

export function pushBuilder(encoding: PushEncoding): PushBuilder {
  return encoding === "protobuf" ? new ProtobufPushBuilder() : new JsonPushBuilder();
}

type JsonValue = [string, string] | [string, string, Record<string, string>];

/** The JSON push body: values are [ns timestamp as string, line, structured metadata object]. */
class JsonPushBuilder implements PushBuilder {
  private values: JsonValue[][] = [];

  add(stream: number, entry: LokiEntry): void {
    const value: JsonValue =
      entry.metadata.length === 0 ? [entry.timestampNs.toString(), entry.line] : [entry.timestampNs.toString(), entry.line, Object.fromEntries(entry.metadata)];
    (this.values[stream] ??= []).push(value);
  }

  build(streams: readonly StreamKey[]): EncodedPush {
    const body = { streams: streams.map((key, k) => ({ stream: Object.fromEntries(key.labels), values: this.values[k] ?? [] })) };
    this.values = [];
    return { body: Buffer.from(JSON.stringify(body)), contentType: "application/json" };
  }
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
