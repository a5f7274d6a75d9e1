import { compressSync, uncompressSync } from "snappy";
import { describe, expect, it } from "vitest";
import { compressInto, hashTable, maxCompressedLength } from "../src/snappy.js";
import { decodeRawSnappy } from "./raw-snappy.js";

function compress(input: Uint8Array): Buffer {
  const out = Buffer.alloc(maxCompressedLength(input.length));
  return out.subarray(0, compressInto(input, out, hashTable()));
}

/** Deterministic bytes: `alphabet` letters from a linear congruential generator. */
function noise(length: number, alphabet = 256, seed = 7): Buffer {
  const out = Buffer.alloc(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    out[i] = (s >>> 16) % alphabet;
  }
  return out;
}

/** Log-like text: words in a pseudo-random order, as lines. */
function logText(length: number): Buffer {
  const words = "request handled user session cache miss upstream timeout retry status ok token query rows latency ms level=info service=api_gateway trace_id".split(" ");
  let text = "";
  let s = 1;
  while (text.length < length) {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    text += `${words[(s >>> 8) % words.length]}${s % 7 === 0 ? `\nseq=${s >>> 12} ` : " "}`;
  }
  return Buffer.from(text.slice(0, length));
}

describe("snappy raw block compressor", () => {
  const inputs: [string, Buffer][] = [
    ["empty", Buffer.alloc(0)],
    ["one byte", Buffer.from("a")],
    ["below the 15-byte input margin", Buffer.from("abcabcabcabcab")],
    ["at the margin", Buffer.from("abcabcabcabcabca")],
    ["a long run (copies of 64, 60 and the rest)", Buffer.alloc(100_000, 0x41)],
    ["incompressible (literals longer than 2^8 and 2^16 - 1)", noise(200_000)],
    ["a 64 KiB block boundary - 1", logText(65_535)],
    ["exactly one block", logText(65_536)],
    ["one byte into the second block", logText(65_537)],
    ["a megabyte of log lines", logText(1 << 20)],
    ["few distinct bytes (short copies with 1-byte offsets)", noise(50_000, 4)],
  ];

  it.each(inputs)("round-trips %s through the snappy package and the independent decoder", (_, input) => {
    const out = compress(input);
    expect(out.length).toBeLessThanOrEqual(maxCompressedLength(input.length));
    expect(Buffer.from(uncompressSync(out) as Buffer).equals(input)).toBe(true);
    expect(decodeRawSnappy(out).equals(input)).toBe(true);
  });

  it("compresses log text as well as the reference implementation", () => {
    const input = logText(1 << 20);
    const ours = compress(input).length;
    expect(ours).toBeLessThan(input.length * 0.45);
    expect(Math.abs(ours - compressSync(input).length)).toBeLessThan(input.length * 0.005);
  });
});
