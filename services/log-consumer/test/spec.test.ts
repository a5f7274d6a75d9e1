import { describe, expect, it } from "vitest";
import type { LogEntry } from "@aixcl/wire";
import { decodeLogBatch, decodeLogMessage, isBatchTopic } from "@aixcl/wire";
import { readSpec } from "@aixcl/testkit";
import { EntryMapper } from "../src/mapping.js";

// What the consumer makes of messages from AICO's client and ours: spec/wire/loki.json (spec/wire/README.md).

interface LokiCase {
  name: string;
  producer: "aico" | "aixcl";
  topic: string;
  payload_hex: string;
  entries?: { labels: Record<string, string>; line: string; timestamp_ns: string; metadata: Record<string, string> }[];
  rejected?: string;
}

/** The consumer's two ways in: batches on aixcl.batch.*, single messages on logs.* and logs/*. */
function decode(topic: string, payload: Buffer): { entries: LogEntry[]; errors: string[] } {
  const frames = [Buffer.from(topic), payload];
  const entries: LogEntry[] = [];
  const errors: string[] = [];
  if (isBatchTopic(frames[0] as Buffer)) {
    decodeLogBatch(frames, (entry) => entries.push(entry), (reason) => errors.push(reason));
  } else {
    const result = decodeLogMessage(frames);
    if (result.ok) entries.push(result.entry);
    else errors.push(result.reason);
  }
  return { entries, errors };
}

describe("spec/wire/loki.json", () => {
  const spec = readSpec<{ cases: LokiCase[] }>("loki.json");
  it("has cases from AICO's own client", () => {
    expect(spec.cases.filter((c) => c.producer === "aico").length).toBeGreaterThan(0);
  });
  it.each(spec.cases.map((c) => [`${c.producer}: ${c.name}`, c] as const))("%s", (_, c) => {
    const { entries, errors } = decode(c.topic, Buffer.from(c.payload_hex, "hex"));
    if (c.rejected !== undefined) {
      expect([entries, errors]).toEqual([[], [c.rejected]]);
      return;
    }
    expect(errors).toEqual([]);
    const mapper = new EntryMapper({});
    const got = entries.map((entry) => {
      const mapped = mapper.map(entry);
      // A list of pairs: a name given twice would be lost in an object.
      expect(new Set(mapped.metadata.map(([name]) => name)).size).toBe(mapped.metadata.length);
      return { labels: Object.fromEntries(mapped.stream.labels), line: mapped.line, timestamp_ns: String(mapped.timestampNs), metadata: Object.fromEntries(mapped.metadata) };
    });
    expect(got).toEqual(c.entries);
  });
});
