import { compressSync } from "snappy";
import type { Batch } from "./batch.js";
import type { LabelPair } from "./labels.js";
import type { StreamKey } from "./mapping.js";

export type PushEncoding = "protobuf" | "json";

export interface EncodedPush {
  readonly body: Uint8Array;
  readonly contentType: string;
}

const NS_PER_SECOND = 1_000_000_000n;

// Tags (field number << 3 | wire type) of logproto.PushRequest and its parts, as declared in proto/push.proto.
const TAG_STREAMS = (1 << 3) | 2; // PushRequest.streams
const TAG_LABELS = (1 << 3) | 2; // StreamAdapter.labels
const TAG_ENTRIES = (2 << 3) | 2; // StreamAdapter.entries
const TAG_TIMESTAMP = (1 << 3) | 2; // EntryAdapter.timestamp
const TAG_LINE = (2 << 3) | 2; // EntryAdapter.line
const TAG_METADATA = (3 << 3) | 2; // EntryAdapter.structuredMetadata
const TAG_SECONDS = (1 << 3) | 0; // google.protobuf.Timestamp.seconds
const TAG_NANOS = (2 << 3) | 0; // google.protobuf.Timestamp.nanos
const TAG_NAME = (1 << 3) | 2; // LabelPairAdapter.name
const TAG_VALUE = (2 << 3) | 2; // LabelPairAdapter.value

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Buffer's own UTF-8 writer, without write()'s argument handling (undeclared in @types/node). */
const utf8Write = (Buffer.prototype as unknown as { utf8Write?: (this: Buffer, text: string, offset: number, length: number) => number }).utf8Write ??
  function (this: Buffer, text: string, offset: number, length: number) {
    return this.write(text, offset, length, "utf8");
  };

/** An entry's timestamp as protobuf wants it, split without a bigint division for entries of the same second. */
class TimestampSplitter {
  private secondsNs = -1n;
  private seconds = 0;
  nanos = 0;

  split(ns: bigint): number {
    let offset = ns - this.secondsNs;
    if (offset < 0n || offset >= NS_PER_SECOND) {
      this.seconds = Number(ns / NS_PER_SECOND);
      this.secondsNs = BigInt(this.seconds) * NS_PER_SECOND;
      offset = ns - this.secondsNs;
    }
    this.nanos = Number(offset);
    return this.seconds;
  }
}

/**
 * Writes protobuf into one buffer sized in advance. Every size is known before writing: the mapper measured
 * each string's UTF-8 length (LokiEntry.sizes) and label names are ASCII.
 */
class ProtoWriter {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  /** A string of `size` UTF-8 bytes; short ASCII ones are copied in JS, cheaper than a call into C++. */
  string(tag: number, text: string, size: number): void {
    this.buf[this.pos++] = tag;
    this.varint(size);
    if (size === text.length && size <= 16) {
      for (let i = 0; i < size; i++) this.buf[this.pos + i] = text.charCodeAt(i);
    } else {
      utf8Write.call(this.buf, text, this.pos, size);
    }
    this.pos += size;
  }
}

function timestampSize(seconds: number, nanos: number): number {
  return (seconds === 0 ? 0 : 1 + varintSize(seconds)) + (nanos === 0 ? 0 : 1 + varintSize(nanos));
}

function pairSize(name: string, size: number): number {
  return 1 + varintSize(name.length) + name.length + 1 + varintSize(size) + size;
}

/** UTF-8 size of each stream's label text, by text. */
const labelSizes = new Map<string, number>();

function labelSize(text: string): number {
  let size = labelSizes.get(text);
  if (size === undefined) {
    size = Buffer.byteLength(text);
    if (labelSizes.size >= 10_000) labelSizes.clear();
    labelSizes.set(text, size);
  }
  return size;
}

/** PushRequest for a batch, written by hand: no message objects, one buffer, each size computed once. */
function encodePushRequest(batch: Batch): Buffer {
  const time = new TimestampSplitter();
  // Pass 1: sizes. Per entry its timestamp and size are kept for pass 2, in batch order.
  const seconds = new Float64Array(batch.entries);
  const nanos = new Float64Array(batch.entries);
  const entrySizes = new Float64Array(batch.entries);
  const streamSizes: number[] = [];
  let total = 0;
  let i = 0;
  for (const stream of batch.streams.values()) {
    const labels = labelSize(stream.key.text);
    let streamSize = 1 + varintSize(labels) + labels;
    for (const entry of stream.entries) {
      const s = time.split(entry.timestampNs);
      const ts = timestampSize(s, time.nanos);
      const lineSize = entry.sizes[0] as number;
      let size = 1 + varintSize(ts) + ts + (lineSize === 0 ? 0 : 1 + varintSize(lineSize) + lineSize);
      for (let m = 0; m < entry.metadata.length; m++) {
        const pair = pairSize((entry.metadata[m] as LabelPair)[0], entry.sizes[m + 1] as number);
        size += 1 + varintSize(pair) + pair;
      }
      seconds[i] = s;
      nanos[i] = time.nanos;
      entrySizes[i++] = size;
      streamSize += 1 + varintSize(size) + size;
    }
    streamSizes.push(streamSize);
    total += 1 + varintSize(streamSize) + streamSize;
  }
  // Pass 2: write.
  const w = new ProtoWriter(Buffer.allocUnsafe(total));
  i = 0;
  let k = 0;
  for (const stream of batch.streams.values()) {
    w.byte(TAG_STREAMS);
    w.varint(streamSizes[k++] as number);
    w.string(TAG_LABELS, stream.key.text, labelSize(stream.key.text));
    for (const entry of stream.entries) {
      w.byte(TAG_ENTRIES);
      w.varint(entrySizes[i] as number);
      const s = seconds[i] as number;
      const n = nanos[i++] as number;
      w.byte(TAG_TIMESTAMP);
      w.varint(timestampSize(s, n));
      if (s !== 0) {
        w.byte(TAG_SECONDS);
        w.varint(s);
      }
      if (n !== 0) {
        w.byte(TAG_NANOS);
        w.varint(n);
      }
      const lineSize = entry.sizes[0] as number;
      if (lineSize !== 0) w.string(TAG_LINE, entry.line, lineSize);
      for (let m = 0; m < entry.metadata.length; m++) {
        const [name, value] = entry.metadata[m] as LabelPair;
        const size = entry.sizes[m + 1] as number;
        w.byte(TAG_METADATA);
        w.varint(pairSize(name, size));
        w.string(TAG_NAME, name, name.length);
        w.string(TAG_VALUE, value, size);
      }
    }
  }
  if (w.pos !== total) throw new Error(`push encoding wrote ${w.pos} bytes, sized ${total}`);
  return w.buf;
}

/**
 * Loki's default push body: protobuf PushRequest, snappy-compressed in the raw block format (not the framing
 * format, which is what snappy's stream APIs write). snappy compresses at several hundred MB/s, so it runs inline.
 */
export function encodeProtobuf(batch: Batch): EncodedPush {
  return { body: compressSync(encodePushRequest(batch)), contentType: "application/x-protobuf" };
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
