import protobuf from "protobufjs";
import { compressSync } from "snappy";
import { describe, expect, it } from "vitest";
import { fullEntry } from "@aixcl/testkit";
import { PushRequestType } from "./push-proto.js";
import { ALL_METADATA } from "../src/mapping.js";
import { lokiEntries, sealedOf } from "./helpers.js";
import { decodeRawSnappy } from "./raw-snappy.js";

interface DecodedPush {
  streams: {
    labels: string;
    entries: { timestamp: { seconds: number | { toNumber(): number }; nanos: number }; line: string; structuredMetadata: { name: string; value: string }[] }[];
  }[];
}

// Every field as metadata: the encoders' work is the metadata pairs.
const entries = lokiEntries(
  [
    fullEntry({ message: "first ✓", timestampNs: 1_763_700_000_000_000_001n }),
    fullEntry({ message: "second", level: "error", timestampNs: 1_763_700_001_999_999_999n, metadata: {}, extra: {} }),
    fullEntry({ message: "third ".repeat(200), timestampNs: 1_763_700_002_000_000_000n }),
  ],
  {},
  ALL_METADATA,
);

describe("protobuf push body", () => {
  it("is a snappy raw block (not framed) holding Loki's PushRequest", () => {
    const { body, contentType } = sealedOf(entries).push;
    expect(contentType).toBe("application/x-protobuf");
    expect(body[0]).not.toBe(0xff); // the framing format's stream identifier chunk
    const raw = decodeRawSnappy(body);
    const decoded = PushRequestType.toObject(PushRequestType.decode(raw), { longs: Number }) as DecodedPush;
    expect(decoded.streams.map((s) => [s.labels, s.entries.length])).toEqual([
      ['{level="warning", service="api_gateway"}', 2],
      ['{level="error", service="api_gateway"}', 1],
    ]);
    const [first, third] = decoded.streams[0]?.entries ?? [];
    expect(first?.timestamp).toEqual({ seconds: 1_763_700_000, nanos: 1 });
    expect(first?.line).toBe("first ✓");
    expect(first?.structuredMetadata).toContainEqual({ name: "trace_id", value: "4bf92f3577b34da6a3ce929d0e0e4736" });
    expect(first?.structuredMetadata).toHaveLength(entries[0]?.metadata.length ?? -1);
    expect(third?.line).toBe("third ".repeat(200));
    expect(decoded.streams[1]?.entries[0]?.timestamp).toEqual({ seconds: 1_763_700_001, nanos: 999_999_999 });
    expect(body.length).toBeLessThan(raw.length); // the repeated line compresses
  });

  it("uses field numbers and wire types from Loki's push.proto", () => {
    const raw = decodeRawSnappy(sealedOf(entries).push.body);
    /** [field number, wire type] of each top-level field in a message. */
    const fields = (bytes: Uint8Array) => {
      const reader = protobuf.Reader.create(bytes);
      const out: [number, number, Uint8Array | undefined][] = [];
      while (reader.pos < reader.len) {
        const tag = reader.uint32();
        const inner = (tag & 7) === 2 ? reader.bytes() : (reader.skipType(tag & 7), undefined);
        out.push([tag >>> 3, tag & 7, inner]);
      }
      return out;
    };
    const request = fields(raw);
    expect(request.map(([f, w]) => [f, w])).toEqual([[1, 2], [1, 2]]); // PushRequest.streams
    const stream = fields(request[0]?.[2] ?? new Uint8Array());
    expect(stream.map(([f, w]) => [f, w])).toEqual([[1, 2], [2, 2], [2, 2]]); // labels, entries x2
    const entry = fields(stream[1]?.[2] ?? new Uint8Array());
    expect(entry[0]?.slice(0, 2)).toEqual([1, 2]); // timestamp
    expect(entry[1]?.slice(0, 2)).toEqual([2, 2]); // line
    expect(new Set(entry.slice(2).map(([f, w]) => `${f}/${w}`))).toEqual(new Set(["3/2"])); // structuredMetadata
    const pair = fields(entry[2]?.[2] ?? new Uint8Array());
    expect(pair.map(([f, w]) => [f, w])).toEqual([[1, 2], [2, 2]]); // name, value
    const timestamp = fields(entry[0]?.[2] ?? new Uint8Array());
    expect(timestamp.map(([f, w]) => [f, w])).toEqual([[1, 0], [2, 0]]); // seconds, nanos
  });

  it("uncompressed, is one snappy literal holding the same PushRequest (0- to 3-byte literal lengths)", () => {
    const bare = fullEntry({ subsystem: "a", message: "", metadata: {}, extra: {}, module: "", function: "", filePath: "", lineNumber: 0, topic: "", userUuid: "", sessionId: "", traceId: "" });
    const lots = (n: number) => Array.from({ length: n }, (_, i) => fullEntry({ message: `line ${i} `.repeat(20) }));
    const covered = new Set<number>();
    for (const some of [[bare], [{ ...bare, message: "x".repeat(100) }], lots(3), lots(400)]) {
      const mapped = lokiEntries(some);
      const stored = sealedOf(mapped, "protobuf", false).push.body;
      const raw = decodeRawSnappy(sealedOf(mapped, "protobuf", true).push.body);
      expect(decodeRawSnappy(stored).equals(raw)).toBe(true);
      // The varint length, then the literal's tag: (length - 1) << 2 below 60, else (59 + bytes of length - 1) << 2.
      const n = raw.length - 1;
      const lengthBytes = n < 60 ? 0 : n < 256 ? 1 : n < 65536 ? 2 : 3;
      covered.add(lengthBytes);
      expect(Buffer.from(stored.subarray(stored.length - raw.length)).equals(raw)).toBe(true);
      const tag = stored[stored.length - raw.length - 1 - lengthBytes] as number;
      expect([tag & 3, tag >> 2]).toEqual([0, lengthBytes === 0 ? n : 59 + lengthBytes]);
    }
    expect([...covered].sort()).toEqual([0, 1, 2, 3]);
  });

  it("the independent decoder agrees with the snappy library and refuses the framing format", () => {
    const text = Buffer.from("abcabcabcabc hello hello hello ".repeat(50));
    expect(decodeRawSnappy(compressSync(text)).equals(text)).toBe(true);
    const framed = Buffer.concat([Buffer.from([0xff, 0x06, 0x00, 0x00]), Buffer.from("sNaPpY")]);
    expect(() => decodeRawSnappy(framed)).toThrow();
  });
});

describe("JSON push body", () => {
  it("has label maps, nanosecond string timestamps and structured metadata objects", () => {
    const { body, contentType } = sealedOf(entries, "json").push;
    expect(contentType).toBe("application/json");
    const json = JSON.parse(Buffer.from(body).toString("utf8")) as { streams: { stream: Record<string, string>; values: unknown[][] }[] };
    expect(json.streams[0]?.stream).toEqual({ service: "api_gateway", level: "warning" });
    expect(json.streams[0]?.values[0]?.slice(0, 2)).toEqual(["1763700000000000001", "first ✓"]);
    expect(json.streams[0]?.values[0]?.[2]).toMatchObject({ module: "auth", meta_request_id: "r-42", extra_attempt: "3" });
    expect(json.streams[1]?.values[0]).toEqual(["1763700001999999999", "second", { module: "auth", function: "verify_token", file_path: "src/auth/verify.ts", line_number: "118", topic: "logs.api_gateway.auth", user_uuid: "5b0c3f0e-7a3c-4c1e-9f8a-0d1e2f3a4b5c", session_id: "sess-9", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" }]);
  });
});
