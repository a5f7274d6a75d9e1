import { describe, expect, it } from "vitest";
import { readSpec, specText } from "@aixcl/testkit";
import type { SpecText } from "@aixcl/testkit";
import type { LogEntry, LogLevelName } from "@aixcl/wire";
import {
  aicoTopic,
  BATCH_TOPIC_PREFIX,
  batchTopic,
  decodeLogMessage,
  emptyLogEntry,
  encodeLogBatch,
  encodeLogEntry,
  HOLD_TOPIC,
  levelName,
  levelNumber,
  logTopic,
  MAX_NAME_LENGTH,
  sanitizeName,
  UNKNOWN_NAME,
} from "@aixcl/wire";
import { BATCH_LIMITS, extraTexts, fitEntry, MAX_MESSAGE_BYTES, maxPayloadBytes, truncationMarker } from "../src/index.js";

// The protocol's cases, shared with clients/python/tests/test_spec.py; what they mean: spec/wire/README.md.

interface Named {
  name: string;
}

describe("spec/wire/names.json", () => {
  const spec = readSpec<{ max_name_length: number; unknown_name: string; cases: (Named & { input: string; output: string })[] }>("names.json");
  it("bounds", () => {
    expect([MAX_NAME_LENGTH, UNKNOWN_NAME]).toEqual([spec.max_name_length, spec.unknown_name]);
  });
  it.each(spec.cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(sanitizeName(c.input)).toBe(c.output);
  });
});

describe("spec/wire/levels.json: aico.core.LogLevel", () => {
  const spec = readSpec<{ aico: (Named & { level: LogLevelName; number: number })[] }>("levels.json");
  it.each(spec.aico.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(levelNumber(c.level)).toBe(c.number);
    expect(levelName(c.number)).toBe(c.level);
  });
});

describe("spec/wire/topics.json", () => {
  const spec = readSpec<{ batch_topic_prefix: string; hold_topic: string; cases: (Named & { subsystem: string; module: string; aixcl: string; aico: string; batch: string })[] }>("topics.json");
  it("prefixes", () => {
    expect([BATCH_TOPIC_PREFIX, HOLD_TOPIC]).toEqual([spec.batch_topic_prefix, spec.hold_topic]);
  });
  it.each(spec.cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect([logTopic(c.subsystem, c.module), aicoTopic(c.subsystem, c.module), batchTopic(c.subsystem, c.module)]).toEqual([c.aixcl, c.aico, c.batch]);
  });
});

interface FitCase extends Named {
  entry: { message: SpecText; extra: Record<string, SpecText> };
  max_payload_bytes: number;
  result: "fits" | "truncated" | "dropped";
  payload_bytes?: number;
  sent?: { message: SpecText; extra: Record<string, SpecText> };
}

const texts = (map: Record<string, SpecText>): Record<string, string> => Object.fromEntries(Object.entries(map).map(([k, v]) => [k, specText(v)]));

interface PayloadLimit extends Named {
  topic: string;
  batch_topic: string | null;
  max_message_bytes: number;
  max_payload_bytes: number;
}

describe("spec/wire/fit.json", () => {
  const spec = readSpec<{ max_message_bytes: number; truncation_marker: string; payload_limits: PayloadLimit[]; cases: FitCase[] }>("fit.json");
  it("limit and marker", () => {
    expect(MAX_MESSAGE_BYTES).toBe(spec.max_message_bytes);
    expect(truncationMarker(1234)).toBe(spec.truncation_marker.replace("{bytes}", "1234"));
  });
  it.each(spec.payload_limits.map((c) => [c.name, c] as const))("payload limit: %s", (_, c) => {
    expect(maxPayloadBytes(c.max_message_bytes, c.topic, c.batch_topic ?? undefined)).toBe(c.max_payload_bytes);
  });
  it.each(spec.cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const entry: LogEntry = {
      ...emptyLogEntry(),
      timestampNs: 1_763_700_000_000_000_000n,
      level: "info",
      subsystem: "s",
      module: "m",
      topic: "logs.s.m",
      message: specText(c.entry.message),
      extra: texts(c.entry.extra),
    };
    const fitted = fitEntry(entry, encodeLogEntry, c.max_payload_bytes);
    if (c.result === "dropped") {
      expect(fitted).toBeUndefined();
      return;
    }
    expect(fitted?.truncated).toBe(c.result === "truncated");
    expect(fitted?.payload.length).toBe(c.payload_bytes);
    const decoded = decodeLogMessage([Buffer.from("logs.s.m"), fitted?.payload ?? Buffer.alloc(0)]);
    expect(decoded.ok && { message: decoded.entry.message, extra: decoded.entry.extra }).toEqual({ message: specText(c.sent?.message ?? ""), extra: texts(c.sent?.extra ?? {}) });
  });
});

describe("spec/wire/batch.json", () => {
  const spec = readSpec<{ limits: { max_entries: number; max_bytes: number; window_ms: number }; framing: (Named & { entries_hex: string[]; batch_hex: string })[] }>("batch.json");
  it("limits", () => {
    expect({ max_entries: BATCH_LIMITS.maxEntries, max_bytes: BATCH_LIMITS.maxBytes, window_ms: BATCH_LIMITS.windowMs }).toEqual(spec.limits);
  });
  it.each(spec.framing.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(encodeLogBatch(c.entries_hex.map((hex) => Buffer.from(hex, "hex"))).toString("hex")).toBe(c.batch_hex);
  });
});

describe("spec/wire/records.json: the extra of the logger's own log calls", () => {
  const spec = readSpec<{ cases: (Named & { record: { fields: Record<string, unknown> }; entry: { extra: Record<string, string> } })[] }>("records.json");
  // log(message, extra) takes every field as extra; the three a record gives the entry's own fields go as LogContext.
  const context = new Set(["trace_id", "session_id", "user_uuid"]);
  it.each(spec.cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(extraTexts(Object.fromEntries(Object.entries(c.record.fields).filter(([key]) => !context.has(key))))).toEqual(c.entry.extra);
  });
});
