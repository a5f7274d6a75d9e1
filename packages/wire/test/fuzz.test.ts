import { describe, expect, it } from "vitest";
import { fullEntry, seededRandom } from "@aixcl/testkit";
import type { DecodeResult } from "../src/index.js";
import { DECODE_ERROR_REASONS, decodeLogMessage, encodeAicoMessage, encodeLogEntry, LOG_LEVELS } from "../src/index.js";


const SAFE_NAME = /^[a-z0-9_-]{1,64}$/;

/** What must hold for any input: a known outcome, and an ok entry that is safe to turn into labels. Returns the violation. */
function violation(result: DecodeResult): string | undefined {
  if (!result.ok) return (DECODE_ERROR_REASONS as readonly string[]).includes(result.reason) ? undefined : `unknown reason ${result.reason}`;
  const { entry } = result;
  if (!SAFE_NAME.test(entry.subsystem) || !SAFE_NAME.test(entry.module)) return `unsafe name ${JSON.stringify([entry.subsystem, entry.module])}`;
  if (!(LOG_LEVELS as readonly string[]).includes(entry.level)) return `unknown level ${entry.level}`;
  if (entry.timestampNs < 0n) return `negative timestamp ${entry.timestampNs}`;
  if (typeof entry.message !== "string") return "message is not a string";
  return undefined;
}

const seeds = [
  encodeLogEntry(fullEntry()),
  encodeAicoMessage(fullEntry(), { messageId: "m", timestampNs: 1n, source: "s" }),
  encodeLogEntry(fullEntry({ message: "", extra: {}, metadata: {} })),
];
const topics = ["logs.api.auth", "logs/api/auth/v1", "logs.", "logs/", "logs.a", "logs/\u00ff\u0000/x", "metrics.x", ""];

function mutate(next: () => number, input: Uint8Array): Uint8Array {
  const bytes = Buffer.from(input);
  const pick = (n: number) => Math.floor(next() * n);
  switch (pick(6)) {
    case 0: // flip bits
      for (let i = 0, n = 1 + pick(8); i < n; i++) {
        const at = pick(bytes.length);
        bytes[at] = (bytes[at] ?? 0) ^ (1 << pick(8));
      }
      return bytes;
    case 1: // truncate
      return bytes.subarray(0, pick(bytes.length));
    case 2: // overwrite with random bytes
      for (let i = 0, n = 1 + pick(16); i < n; i++) bytes[pick(bytes.length)] = pick(256);
      return bytes;
    case 3: // insert random bytes
      return Buffer.concat([bytes.subarray(0, pick(bytes.length)), Buffer.from(Array.from({ length: 1 + pick(8) }, () => pick(256))), bytes.subarray(pick(bytes.length))]);
    case 4: // splice two seeds
      return Buffer.concat([bytes.subarray(0, pick(bytes.length)), Buffer.from(seeds[pick(seeds.length)] as Uint8Array).subarray(pick(40))]);
    default: // pure noise
      return Buffer.from(Array.from({ length: pick(200) }, () => pick(256)));
  }
}

describe("decoder fuzzing", () => {
  it("120,000 mutated and random messages: never a throw, every failure a known reason, every success label-safe", () => {
    const next = seededRandom(0xa1c0);
    const pick = (n: number) => Math.floor(next() * n);
    const outcomes = new Map<string, number>();
    const cases = 120_000;
    for (let i = 0; i < cases; i++) {
      const payload = mutate(next, seeds[pick(seeds.length)] as Uint8Array);
      const topic = Buffer.from(topics[pick(topics.length)] as string);
      // One case in ten gets a wrong frame count.
      const frames = pick(10) === 0 ? [topic, payload, payload].slice(0, pick(4)) : [topic, payload];
      let result: DecodeResult;
      try {
        result = decodeLogMessage(frames);
      } catch (error) {
        throw new Error(`case ${i} threw: ${(error as Error).message}`);
      }
      const broken = violation(result);
      if (broken) throw new Error(`case ${i}: ${broken}`);
      const key = result.ok ? "ok" : result.reason;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    const counted = [...outcomes.values()].reduce((a, b) => a + b, 0);
    expect(counted).toBe(cases);
    // The mutations reach every path: successes and each kind of failure.
    for (const reason of ["ok", "frame_count", "not_a_log_topic", "empty_payload", "invalid_protobuf"]) {
      expect(outcomes.get(reason) ?? 0).toBeGreaterThan(0);
    }
    console.log(`decoder fuzz: ${cases} cases`, Object.fromEntries(outcomes));
  });
});
