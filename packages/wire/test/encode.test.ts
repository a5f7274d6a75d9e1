/**
 * The hand-written encoder against an independent one: protobufjs, loading the .proto files, must read back every
 * field of what encodeLogEntry and encodeAicoMessage write, for fixed edge cases and for seeded random entries.
 */
import { describe, expect, it } from "vitest";
import { fullEntry, seededRandom } from "@aixcl/testkit";
import type { LogEntry, LogLevelName } from "../src/index.js";
import { encodeAicoMessage, encodeLogEntry, LOG_ENTRY_TYPE_URL, LOG_LEVELS, levelNumber } from "../src/index.js";
import { AicoMessageType, LogEntryType } from "./proto.js";

/** What protobufjs makes of a LogEntry: defaults filled in, int64 seconds as a number. */
function readBack(bytes: Uint8Array): Record<string, unknown> {
  return LogEntryType.toObject(LogEntryType.decode(bytes), { longs: Number, defaults: true }) as Record<string, unknown>;
}

function expected(e: LogEntry): Record<string, unknown> {
  let seconds = Number(e.timestampNs / 1_000_000_000n);
  let nanos = Number(e.timestampNs % 1_000_000_000n);
  if (nanos < 0) [seconds, nanos] = [seconds - 1, nanos + 1_000_000_000];
  return {
    timestamp: { seconds, nanos },
    level: levelNumber(e.level),
    subsystem: e.subsystem,
    module: e.module,
    function: e.function,
    message: e.message,
    topic: e.topic,
    metadata: e.metadata,
    filePath: e.filePath,
    lineNumber: e.lineNumber,
    userUuid: e.userUuid,
    sessionId: e.sessionId,
    traceId: e.traceId,
    extra: e.extra,
  };
}

const TEXTS = ["", "a", "ü", "日本語", "emoji 🪵", "x".repeat(127), "y".repeat(128), "z".repeat(20_000), "quote \" back\\slash\nnewline", "\u0000nul"];

function randomEntry(next: () => number): LogEntry {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const map = () => Object.fromEntries(Array.from({ length: Math.floor(next() * 4) }, (_, i) => [`${pick(TEXTS).slice(0, 10)}${i}`, pick(TEXTS)]));
  return {
    timestampNs: BigInt(Math.floor(next() * 2 ** 41)) * 1_000_000n + BigInt(pick([0, 1, 999_999])),
    level: pick(LOG_LEVELS) as LogLevelName,
    subsystem: pick(TEXTS),
    module: pick(TEXTS),
    function: pick(TEXTS),
    message: pick(TEXTS),
    topic: pick(TEXTS),
    metadata: map(),
    filePath: pick(TEXTS),
    lineNumber: pick([0, 1, 127, 128, 2 ** 31 - 1, -1, -(2 ** 31)]),
    userUuid: pick(TEXTS),
    sessionId: pick(TEXTS),
    traceId: pick(TEXTS),
    extra: map(),
  };
}

describe("encodeLogEntry", () => {
  it("writes every field of a full entry", () => {
    const entry = fullEntry();
    expect(readBack(encodeLogEntry(entry))).toEqual(expected(entry));
  });

  it.each([
    ["an entry with every field empty", fullEntry({ level: "unknown", subsystem: "", module: "", function: "", message: "", topic: "", metadata: {}, filePath: "", lineNumber: 0, userUuid: "", sessionId: "", traceId: "", extra: {} })],
    ["time zero", fullEntry({ timestampNs: 0n })],
    ["a time before 1970", fullEntry({ timestampNs: -1_500_000_000n })],
    ["a negative line number (ten-byte varint)", fullEntry({ lineNumber: -7 })],
    ["map entries with empty keys and values", fullEntry({ extra: { "": "v", k: "" }, metadata: { "": "" } })],
    ["a 1 MiB message", fullEntry({ message: "m".repeat(1 << 20) })],
  ])("%s", (_name, entry) => {
    expect(readBack(encodeLogEntry(entry))).toEqual(expected(entry));
  });

  it("agrees with protobufjs on 2,000 seeded random entries", () => {
    const next = seededRandom(14);
    for (let i = 0; i < 2000; i++) {
      const entry = randomEntry(next);
      expect(readBack(encodeLogEntry(entry)), `entry ${i}`).toEqual(expected(entry));
    }
  });
});

describe("encodeAicoMessage", () => {
  it("packs the entry into any_payload with AICO's type URL and fills the envelope metadata", () => {
    const entry = fullEntry();
    const bytes = encodeAicoMessage(entry, { messageId: "m-1", timestampNs: 1_763_700_000_000_000_001n, source: "api_gateway", attributes: { k: "v" } });
    const message = AicoMessageType.toObject(AicoMessageType.decode(bytes), { longs: Number, defaults: true }) as {
      metadata: Record<string, unknown>;
      anyPayload: { type_url: string; value: Uint8Array };
    };
    expect(message.metadata).toEqual({
      messageId: "m-1",
      timestamp: { seconds: 1_763_700_000, nanos: 1 },
      source: "api_gateway",
      messageType: "aico.core.LogEntry",
      version: "v1",
      attributes: { k: "v" },
    });
    expect(message.anyPayload.type_url).toBe(LOG_ENTRY_TYPE_URL);
    expect(readBack(message.anyPayload.value)).toEqual(expected(entry));
  });
});
