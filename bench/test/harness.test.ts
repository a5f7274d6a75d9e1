import { decodeLogMessage } from "@aixcl/wire";
import { describe, expect, it } from "vitest";
import { Batcher } from "../../services/log-consumer/src/batch.js";
import { pushBuilder } from "../../services/log-consumer/src/push-builder.js";
import { ALL_METADATA, EntryMapper } from "../../services/log-consumer/src/mapping.js";
import { scanPush } from "../src/push-scan.js";
import { LatencyHistogram, parseMarks, SeqTally } from "../src/tally.js";
import { checkEncoding, EntryEncoder, fieldsOf, jsonLine, LEVELS, MAX_LINE_BYTES, messageOf, MIN_LINE_BYTES, SERVICES, shapeOf } from "../src/workload.js";

// The benchmark's own counting must be right for its loss, duplication and latency figures to mean anything.

describe("workload", () => {
  it("hand-encoded entries decode, with the consumer's decoder, to the entries meant", () => {
    expect(() => checkEncoding(new EntryEncoder("r1", 1000))).not.toThrow();
  });

  it("spreads over 20 services x 5 levels with lines of 80-400 bytes", () => {
    const streams = new Set<string>();
    const lengths: number[] = [];
    for (let seq = 0; seq < 20_000; seq++) {
      const { service, level } = shapeOf(seq);
      streams.add(`${service}/${level}`);
      lengths.push(Buffer.byteLength(messageOf("r1", 1000, seq, 1_763_700_000_000.123)));
    }
    expect(streams.size).toBe(SERVICES.length * LEVELS.length);
    expect(Math.min(...lengths)).toBeGreaterThanOrEqual(MIN_LINE_BYTES);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(MAX_LINE_BYTES);
  });

  it("the file shippers' JSON lines carry the same marks", () => {
    const line = Buffer.from(jsonLine("r1", 1000, 4242, 1_763_700_000_000.5));
    expect(JSON.parse(line.toString()).level).toBe(shapeOf(4242).level);
    expect(parseMarks(line, 0, line.length)).toEqual({ seq: 4242, tMs: 1_763_700_000_000.5 });
  });

  it("the JSON lines carry the message and, under the same names, the fields the consumer sends (all as metadata)", () => {
    const encoder = new EntryEncoder("r3", 1000);
    const mapper = new EntryMapper({}, ALL_METADATA);
    for (const seq of [0, 1, 77, 4242, 99_999]) {
      const t = 1_763_700_000_000.25 + seq;
      const decoded = decodeLogMessage(encoder.frames(seq, t));
      if (!decoded.ok) throw new Error(decoded.detail);
      const mapped = mapper.map(decoded.entry);
      const { level, service, msg, ...fields } = JSON.parse(jsonLine("r3", 1000, seq, t)) as Record<string, string>;
      expect({ level, service, msg }).toEqual({ level: mapped.stream.labels.get("level"), service: mapped.stream.labels.get("service"), msg: mapped.line });
      expect(fields).toEqual(Object.fromEntries(mapped.metadata));
      expect(fieldsOf(seq)).toEqual(fields);
    }
  });
});

describe("counting", () => {
  it("parseMarks reads the sequence number and publish time, and nothing from other lines", () => {
    const line = Buffer.from(`xx run=r1 blk=3 seq=3001 t=1763700000123.456 rest seq=9`);
    const marks = parseMarks(line, 0, line.length);
    expect(marks?.seq).toBe(3001);
    expect(marks?.tMs).toBeCloseTo(1_763_700_000_123.456, 3);
    expect(parseMarks(Buffer.from("no marks here"), 0, 13)).toBeUndefined();
    // Only inside [start, end): a mark after `end` belongs to the next line.
    expect(parseMarks(line, 0, 10)).toBeUndefined();
  });

  it("SeqTally counts lost, duplicated and foreign sequence numbers exactly", () => {
    const tally = new SeqTally(10);
    for (const seq of [0, 1, 2, 2, 2, 5, 9, 10, -1]) tally.add(seq);
    expect({ distinct: tally.distinct, lost: tally.lost, duplicated: tally.duplicated, foreign: tally.foreign }).toEqual({ distinct: 5, lost: 5, duplicated: 2, foreign: 2 });
    expect(tally.missing()).toEqual([3, 4, 6, 7, 8]);
  });

  it("LatencyHistogram quantiles land in the right bucket", () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 100; i++) h.record(i * 10); // 10 ms .. 1000 ms
    expect(h.quantile(0.5)).toBeCloseTo(500.1, 1);
    expect(h.quantile(0.99)).toBeCloseTo(990.1, 1);
    expect(h.maxMs).toBe(1000);
  });

  it.each([true, false])("scanPush finds every line of a push body the consumer encoded (compressed: %s)", (compress) => {
    const encoder = new EntryEncoder("r2", 1000);
    const mapper = new EntryMapper({});
    const batcher = new Batcher({ maxBytes: Number.MAX_SAFE_INTEGER, maxWaitMs: 1000 }, pushBuilder("protobuf"), () => compress);
    for (let seq = 0; seq < 500; seq++) {
      const decoded = decodeLogMessage(encoder.frames(seq, 1_763_700_000_000 + seq));
      if (!decoded.ok) throw new Error(decoded.detail);
      batcher.add(mapper.map(decoded.entry), 0);
    }
    const batch = batcher.flush();
    if (!batch) throw new Error("no batch");
    const seen: number[] = [];
    const scan = scanPush(Buffer.from(batch.push.body), (buf, start, end) => seen.push(parseMarks(buf, start, end)?.seq ?? -1));
    expect(scan.entries).toBe(500);
    expect(scan.streams).toBe(batch.streams.length);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });
});
