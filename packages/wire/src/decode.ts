import type { LogEntry } from "./entry.js";
import { emptyLogEntry, LOG_ENTRY_TYPE_URL, nowNs } from "./entry.js";
import { levelName } from "./level.js";
import { BATCH_TOPIC_PREFIX, isBatchTopic, parseLogTopic, sanitizeName } from "./topic.js";
import type { LogTopic } from "./topic.js";

export const DECODE_ERROR_REASONS = [
  "frame_count",
  "not_a_log_topic",
  "empty_payload",
  "invalid_protobuf",
  "unexpected_payload_type",
] as const;
export type DecodeErrorReason = (typeof DECODE_ERROR_REASONS)[number];

export type DecodeResult =
  | { ok: true; entry: LogEntry; topic: LogTopic; envelope: boolean }
  | { ok: false; reason: DecodeErrorReason; detail: string };

export interface DecodeOptions {
  /** Time given to entries that carry no timestamp. Default: now. */
  now?: () => bigint;
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const START_GROUP = 3;
const END_GROUP = 4;
const FIXED32 = 5;

/** aico.core.LogEntry's wire type per field number (proto/aico/core/log_entry.proto); others are skipped. */
const LOG_ENTRY_WIRE_TYPES = [-1, LENGTH_DELIMITED, VARINT, LENGTH_DELIMITED, LENGTH_DELIMITED, LENGTH_DELIMITED, LENGTH_DELIMITED, LENGTH_DELIMITED,
  LENGTH_DELIMITED, LENGTH_DELIMITED, VARINT, LENGTH_DELIMITED, LENGTH_DELIMITED, LENGTH_DELIMITED, LENGTH_DELIMITED];

class WireError extends Error {}

/**
 * A cursor over protobuf wire data. The decoder is written out by hand rather than generated, because it is the
 * log consumer's hot path: one pass, no intermediate message objects, every field's wire type checked. Nested
 * messages are read by narrowing `end` (enter/leave) instead of creating a cursor for each.
 * Strings are decoded lossily: invalid UTF-8 becomes U+FFFD rather than costing the entry.
 */
class Wire {
  pos: number;

  constructor(
    readonly buf: Buffer,
    start: number,
    public end: number,
  ) {
    this.pos = start;
  }

  /** An unsigned varint; exact up to 2^53, larger values come out inexact (callers range-check). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError("truncated varint");
      const b = this.buf[this.pos++] as number;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new WireError("varint longer than 10 bytes");
  }

  /** An int32/enum varint: its low 32 bits, signed (negative values travel as 10-byte varints). */
  int32(): number {
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) throw new WireError("truncated varint");
      const b = this.buf[this.pos++] as number;
      if (shift < 32) value |= (b & 0x7f) << shift;
      if (b < 0x80) return value;
    }
    throw new WireError("varint longer than 10 bytes");
  }

  /** A field's tag (field number * 8 + wire type); field number 0 is an error. */
  tag(): number {
    const tag = this.varint();
    if (tag < 8) throw new WireError("field number 0");
    return tag;
  }

  /** Moves past a length-delimited field and returns where its content starts. */
  delimited(): number {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) throw new WireError(`field of ${length} bytes runs past the end of its message`);
    this.pos = start + length;
    return start;
  }

  /** Narrows the cursor to the length-delimited field it is at; returns the end to restore with leave(). */
  enter(): number {
    const outerEnd = this.end;
    const start = this.delimited();
    this.end = this.pos;
    this.pos = start;
    return outerEnd;
  }

  leave(outerEnd: number): void {
    this.end = outerEnd;
  }

  string(): string {
    const start = this.delimited();
    return utf8(this.buf, start, this.pos);
  }

  skip(tag: number): void {
    const wireType = tag % 8;
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case FIXED64:
        this.advance(8);
        return;
      case LENGTH_DELIMITED:
        this.delimited();
        return;
      case FIXED32:
        this.advance(4);
        return;
      case START_GROUP:
        for (;;) {
          const inner = this.tag();
          if (inner % 8 === END_GROUP) return;
          this.skip(inner);
        }
      default:
        throw new WireError(`field ${Math.floor(tag / 8)} has invalid wire type ${wireType}`);
    }
  }

  private advance(bytes: number): void {
    if (bytes > this.end - this.pos) throw new WireError("truncated fixed-size field");
    this.pos += bytes;
  }
}

/** Buffer's own decoder, without toString's argument handling (undeclared in @types/node; protobufjs uses it too). */
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (this: Buffer, start: number, end: number) => string }).utf8Slice ??
  function (this: Buffer, start: number, end: number) {
    return this.toString("utf8", start, end);
  };

/**
 * Lossy UTF-8: invalid byte sequences become U+FFFD. proto3 wants valid UTF-8, but a log entry with one bad
 * byte (a producer that cut a multi-byte character, a binary value in `extra`) is still worth keeping; the
 * replacement characters show where the damage was.
 */
function utf8(buf: Buffer, start: number, end: number): string {
  return start === end ? "" : utf8Slice.call(buf, start, end);
}

function checkWireType(tag: number, expected: number, what: string): void {
  if (tag % 8 !== expected) throw new WireError(`${what} field ${Math.floor(tag / 8)} has wire type ${tag % 8}`);
}

/** A map<string, string> entry; "__proto__" is kept as an ordinary key. */
function readMapEntry(wire: Wire, into: Record<string, string>): void {
  const outer = wire.enter();
  let key = "";
  let value = "";
  while (wire.pos < wire.end) {
    const tag = wire.tag();
    const field = Math.floor(tag / 8);
    if (field === 1 || field === 2) checkWireType(tag, LENGTH_DELIMITED, "map entry");
    if (field === 1) key = wire.string();
    else if (field === 2) value = wire.string();
    else wire.skip(tag);
  }
  wire.leave(outer);
  if (key === "__proto__") Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
  else into[key] = value;
}

/** The nanosecond base of the last second seen: entries arrive in time order, so most share it. */
let lastSeconds = -1;
let lastSecondsNs = 0n;

/** google.protobuf.Timestamp in buf[start, end) as nanoseconds since the epoch. */
function readTimestamp(buf: Buffer, start: number, end: number): bigint {
  const wire = new Wire(buf, start, end);
  let seconds = 0;
  let nanos = 0;
  while (wire.pos < wire.end) {
    const tag = wire.tag();
    const field = Math.floor(tag / 8);
    if (field === 1 || field === 2) checkWireType(tag, VARINT, "timestamp");
    if (field === 1) seconds = wire.varint();
    else if (field === 2) nanos = wire.int32();
    else wire.skip(tag);
  }
  // Negative int64 seconds travel as 2^64 - n, which is not a safe integer either.
  if (!Number.isSafeInteger(seconds) || nanos < 0 || nanos >= 1_000_000_000) {
    throw new WireError(`timestamp out of range (seconds=${seconds}, nanos=${nanos})`);
  }
  if (seconds !== lastSeconds) {
    lastSecondsNs = BigInt(seconds) * 1_000_000_000n;
    lastSeconds = seconds;
  }
  return nanos === 0 ? lastSecondsNs : lastSecondsNs + BigInt(nanos);
}

/**
 * Reads an aico.core.LogEntry from buf[start, end), filling in what the wire leaves out from the topic. A
 * length-delimited field 2 is what tells an AicoMessage envelope from a bare entry (in a LogEntry field 2 is the
 * level, a varint): at the top level it answers undefined ("an envelope"), inside an envelope it is an error.
 * Field 1 is only read at the end, because in an envelope it is the envelope's metadata, not a timestamp.
 */
function readLogEntry(buf: Buffer, start: number, end: number, topLevel: boolean, topicText: string, topic: LogTopic, now: () => bigint): LogEntry | undefined {
  const wire = new Wire(buf, start, end);
  let timestampStart = -1;
  let timestampEnd = -1;
  let level = 0;
  const entry = emptyLogEntry();
  while (wire.pos < wire.end) {
    const tag = wire.tag();
    const field = Math.floor(tag / 8);
    if (field === 2 && tag % 8 === LENGTH_DELIMITED) {
      if (topLevel) return undefined;
      throw new WireError("packed LogEntry has a length-delimited field 2");
    }
    const expected = LOG_ENTRY_WIRE_TYPES[field];
    if (expected === undefined) {
      wire.skip(tag);
      continue;
    }
    checkWireType(tag, expected, "LogEntry");
    switch (field) {
      case 1:
        timestampStart = wire.delimited();
        timestampEnd = wire.pos;
        break;
      case 2:
        level = wire.int32();
        break;
      case 3:
        entry.subsystem = wire.string();
        break;
      case 4:
        entry.module = wire.string();
        break;
      case 5:
        entry.function = wire.string();
        break;
      case 6:
        entry.message = wire.string();
        break;
      case 7:
        entry.topic = wire.string();
        break;
      case 8:
        readMapEntry(wire, entry.metadata);
        break;
      case 9:
        entry.filePath = wire.string();
        break;
      case 10:
        entry.lineNumber = wire.int32();
        break;
      case 11:
        entry.userUuid = wire.string();
        break;
      case 12:
        entry.sessionId = wire.string();
        break;
      case 13:
        entry.traceId = wire.string();
        break;
      case 14:
        readMapEntry(wire, entry.extra);
        break;
    }
  }
  entry.timestampNs = timestampStart < 0 ? now() : readTimestamp(buf, timestampStart, timestampEnd);
  entry.level = levelName(level);
  entry.subsystem = entry.subsystem ? cachedName(entry.subsystem) : topic.subsystem;
  entry.module = entry.module ? cachedName(entry.module) : topic.module;
  entry.topic ||= topicText;
  return entry;
}

/** aico.core.AicoMessage: where the value of the Any in field 2 (any_payload) is, and its type URL. */
function readEnvelope(buf: Buffer): { typeUrl: string; start: number; end: number } | undefined {
  const wire = new Wire(buf, 0, buf.length);
  let any: { typeUrl: string; start: number; end: number } | undefined;
  while (wire.pos < wire.end) {
    const tag = wire.tag();
    if (tag !== (2 << 3) + LENGTH_DELIMITED) {
      wire.skip(tag);
      continue;
    }
    const outer = wire.enter();
    any = { typeUrl: "", start: 0, end: 0 };
    while (wire.pos < wire.end) {
      const inner = wire.tag();
      const field = Math.floor(inner / 8);
      if (field === 1 || field === 2) checkWireType(inner, LENGTH_DELIMITED, "Any");
      if (field === 1) any.typeUrl = wire.string();
      else if (field === 2) {
        any.start = wire.delimited();
        any.end = wire.pos;
      } else wire.skip(inner);
    }
    wire.leave(outer);
  }
  return any;
}

function fail(reason: DecodeErrorReason, detail: string): DecodeResult {
  return { ok: false, reason, detail };
}

function asBuffer(frame: Uint8Array): Buffer {
  return Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
}

/**
 * Topics and names repeat endlessly on a bus; parsing and sanitizing each once keeps them off the hot path.
 * The caps only matter if producers invent unbounded names.
 */
const CACHE_LIMIT = 10_000;
const topics = new Map<string, LogTopic | null>();
const names = new Map<string, string>();

function cachedTopic(text: string): LogTopic | undefined {
  let topic = topics.get(text);
  if (topic === undefined) {
    const parsed = parseLogTopic(text);
    topic = parsed ? Object.freeze(parsed) : null;
    if (topics.size >= CACHE_LIMIT) topics.clear();
    topics.set(text, topic);
  }
  return topic ?? undefined;
}

function cachedName(raw: string): string {
  let name = names.get(raw);
  if (name === undefined) {
    name = sanitizeName(raw);
    if (names.size >= CACHE_LIMIT) names.clear();
    names.set(raw, name);
  }
  return name;
}

/**
 * Decodes one bus message (topic frame + payload frame) into a LogEntry. Accepts both topic styles and both
 * payload styles (bare LogEntry, or AicoMessage with an Any-packed LogEntry). Never throws: every failure
 * comes back as a reason suitable for a metric label plus a human-readable detail.
 */
export function decodeLogMessage(frames: readonly Uint8Array[], options: DecodeOptions = {}): DecodeResult {
  if (frames.length !== 2) return fail("frame_count", `expected 2 frames (topic, payload), got ${frames.length}`);
  const [topicFrame, payloadFrame] = frames as [Uint8Array, Uint8Array];
  const topicText = asBuffer(topicFrame).toString("utf8");
  const topic = cachedTopic(topicText);
  if (!topic) return fail("not_a_log_topic", `topic ${JSON.stringify(topicText.slice(0, 80))} is not logs.* or logs/*`);
  if (payloadFrame.byteLength === 0) return fail("empty_payload", "payload frame is empty");

  const payload = asBuffer(payloadFrame);
  const now = options.now ?? nowNs;
  let entry: LogEntry | undefined;
  let envelope = false;
  try {
    entry = readLogEntry(payload, 0, payload.length, true, topicText, topic, now);
    if (!entry) {
      envelope = true;
      const any = readEnvelope(payload);
      if (!any || any.typeUrl !== LOG_ENTRY_TYPE_URL) {
        return fail("unexpected_payload_type", `envelope carries ${JSON.stringify(any?.typeUrl ?? "nothing")}, not ${LOG_ENTRY_TYPE_URL}`);
      }
      entry = readLogEntry(payload, any.start, any.end, false, topicText, topic, now) as LogEntry;
    }
  } catch (error) {
    return fail("invalid_protobuf", (error as Error).message);
  }
  return { ok: true, entry, topic, envelope };
}

/** A batch topic's LogTopic and the single-entry topic its entries stand for (`logs.<subsystem>.<module>`). */
const batchTopics = new Map<string, { topic: LogTopic; topicText: string } | null>();

function cachedBatchTopic(text: string): { topic: LogTopic; topicText: string } | undefined {
  let found = batchTopics.get(text);
  if (found === undefined) {
    const topicText = `logs.${text.slice(BATCH_TOPIC_PREFIX.length)}`;
    const topic = parseLogTopic(topicText);
    found = topic ? { topic: Object.freeze(topic), topicText } : null;
    if (batchTopics.size >= CACHE_LIMIT) batchTopics.clear();
    batchTopics.set(text, found);
  }
  return found ?? undefined;
}

/**
 * Decodes an aixcl.bus.LogBatch message (topic `aixcl.batch.<subsystem>.<module>`; proto/aixcl/bus/log_batch.proto)
 * and hands each entry to `onEntry`, in order, as decodeLogMessage would have decoded it from a single message on
 * `logs.<subsystem>.<module>`. Never throws. A failure goes to `onError` with a reason fit for a metric label: one
 * for the whole message when it cannot be read (frames, topic, framing: what follows is lost), one per entry that is
 * not a LogEntry (that entry is skipped, the rest are kept). Returns how many entries were decoded.
 */
export function decodeLogBatch(
  frames: readonly Uint8Array[],
  onEntry: (entry: LogEntry) => void,
  onError: (reason: DecodeErrorReason, detail: string) => void,
  options: DecodeOptions = {},
): number {
  if (frames.length !== 2) {
    onError("frame_count", `expected 2 frames (topic, payload), got ${frames.length}`);
    return 0;
  }
  const [topicFrame, payloadFrame] = frames as [Uint8Array, Uint8Array];
  const topicText = asBuffer(topicFrame).toString("utf8");
  const batch = isBatchTopic(topicFrame) ? cachedBatchTopic(topicText) : undefined;
  if (!batch) {
    onError("not_a_log_topic", `topic ${JSON.stringify(topicText.slice(0, 80))} is not ${BATCH_TOPIC_PREFIX}<subsystem>.<module>`);
    return 0;
  }
  if (payloadFrame.byteLength === 0) {
    onError("empty_payload", "payload frame is empty");
    return 0;
  }
  const payload = asBuffer(payloadFrame);
  const now = options.now ?? nowNs;
  const wire = new Wire(payload, 0, payload.length);
  let decoded = 0;
  try {
    while (wire.pos < wire.end) {
      const tag = wire.tag();
      if (Math.floor(tag / 8) !== 1) {
        wire.skip(tag);
        continue;
      }
      checkWireType(tag, LENGTH_DELIMITED, "LogBatch");
      const start = wire.delimited();
      let entry: LogEntry | undefined;
      try {
        entry = readLogEntry(payload, start, wire.pos, false, batch.topicText, batch.topic, now);
      } catch (error) {
        onError("invalid_protobuf", `batch entry ${decoded + 1}: ${(error as Error).message}`);
        continue;
      }
      if (entry) {
        decoded++;
        onEntry(entry);
      }
    }
  } catch (error) {
    onError("invalid_protobuf", `batch after ${decoded} entries: ${(error as Error).message}`);
  }
  return decoded;
}
