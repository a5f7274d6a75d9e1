import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { fullEntry } from "@aixcl/testkit";
import {
  decodeLogMessage,
  encodeAicoMessage,
  encodeLogEntry,
  LOG_ENTRY_TYPE_URL,
  parseLogTopic,
} from "../src/index.js";

const envelopeMeta = { messageId: "m-1", timestampNs: 1_763_700_000_000_000_000n, source: "api_gateway" };
const frames = (topic: string, payload: Uint8Array) => [Buffer.from(topic), payload];

describe("decodeLogMessage: the four topic/payload combinations", () => {
  const entry = fullEntry();
  const cases = [
    { topic: "logs.api_gateway.auth", payload: "bare", bytes: encodeLogEntry(entry) },
    { topic: "logs/api_gateway/auth/v1", payload: "bare", bytes: encodeLogEntry(entry) },
    { topic: "logs.api_gateway.auth", payload: "envelope", bytes: encodeAicoMessage(entry, envelopeMeta) },
    { topic: "logs/api_gateway/auth/v1", payload: "envelope", bytes: encodeAicoMessage(entry, envelopeMeta) },
  ];
  for (const c of cases) {
    it(`${c.topic} with a ${c.payload} payload keeps every field`, () => {
      const result = decodeLogMessage(frames(c.topic, c.bytes));
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.entry).toEqual(entry);
      expect(result.envelope).toBe(c.payload === "envelope");
      expect(result.topic).toMatchObject({ subsystem: "api_gateway", module: "auth", style: c.topic.includes("/") ? "slash" : "dot" });
    });
  }

  it("fills subsystem, module and topic from the topic when the entry leaves them empty", () => {
    const bytes = encodeLogEntry(fullEntry({ subsystem: "", module: "", topic: "" }));
    const result = decodeLogMessage(frames("logs/Voice Engine/STT/v1", bytes));
    expect(result.ok && result.entry).toMatchObject({ subsystem: "voice_engine", module: "stt", topic: "logs/Voice Engine/STT/v1" });
  });

  it("keeps an entry whose text is not valid UTF-8, replacing the bad bytes with U+FFFD", () => {
    const message = Buffer.concat([Buffer.from("cut "), Buffer.from([0xe2, 0x82]), Buffer.from(" here "), Buffer.from([0xff])]);
    const raw = protobuf.Writer.create().uint32((6 << 3) | 2).bytes(message).uint32((14 << 3) | 2).fork()
      .uint32((1 << 3) | 2).string("k").uint32((2 << 3) | 2).bytes(Buffer.from([0x76, 0xc3])).ldelim().finish();
    const result = decodeLogMessage(frames("logs.a.b", raw));
    expect(result.ok && [result.entry.message, result.entry.extra]).toEqual(["cut \ufffd here \ufffd", { k: "v\ufffd" }]);
  });

  it("gives a timestamp-less entry the receive time and maps unknown level numbers to unknown", () => {
    const raw = protobuf.Writer.create().uint32((2 << 3) | 0).int32(25).uint32((6 << 3) | 2).string("hi").finish();
    const result = decodeLogMessage(frames("logs.a.b", raw), { now: () => 42n });
    expect(result.ok && result.entry).toMatchObject({ timestampNs: 42n, level: "unknown", message: "hi" });
  });
});

describe("decodeLogMessage: malformed input is a typed error, never a throw", () => {
  const good = encodeLogEntry(fullEntry());
  const cases: [string, Uint8Array[], string][] = [
    ["one frame", [Buffer.from("logs.a.b")], "frame_count"],
    ["three frames", [Buffer.from("logs.a.b"), good, good], "frame_count"],
    ["no frames", [], "frame_count"],
    ["a non-log topic", frames("metrics.cpu", good), "not_a_log_topic"],
    ["a topic merely starting with logs", frames("logsfoo", good), "not_a_log_topic"],
    ["an empty payload", frames("logs.a.b", new Uint8Array()), "empty_payload"],
    ["a truncated payload", frames("logs.a.b", good.subarray(0, good.length - 3)), "invalid_protobuf"],
    ["random bytes", frames("logs.a.b", Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), "invalid_protobuf"],
    // field 6 (message) sent as a varint: protobufjs alone would misread it.
    ["a mistyped field", frames("logs.a.b", Buffer.from([(6 << 3) | 0, 7])), "invalid_protobuf"],
    ["field number zero", frames("logs.a.b", Buffer.from([0x02, 0x00])), "invalid_protobuf"],
    ["a nanos value out of range", frames("logs.a.b", encodeLogEntryWithNanos(2_000_000_000)), "invalid_protobuf"],
  ];
  for (const [name, input, reason] of cases) {
    it(`${name} -> ${reason}`, () => {
      const result = decodeLogMessage(input);
      expect(result).toMatchObject({ ok: false, reason });
      if (!result.ok) expect(result.detail.length).toBeGreaterThan(0);
    });
  }

  it("an envelope carrying something other than a LogEntry -> unexpected_payload_type", () => {
    const envelope = protobuf.Writer.create()
      .uint32((2 << 3) | 2).fork()
      .uint32((1 << 3) | 2).string("type.googleapis.com/aico.core.HeartBeat")
      .uint32((2 << 3) | 2).bytes(Buffer.from([8, 1]))
      .ldelim().finish();
    expect(decodeLogMessage(frames("logs.a.b", envelope))).toMatchObject({ ok: false, reason: "unexpected_payload_type" });
  });

  it("an envelope whose packed entry is corrupt -> invalid_protobuf", () => {
    const envelope = protobuf.Writer.create()
      .uint32((2 << 3) | 2).fork()
      .uint32((1 << 3) | 2).string(LOG_ENTRY_TYPE_URL)
      .uint32((2 << 3) | 2).bytes(Buffer.from([(6 << 3) | 2, 50, 1]))
      .ldelim().finish();
    expect(decodeLogMessage(frames("logs.a.b", envelope))).toMatchObject({ ok: false, reason: "invalid_protobuf" });
  });
});

function encodeLogEntryWithNanos(nanos: number): Uint8Array {
  return protobuf.Writer.create().uint32((1 << 3) | 2).fork().uint32((1 << 3) | 0).int64(1).uint32((2 << 3) | 0).int32(nanos).ldelim().finish();
}

describe("names from the wire are sanitized", () => {
  // Names and the topics clients build: spec/wire/names.json and topics.json (spec.test.ts).
  it("parses both topic styles, sanitizing every segment", () => {
    expect(parseLogTopic("logs.api_gateway.auth")).toEqual({ style: "dot", subsystem: "api_gateway", module: "auth" });
    expect(parseLogTopic("logs/api_gateway/auth/v1")).toEqual({ style: "slash", subsystem: "api_gateway", module: "auth" });
    expect(parseLogTopic("logs/backend")).toEqual({ style: "slash", subsystem: "backend", module: "unknown" });
    expect(parseLogTopic("logs.a.b.c")).toEqual({ style: "dot", subsystem: "a", module: "b_c" });
    expect(parseLogTopic("events.a.b")).toBeUndefined();
  });

  it("a decoded entry's names are sanitized even when the payload carries hostile ones", () => {
    const bytes = encodeLogEntry(fullEntry({ subsystem: 'svc"} {x="', module: "m\n\u0000" }));
    const result = decodeLogMessage(frames("logs.a.b", bytes));
    expect(result.ok && [result.entry.subsystem, result.entry.module]).toEqual(["svc_x_", "m_"]);
  });
});
