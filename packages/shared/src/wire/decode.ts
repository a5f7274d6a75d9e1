import protobuf from "protobufjs";
import type { LogEntry } from "./entry.js";
import { nowNs } from "./entry.js";
import { levelName } from "./level.js";
import { AicoMessageType, LOG_ENTRY_TYPE_URL, LogEntryType } from "./proto.js";
import { parseLogTopic, sanitizeName } from "./topic.js";
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

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
/** aico.core.LogEntry's wire type per field number; fields not listed are skipped (newer producers). */
const LOG_ENTRY_WIRE_TYPES = new Map<number, number>([
  [1, WIRE_LENGTH_DELIMITED], [2, WIRE_VARINT], [3, WIRE_LENGTH_DELIMITED], [4, WIRE_LENGTH_DELIMITED],
  [5, WIRE_LENGTH_DELIMITED], [6, WIRE_LENGTH_DELIMITED], [7, WIRE_LENGTH_DELIMITED],
  [8, WIRE_LENGTH_DELIMITED], [9, WIRE_LENGTH_DELIMITED], [10, WIRE_VARINT], [11, WIRE_LENGTH_DELIMITED],
  [12, WIRE_LENGTH_DELIMITED], [13, WIRE_LENGTH_DELIMITED], [14, WIRE_LENGTH_DELIMITED],
]);

type PayloadKind = "entry" | "envelope";

/**
 * Tells a bare LogEntry from an AicoMessage by the top-level wire types: field 2 is a varint (level) in a
 * LogEntry and length-delimited (any_payload) in an envelope. protobufjs decoders do not check wire types,
 * so this scan is also what turns a mistyped field into an error instead of silently wrong values.
 */
function classifyPayload(payload: Uint8Array): PayloadKind {
  const reader = protobuf.Reader.create(payload);
  let kind: PayloadKind = "entry";
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) throw new Error("field number 0");
    if (field === 2 && wireType === WIRE_LENGTH_DELIMITED) kind = "envelope";
    else if (kind === "entry" && LOG_ENTRY_WIRE_TYPES.has(field) && LOG_ENTRY_WIRE_TYPES.get(field) !== wireType) {
      throw new Error(`field ${field} has wire type ${wireType}`);
    }
    reader.skipType(wireType);
  }
  return kind;
}

interface WireTimestamp {
  seconds?: number | { toNumber(): number };
  nanos?: number;
}

function timestampNs(ts: WireTimestamp | null | undefined, now: () => bigint): bigint {
  if (!ts) return now();
  const seconds = typeof ts.seconds === "object" ? ts.seconds.toNumber() : (ts.seconds ?? 0);
  const nanos = ts.nanos ?? 0;
  if (!Number.isSafeInteger(seconds) || seconds < 0 || nanos < 0 || nanos >= 1_000_000_000) {
    throw new Error(`timestamp out of range (seconds=${seconds}, nanos=${nanos})`);
  }
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
}

/** The decoded protobufjs message, typed by the fields we read. */
interface WireLogEntry {
  timestamp?: WireTimestamp | null;
  level?: number;
  subsystem?: string;
  module?: string;
  function?: string;
  message?: string;
  topic?: string;
  metadata?: Record<string, string>;
  filePath?: string;
  lineNumber?: number;
  userUuid?: string;
  sessionId?: string;
  traceId?: string;
  extra?: Record<string, string>;
}

interface WireAicoMessage {
  anyPayload?: { type_url?: string; value?: Uint8Array } | null;
}

function fail(reason: DecodeErrorReason, detail: string): DecodeResult {
  return { ok: false, reason, detail };
}

function toText(frame: Uint8Array): string {
  return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString("utf8");
}

/**
 * Decodes one bus message (topic frame + payload frame) into a LogEntry. Accepts both topic styles and both
 * payload styles (bare LogEntry, or AicoMessage with an Any-packed LogEntry). Never throws: every failure
 * comes back as a reason suitable for a metric label plus a human-readable detail.
 */
export function decodeLogMessage(frames: readonly Uint8Array[], options: DecodeOptions = {}): DecodeResult {
  if (frames.length !== 2) return fail("frame_count", `expected 2 frames (topic, payload), got ${frames.length}`);
  const [topicFrame, payloadFrame] = frames as [Uint8Array, Uint8Array];
  const topicText = toText(topicFrame);
  const topic = parseLogTopic(topicText);
  if (!topic) return fail("not_a_log_topic", `topic ${JSON.stringify(topicText.slice(0, 80))} is not logs.* or logs/*`);
  if (payloadFrame.byteLength === 0) return fail("empty_payload", "payload frame is empty");

  let wire: WireLogEntry;
  let envelope = false;
  try {
    let entryBytes = payloadFrame;
    if (classifyPayload(payloadFrame) === "envelope") {
      envelope = true;
      const message = AicoMessageType.decode(payloadFrame) as unknown as WireAicoMessage;
      const any = message.anyPayload;
      if (!any || any.type_url !== LOG_ENTRY_TYPE_URL) {
        return fail("unexpected_payload_type", `envelope carries ${JSON.stringify(any?.type_url ?? "nothing")}, not ${LOG_ENTRY_TYPE_URL}`);
      }
      entryBytes = any.value ?? new Uint8Array(0);
      if (classifyPayload(entryBytes) !== "entry") throw new Error("packed LogEntry has a length-delimited field 2");
    }
    wire = LogEntryType.decode(entryBytes) as unknown as WireLogEntry;
    const entry: LogEntry = {
      timestampNs: timestampNs(wire.timestamp, options.now ?? nowNs),
      level: levelName(wire.level ?? 0),
      subsystem: wire.subsystem ? sanitizeName(wire.subsystem) : topic.subsystem,
      module: wire.module ? sanitizeName(wire.module) : topic.module,
      function: wire.function ?? "",
      message: wire.message ?? "",
      topic: wire.topic || topicText,
      metadata: wire.metadata ?? {},
      filePath: wire.filePath ?? "",
      lineNumber: wire.lineNumber ?? 0,
      userUuid: wire.userUuid ?? "",
      sessionId: wire.sessionId ?? "",
      traceId: wire.traceId ?? "",
      extra: wire.extra ?? {},
    };
    return { ok: true, entry, topic, envelope };
  } catch (error) {
    return fail("invalid_protobuf", (error as Error).message);
  }
}
