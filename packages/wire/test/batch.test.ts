/**
 * Batches (aixcl.batch.<subsystem>.<module>, proto/aixcl/bus/log_batch.proto): the hand-written encoder against
 * protobufjs loading the .proto file, and decodeLogBatch against what decodeLogMessage makes of the same entries
 * sent one by one; a bad entry costs itself only, a broken frame what follows it, and both are counted.
 */
import { describe, expect, it } from "vitest";
import { fullEntry } from "@aixcl/testkit";
import type { DecodeErrorReason, LogEntry } from "../src/index.js";
import { BATCH_TOPIC_PREFIX, batchTopic, decodeLogBatch, decodeLogMessage, encodeLogBatch, encodeLogEntry, isBatchTopic } from "../src/index.js";
import { LogBatchType, LogEntryType } from "./proto.js";

const entries = (n: number) => Array.from({ length: n }, (_, i) => fullEntry({ message: `entry ${i}`, lineNumber: i + 1, topic: "" }));

function decodeAll(frames: Uint8Array[]) {
  const got: LogEntry[] = [];
  const errors: [DecodeErrorReason, string][] = [];
  const n = decodeLogBatch(frames, (e) => got.push(e), (reason, detail) => errors.push([reason, detail]));
  return { n, got, errors };
}

describe("log batches", () => {
  it("names the batch topic beside the single one, outside logs. and logs/", () => {
    expect(batchTopic("API Gateway", "auth")).toBe("aixcl.batch.api_gateway.auth");
    expect(isBatchTopic(Buffer.from("aixcl.batch.a.b"))).toBe(true);
    for (const other of ["aixcl.batch.", "aixcl.hold", "logs.a.b", "logs/a/b/v1", "aixcl.batcha.b"]) expect(isBatchTopic(Buffer.from(other)), other).toBe(false);
    expect(BATCH_TOPIC_PREFIX.startsWith("logs")).toBe(false);
  });

  it("encodes what protobufjs reads as aixcl.bus.LogBatch, entry for entry", () => {
    const batch = entries(5);
    const payload = encodeLogBatch(batch.map(encodeLogEntry));
    const read = LogBatchType.toObject(LogBatchType.decode(payload), { longs: Number }) as { entries: Record<string, unknown>[] };
    expect(read.entries).toHaveLength(5);
    expect(read.entries.map((e) => e.message)).toEqual(batch.map((e) => e.message));
    // Each element is exactly the single message's payload.
    const single = LogEntryType.toObject(LogEntryType.decode(encodeLogEntry(batch[2] as LogEntry)), { longs: Number });
    expect(read.entries[2]).toEqual(single);
    // Only the first `count` payloads.
    expect((LogBatchType.decode(encodeLogBatch(batch.map(encodeLogEntry), 2)) as unknown as { entries: unknown[] }).entries).toHaveLength(2);
  });

  it("decodes every entry as decodeLogMessage decodes it from logs.<subsystem>.<module>, in order", () => {
    const batch = entries(50);
    const { n, got, errors } = decodeAll([Buffer.from("aixcl.batch.api_gateway.auth"), encodeLogBatch(batch.map(encodeLogEntry))]);
    expect(errors).toEqual([]);
    expect(n).toBe(50);
    const singles = batch.map((e) => {
      const r = decodeLogMessage([Buffer.from("logs.api_gateway.auth"), encodeLogEntry(e)]);
      if (!r.ok) throw new Error(r.reason);
      return r.entry;
    });
    expect(got).toEqual(singles);
    expect(got[0]?.topic).toBe("logs.api_gateway.auth");
  });

  it("fills subsystem and module from the topic when the entries leave them out", () => {
    const { got } = decodeAll([Buffer.from("aixcl.batch.billing.jobs"), encodeLogBatch([encodeLogEntry(fullEntry({ subsystem: "", module: "" }))])]);
    expect([got[0]?.subsystem, got[0]?.module]).toEqual(["billing", "jobs"]);
  });

  it("skips and counts an entry that is not a LogEntry, keeps the others", () => {
    const good = entries(3).map(encodeLogEntry);
    // Field 2 length-delimited: an envelope, not a LogEntry, which a batch never carries.
    const bad = Buffer.from([0x12, 0x01, 0x00]);
    const { got, errors } = decodeAll([Buffer.from("aixcl.batch.a.b"), encodeLogBatch([good[0] as Uint8Array, bad, good[1] as Uint8Array, good[2] as Uint8Array])]);
    expect(got.map((e) => e.message)).toEqual(["entry 0", "entry 1", "entry 2"]);
    expect(errors.map(([reason, detail]) => [reason, detail.slice(0, 14)])).toEqual([["invalid_protobuf", "batch entry 2:"]]);
  });

  it("keeps what comes before a broken frame, counts one error, loses the rest", () => {
    const payload = encodeLogBatch(entries(4).map(encodeLogEntry));
    const { got, errors } = decodeAll([Buffer.from("aixcl.batch.a.b"), payload.subarray(0, payload.length - 10)]);
    expect(got.map((e) => e.message)).toEqual(["entry 0", "entry 1", "entry 2"]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.[0]).toBe("invalid_protobuf");
  });

  it.each([
    [[Buffer.from("aixcl.batch.a.b")], "frame_count"],
    [[Buffer.from("logs.a.b"), Buffer.from([0x0a, 0x00])], "not_a_log_topic"],
    [[Buffer.from("aixcl.batch.a.b"), Buffer.alloc(0)], "empty_payload"],
  ] as const)("refuses a message that is no batch: %#", (frames, reason) => {
    const { n, errors } = decodeAll([...frames]);
    expect(n).toBe(0);
    expect(errors.map(([r]) => r)).toEqual([reason]);
  });
});
