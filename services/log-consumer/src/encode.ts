import protobuf from "protobufjs";
import { compressSync } from "snappy";
import type { Batch } from "./batch.js";
import type { StreamKey } from "./mapping.js";

export type PushEncoding = "protobuf" | "json";

export interface EncodedPush {
  readonly body: Uint8Array;
  readonly contentType: string;
}

/** Folder holding push.proto; the same relative path from src/ and dist/. */
const PROTO_DIR = new URL("../proto/", import.meta.url);
const root = new protobuf.Root();
// google/protobuf/timestamp.proto resolves from protobufjs' bundled copy.
root.loadSync(new URL("push.proto", PROTO_DIR).pathname);
export const PushRequestType = root.lookupType("logproto.PushRequest");

const NS_PER_SECOND = 1_000_000_000n;

/** The PushRequest for a batch as a plain object (what protobufjs encodes). */
function pushRequest(batch: Batch) {
  return {
    streams: Array.from(batch.streams.values(), (stream) => ({
      labels: stream.key.text,
      entries: stream.entries.map((entry) => ({
        timestamp: { seconds: Number(entry.timestampNs / NS_PER_SECOND), nanos: Number(entry.timestampNs % NS_PER_SECOND) },
        line: entry.line,
        structuredMetadata: entry.metadata.map(([name, value]) => ({ name, value })),
      })),
    })),
  };
}

/**
 * Loki's default push body: protobuf PushRequest, snappy-compressed in the raw block format (not the framing
 * format, which is what snappy's stream APIs write). snappy compresses at several hundred MB/s, so it runs inline.
 */
export function encodeProtobuf(batch: Batch): EncodedPush {
  const raw = PushRequestType.encode(pushRequest(batch)).finish();
  return { body: compressSync(raw), contentType: "application/x-protobuf" };
}

/** The JSON push body: values are [ns timestamp as string, line, structured metadata object]. */
export function encodeJson(batch: Batch): EncodedPush {
  const streams = Array.from(batch.streams.values(), (stream) => ({
    stream: Object.fromEntries(stream.key.labels),
    values: stream.entries.map((entry) =>
      entry.metadata.length === 0
        ? [entry.timestampNs.toString(), entry.line]
        : [entry.timestampNs.toString(), entry.line, Object.fromEntries(entry.metadata)],
    ),
  }));
  return { body: Buffer.from(JSON.stringify({ streams })), contentType: "application/json" };
}

export interface StreamSummary {
  readonly key: StreamKey;
  readonly entries: number;
}

/**
 * A closed batch as it waits to be sent: the push body, plus the per-stream counts that reading a 400 needs.
 * Entries are encoded once, when the batch closes, so a waiting batch costs its compressed size in memory, not
 * its objects; the body is also exactly what a disk spool would store.
 */
export interface SealedBatch {
  readonly id: number;
  readonly entries: number;
  /** Size of the entries (line and metadata, uncompressed): what batch and buffer limits count. */
  readonly bytes: number;
  readonly createdAtMs: number;
  readonly streams: readonly StreamSummary[];
  readonly push: EncodedPush;
}

export function seal(batch: Batch, encoding: PushEncoding): SealedBatch {
  return {
    id: batch.id,
    entries: batch.entries,
    bytes: batch.bytes,
    createdAtMs: batch.createdAtMs,
    streams: Array.from(batch.streams.values(), (s) => ({ key: s.key, entries: s.entries.length })),
    push: encoding === "protobuf" ? encodeProtobuf(batch) : encodeJson(batch),
  };
}
