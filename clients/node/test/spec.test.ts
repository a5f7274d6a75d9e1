import { describe, expect, it } from "vitest";
import { extraTexts } from "@aixcl/shared/client";
import { readSpec } from "@aixcl/testkit";
import { pinoLevel, pinoRecord } from "../src/records.js";

// The protocol's cases, shared with clients/python/tests/test_spec.py; what they mean: spec/wire/README.md.

interface Named {
  name: string;
}

describe("spec/wire/levels.json: pino's levels", () => {
  const spec = readSpec<{ pino: (Named & { value: number; level: string })[] }>("levels.json");
  it.each(spec.pino.map((c) => [c.name, c] as const))("%s", (_, c) => {
    expect(pinoLevel(c.value)).toBe(c.level);
  });
});

interface RecordCase extends Named {
  record: { message: string; fields: Record<string, unknown> };
  entry: { message: string; trace_id: string; session_id: string; user_uuid: string; extra: Record<string, string> };
}

describe("spec/wire/records.json: a pino record's LogEntry fields", () => {
  const spec = readSpec<{ cases: RecordCase[] }>("records.json");
  it.each(spec.cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    // As the logger makes the entry from what the transport maps (createLogger's log()).
    const mapped = pinoRecord({ level: 30, msg: c.record.message, ...c.record.fields });
    expect({
      message: mapped.message,
      trace_id: mapped.context.traceId ?? "",
      session_id: mapped.context.sessionId ?? "",
      user_uuid: mapped.context.userUuid ?? "",
      extra: extraTexts(mapped.extra),
    }).toEqual(c.entry);
  });
});
