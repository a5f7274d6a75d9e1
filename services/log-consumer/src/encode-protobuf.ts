import { varintSize } from "@aixcl/wire";
import type { EncodedPush, PushBuilder } from "./encode.js";
import type { LabelPair } from "./labels.js";
import type { LokiEntry, StreamKey } from "./mapping.js";
import { compressInto, hashTable, literalHeaderSize, maxCompressedLength, writeLiteralHeader } from "./snappy.js";

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

/** First size of the entry arena; it doubles as needed and is kept for the next batch. */
const INITIAL_ARENA_BYTES = 64 * 1024;
const INITIAL_ENTRY_SLOTS = 1024;

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
 * Writes protobuf into a buffer with room made in advance. Every size is known before writing: the mapper measured
 * each string's UTF-8 length (LokiEntry.sizes) and label names are ASCII.
 */
class ProtoWriter {
  pos = 0;
  constructor(public buf: Buffer) {}

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

function grown(array: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const bigger = new Int32Array(array.length * 2);
  bigger.set(array);
  return bigger;
}

/**
 * Loki's default push body: protobuf PushRequest in snappy's raw block format (not the framing format, which is what
 * snappy's stream APIs write); uncompressed, the block is one literal, valid snappy without compression work.
 * Each entry is written as its StreamAdapter.entries field the moment it is added, into one arena reused batch after
 * batch: an open batch holds bytes, not objects, so the entries' objects die young instead of outliving a scavenge
 * and being copied into the old generation (GC was a third of the consumer's time at 10,000 lines/s). At build, the
 * entries are copied out grouped by stream: straight into the body when it goes uncompressed, else into a scratch
 * buffer compressed into another (snappy.ts, ~330 MB/s, so inline), and only the compressed body is allocated.
 */
export class ProtobufPushBuilder implements PushBuilder {
  private readonly w = new ProtoWriter(Buffer.allocUnsafe(INITIAL_ARENA_BYTES));
  private request = Buffer.allocUnsafe(0);
  private compressed = Buffer.allocUnsafe(0);
  private readonly table = hashTable();
  private readonly time = new TimestampSplitter();
  /** Per entry: its stream's ordinal and where its bytes end in the arena (they start where the previous end). */
  private streamOf = new Int32Array(INITIAL_ENTRY_SLOTS);
  private endOf = new Int32Array(INITIAL_ENTRY_SLOTS);
  private count = 0;

  add(stream: number, entry: LokiEntry): void {
    const seconds = this.time.split(entry.timestampNs);
    const nanos = this.time.nanos;
    const ts = timestampSize(seconds, nanos);
    const lineSize = entry.sizes[0] as number;
    let size = 1 + varintSize(ts) + ts + (lineSize === 0 ? 0 : 1 + varintSize(lineSize) + lineSize);
    for (let m = 0; m < entry.metadata.length; m++) {
      const pair = pairSize((entry.metadata[m] as LabelPair)[0], entry.sizes[m + 1] as number);
      size += 1 + varintSize(pair) + pair;
    }
    const w = this.w;
    const start = w.pos;
    this.reserve(1 + varintSize(size) + size);
    w.byte(TAG_ENTRIES);
    w.varint(size);
    w.byte(TAG_TIMESTAMP);
    w.varint(ts);
    if (seconds !== 0) {
      w.byte(TAG_SECONDS);
      w.varint(seconds);
    }
    if (nanos !== 0) {
      w.byte(TAG_NANOS);
      w.varint(nanos);
    }
    if (lineSize !== 0) w.string(TAG_LINE, entry.line, lineSize);
    for (let m = 0; m < entry.metadata.length; m++) {
      const [name, value] = entry.metadata[m] as LabelPair;
      const valueSize = entry.sizes[m + 1] as number;
      w.byte(TAG_METADATA);
      w.varint(pairSize(name, valueSize));
      w.string(TAG_NAME, name, name.length);
      w.string(TAG_VALUE, value, valueSize);
    }
    if (w.pos - start !== 1 + varintSize(size) + size) throw new Error(`push encoding wrote ${w.pos - start} bytes for an entry sized ${size}`);
    if (this.count === this.endOf.length) {
      this.streamOf = grown(this.streamOf);
      this.endOf = grown(this.endOf);
    }
    this.streamOf[this.count] = stream;
    this.endOf[this.count++] = w.pos;
  }

  build(streams: readonly StreamKey[], compress: boolean): EncodedPush {
    // Each stream's StreamAdapter size: its labels, then its entries.
    const streamSizes = new Float64Array(streams.length);
    for (let k = 0; k < streams.length; k++) {
      const labels = labelSize((streams[k] as StreamKey).text);
      streamSizes[k] = 1 + varintSize(labels) + labels;
    }
    let start = 0;
    for (let i = 0; i < this.count; i++) {
      const end = this.endOf[i] as number;
      const k = this.streamOf[i] as number;
      streamSizes[k] = (streamSizes[k] as number) + end - start;
      start = end;
    }
    let total = 0;
    for (const size of streamSizes) total += 1 + varintSize(size) + size;
    // Uncompressed, the body is the literal's header and then the request, written in place; compressed, the
    // request is written to scratch first.
    const header = compress ? 0 : literalHeaderSize(total);
    if (compress && this.request.length < total) this.request = Buffer.allocUnsafe(total);
    const out = new ProtoWriter(compress ? this.request : Buffer.allocUnsafe(header + total));
    if (!compress) out.pos = writeLiteralHeader(out.buf, 0, total);
    // Where each stream's entries go: after its StreamAdapter header.
    const cursor = new Float64Array(streams.length);
    for (let k = 0; k < streams.length; k++) {
      const text = (streams[k] as StreamKey).text;
      const size = streamSizes[k] as number;
      out.byte(TAG_STREAMS);
      out.varint(size);
      const end = out.pos + size;
      out.string(TAG_LABELS, text, labelSize(text));
      cursor[k] = out.pos;
      out.pos = end;
    }
    if (out.pos !== header + total) throw new Error(`push encoding wrote ${out.pos - header} bytes, sized ${total}`);
    start = 0;
    for (let i = 0; i < this.count; i++) {
      const end = this.endOf[i] as number;
      const k = this.streamOf[i] as number;
      this.w.buf.copy(out.buf, cursor[k] as number, start, end);
      cursor[k] = (cursor[k] as number) + end - start;
      start = end;
    }
    this.count = 0;
    this.w.pos = 0;
    if (!compress) return { body: out.buf, contentType: "application/x-protobuf" };
    if (this.compressed.length < maxCompressedLength(total)) this.compressed = Buffer.allocUnsafe(maxCompressedLength(total));
    const size = compressInto(this.request.subarray(0, total), this.compressed, this.table);
    return { body: Buffer.from(this.compressed.subarray(0, size)), contentType: "application/x-protobuf" };
  }

  private reserve(bytes: number): void {
    const w = this.w;
    if (w.pos + bytes <= w.buf.length) return;
    let size = w.buf.length * 2;
    while (size < w.pos + bytes) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    w.buf.copy(bigger, 0, 0, w.pos);
    w.buf = bigger;
  }
}
