import type { LogEntry } from "./entry.js";
import { LOG_ENTRY_TYPE_URL } from "./entry.js";
import { levelNumber } from "./level.js";

/**
 * The encoder is written out by hand, like the decoder, so that a client that only publishes needs no
 * protobuf library and no .proto files at run time (@aixcl/logging bundles this module). Field numbers and
 * types are those of proto/aico/core/{log_entry,message}.proto; test/encode.test.ts decodes its output with
 * protobufjs loading those files. Sizes are computed first and every byte is written once, into one buffer.
 */

const VARINT = 0;
const LENGTH_DELIMITED = 2;

/** Bytes of an unsigned varint for 0 <= n < 2^53. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** int32 and int64 values below zero travel as ten-byte two's-complement varints. */
function signedSize(n: number): number {
  return n < 0 ? 10 : varintSize(n);
}

/** Size of a length-delimited field with `length` bytes of content (tags of fields 1-15 take one byte). */
function delimitedSize(length: number): number {
  return 1 + varintSize(length) + length;
}

/** The longest ASCII text Writer.string copies itself; a longer one goes to buf.write, whose call costs little beside it. */
const SHORT_ASCII = 128;

class Writer {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  varint(n: number): void {
    while (n >= 128) {
      this.buf[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  signed(n: number): void {
    if (n >= 0) return this.varint(n);
    let v = BigInt.asUintN(64, BigInt(n));
    for (let i = 0; i < 9; i++, v >>= 7n) this.buf[this.pos++] = Number(v & 127n) | 128;
    this.buf[this.pos++] = Number(v);
  }

  tag(field: number, wireType: number): void {
    this.buf[this.pos++] = (field << 3) | wireType;
  }

  /** A string field whose UTF-8 length the caller measured; proto3 leaves empty strings out. */
  string(field: number, text: string, bytes: number): void {
    if (bytes === 0) return;
    this.tag(field, LENGTH_DELIMITED);
    this.varint(bytes);
    if (bytes === text.length && bytes <= SHORT_ASCII) {
      // As many bytes as characters: ASCII, one byte each. Copied here, a short text costs under half of a call
      // into buf.write (an entry has half a dozen, each paid for on the application's thread).
      const buf = this.buf;
      let pos = this.pos;
      for (let i = 0; i < bytes; i++) buf[pos++] = text.charCodeAt(i);
      this.pos = pos;
    } else this.pos += this.buf.write(text, this.pos, bytes, "utf8");
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
}

interface Timestamp {
  seconds: number;
  nanos: number;
  /** Encoded size of the Timestamp message's content. */
  size: number;
}

function timestamp(ns: bigint): Timestamp {
  let seconds = Number(ns / 1_000_000_000n);
  let nanos = Number(ns % 1_000_000_000n);
  // Before 1970 the remainder is negative; a Timestamp's nanos count forward from its second.
  if (nanos < 0) {
    seconds -= 1;
    nanos += 1_000_000_000;
  }
  const size = (seconds === 0 ? 0 : 1 + signedSize(seconds)) + (nanos === 0 ? 0 : 1 + signedSize(nanos));
  return { seconds, nanos, size };
}

function writeTimestamp(w: Writer, field: number, t: Timestamp): void {
  w.tag(field, LENGTH_DELIMITED);
  w.varint(t.size);
  if (t.seconds !== 0) {
    w.tag(1, VARINT);
    w.signed(t.seconds);
  }
  if (t.nanos !== 0) {
    w.tag(2, VARINT);
    w.signed(t.nanos);
  }
}

/** A map<string, string> with the UTF-8 lengths of its keys and values and the size of all its entries. */
interface MeasuredMap {
  keys: string[];
  values: string[];
  /** [key, value, key, value, ...] */
  lengths: number[];
  size: number;
}

function entrySize(keyBytes: number, valueBytes: number): number {
  return (keyBytes === 0 ? 0 : delimitedSize(keyBytes)) + (valueBytes === 0 ? 0 : delimitedSize(valueBytes));
}

const NO_STRINGS: string[] = [];
const EMPTY_MAP: MeasuredMap = { keys: NO_STRINGS, values: NO_STRINGS, lengths: [], size: 0 };

// Plain loops over keys, not entries' pairs and destructuring: this runs for every entry logged, on the caller's thread.
function measureMap(map: Readonly<Record<string, string>>): MeasuredMap {
  const keys = Object.keys(map);
  if (keys.length === 0) return EMPTY_MAP;
  const values: string[] = [];
  const lengths: number[] = [];
  let size = 0;
  for (const key of keys) {
    const value = map[key] as string;
    const k = Buffer.byteLength(key);
    const v = Buffer.byteLength(value);
    values.push(value);
    lengths.push(k, v);
    size += delimitedSize(entrySize(k, v));
  }
  return { keys, values, lengths, size };
}

function writeMap(w: Writer, field: number, map: MeasuredMap): void {
  for (let i = 0; i < map.keys.length; i++) {
    const k = map.lengths[2 * i] as number;
    const v = map.lengths[2 * i + 1] as number;
    w.tag(field, LENGTH_DELIMITED);
    w.varint(entrySize(k, v));
    w.string(1, map.keys[i] as string, k);
    w.string(2, map.values[i] as string, v);
  }
}

/** The numbers of a LogEntry's string fields, in field order: those of stringFields(). */
const STRING_FIELDS = [3, 4, 5, 6, 7, 9, 11, 12, 13] as const;

function stringFields(e: LogEntry): string[] {
  return [e.subsystem, e.module, e.function, e.message, e.topic, e.filePath, e.userUuid, e.sessionId, e.traceId];
}

/** Encodes a bare aico.core.LogEntry: the payload our own clients send. */
export function encodeLogEntry(entry: LogEntry): Buffer {
  const time = timestamp(entry.timestampNs);
  const level = levelNumber(entry.level);
  // Texts and their lengths side by side, without an object per field: this runs for every entry logged.
  const texts = stringFields(entry);
  const lengths = texts.map((text) => (text.length === 0 ? 0 : Buffer.byteLength(text)));
  const metadata = measureMap(entry.metadata);
  const extra = measureMap(entry.extra);
  let size = delimitedSize(time.size) + metadata.size + extra.size;
  if (level !== 0) size += 1 + signedSize(level);
  if (entry.lineNumber !== 0) size += 1 + signedSize(entry.lineNumber);
  for (const bytes of lengths) size += bytes === 0 ? 0 : delimitedSize(bytes);

  const w = new Writer(size);
  writeTimestamp(w, 1, time);
  if (level !== 0) {
    w.tag(2, VARINT);
    w.signed(level);
  }
  // Fields in number order, as protobuf encoders conventionally write them: 8 before 9, 10 after it.
  for (let i = 0; i < STRING_FIELDS.length; i++) {
    const field = STRING_FIELDS[i] as number;
    if (field === 9) writeMap(w, 8, metadata);
    w.string(field, texts[i] as string, lengths[i] as number);
    if (field === 9 && entry.lineNumber !== 0) {
      w.tag(10, VARINT);
      w.signed(entry.lineNumber);
    }
  }
  writeMap(w, 14, extra);
  if (w.pos !== size) throw new Error(`LogEntry encoder wrote ${w.pos} of ${size} bytes`);
  return w.buf;
}

/**
 * An aixcl.bus.LogBatch (proto/aixcl/bus/log_batch.proto) of encoded LogEntries, as encodeLogEntry returned them:
 * each becomes field 1, length-delimited, unchanged. `count` of the payloads, from the first.
 */
export function encodeLogBatch(payloads: readonly Uint8Array[], count = payloads.length): Buffer {
  let size = 0;
  for (let i = 0; i < count; i++) size += delimitedSize((payloads[i] as Uint8Array).length);
  const w = new Writer(size);
  for (let i = 0; i < count; i++) {
    const payload = payloads[i] as Uint8Array;
    w.tag(1, LENGTH_DELIMITED);
    w.varint(payload.length);
    w.buf.set(payload, w.pos);
    w.pos += payload.length;
  }
  return w.buf;
}

export interface EnvelopeMetadata {
  messageId: string;
  timestampNs: bigint;
  source: string;
  attributes?: Record<string, string>;
}

const MESSAGE_TYPE = "aico.core.LogEntry";
const VERSION = "v1";

/** Wraps a LogEntry the way real AICO producers do: an AicoMessage with the entry Any-packed. */
export function encodeAicoMessage(entry: LogEntry, meta: EnvelopeMetadata): Buffer {
  const value = encodeLogEntry(entry);
  const time = timestamp(meta.timestampNs);
  const texts = [meta.messageId, meta.source, MESSAGE_TYPE, VERSION].map((t) => Buffer.byteLength(t));
  const [id, source, type, version] = texts as [number, number, number, number];
  const attributes = measureMap(meta.attributes ?? {});
  const metadataSize = texts.reduce((sum, n) => sum + (n === 0 ? 0 : delimitedSize(n)), 0) + delimitedSize(time.size) + attributes.size;
  const typeUrl = Buffer.byteLength(LOG_ENTRY_TYPE_URL);
  const anySize = delimitedSize(typeUrl) + delimitedSize(value.length);

  const w = new Writer(delimitedSize(metadataSize) + delimitedSize(anySize));
  w.tag(1, LENGTH_DELIMITED);
  w.varint(metadataSize);
  w.string(1, meta.messageId, id);
  writeTimestamp(w, 2, time);
  w.string(3, meta.source, source);
  w.string(4, MESSAGE_TYPE, type);
  w.string(5, VERSION, version);
  writeMap(w, 6, attributes);
  w.tag(2, LENGTH_DELIMITED);
  w.varint(anySize);
  w.string(1, LOG_ENTRY_TYPE_URL, typeUrl);
  w.bytes(2, value);
  return w.buf;
}
