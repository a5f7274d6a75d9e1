import { describe, expect, it } from "vitest";
import { extraTexts } from "@aixcl/client-logger";
import { readSpec } from "@aixcl/testkit";
import type { MappedRecord } from "../src/records.js";
import { pinoLevel, pinoRecord, winstonLevel, winstonRecord } from "../src/records.js";

// The protocol's cases, shared with clients/python/tests/test_spec.py; what they mean: spec/wire/README.md.

interface Named {
  name: string;
}

describe("spec/wire/levels.json: pino's and winston's levels", () => {
  const spec = readSpec<{ pino: (Named & { value: number; level: string })[]; winston: (Named & { value: string; level: string })[] }>("levels.json");
  it.each(spec.pino.map((c) => [c.name, c] as const))("pino: %s", (_, c) => {
    expect(pinoLevel(c.value)).toBe(c.level);
  });
  it.each(spec.winston.map((c) => [c.name, c] as const))("winston: %s", (_, c) => {
    expect(winstonLevel(c.value)).toBe(c.level);
  });
});

interface RecordCase extends Named {
  record: { message: string; fields: Record<string, unknown> };
  entry: { message: string; trace_id: string; session_id: string; user_uuid: string; extra: Record<string, string> };
}

const transports: [string, (c: RecordCase) => MappedRecord][] = [
  ["pino", (c) => pinoRecord({ level: 30, msg: c.record.message, ...c.record.fields })],
  ["winston", (c) => winstonRecord({ level: "info", message: c.record.message, ...c.record.fields, [Symbol.for("level")]: "info" })],
];

describe("spec/wire/records.json: a pino or winston record's LogEntry fields", () => {
  const spec = readSpec<{ cases: RecordCase[] }>("records.json");
  const runs = transports.flatMap(([transport, map]) => spec.cases.map((c) => [`${transport}: ${c.name}`, map, c] as const));
  it.each(runs)("%s", (_, map, c) => {
    // As the logger makes the entry from what the transport maps (createLogger's log()).
    const mapped = map(c);
    expect({
      message: mapped.message,
      trace_id: mapped.context.traceId ?? "",
      session_id: mapped.context.sessionId ?? "",
      user_uuid: mapped.context.userUuid ?? "",
      extra: extraTexts(mapped.extra),
    }).toEqual(c.entry);
  });
});
