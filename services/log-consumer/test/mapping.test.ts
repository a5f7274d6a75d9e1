import { describe, expect, it } from "vitest";
import { fullEntry } from "@aixcl/testkit";
import { EntryMapper, staticLabelProblem } from "../src/mapping.js";

describe("EntryMapper", () => {
  it("maps every LogEntry field: labels, line, timestamp and structured metadata", () => {
    const mapped = new EntryMapper({ host: "laptop" }).map(fullEntry());
    expect(mapped.stream.text).toBe('{host="laptop", level="warning", service="api_gateway"}');
    expect(Object.fromEntries(mapped.stream.labels)).toEqual({ host: "laptop", service: "api_gateway", level: "warning" });
    expect(mapped.line).toBe("token expired for user ✓");
    expect(mapped.timestampNs).toBe(1_763_700_000_123_456_789n);
    expect(Object.fromEntries(mapped.metadata)).toEqual({
      module: "auth",
      function: "verify_token",
      file_path: "src/auth/verify.ts",
      line_number: "118",
      topic: "logs.api_gateway.auth",
      user_uuid: "5b0c3f0e-7a3c-4c1e-9f8a-0d1e2f3a4b5c",
      session_id: "sess-9",
      trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
      meta_request_id: "r-42",
      meta_region_name: "local",
      extra_attempt: "3",
      extra_path: "/v1/login",
    });
  });

  it("leaves empty fields out of structured metadata", () => {
    const mapped = new EntryMapper({}).map(
      fullEntry({ function: "", filePath: "", lineNumber: 0, userUuid: "", sessionId: "", traceId: "", metadata: {}, extra: { empty: "" } }),
    );
    expect(mapped.metadata.map(([name]) => name)).toEqual(["module", "topic"]);
  });

  it("keeps keys that sanitize to the same name apart", () => {
    const mapped = new EntryMapper({}).map(fullEntry({ metadata: { "a.b": "1", "a-b": "2", a_b: "3" }, extra: {} }));
    const meta = mapped.metadata.filter(([name]) => name.startsWith("meta_"));
    expect(meta).toEqual([["meta_a_b", "1"], ["meta_a_b_2", "2"], ["meta_a_b_3", "3"]]);
  });

  it("counts UTF-8 bytes of the line and metadata into the size", () => {
    const small = new EntryMapper({}).map(fullEntry({ message: "x", metadata: {}, extra: {} }));
    const wide = new EntryMapper({}).map(fullEntry({ message: "日".repeat(100), metadata: {}, extra: {} }));
    expect(wide.bytes - small.bytes).toBe(300 - 1);
  });

  it("makes text that is not valid UTF-8 well-formed", () => {
    const mapped = new EntryMapper({}).map(fullEntry({ message: "bad\ud800", extra: { k: "\udc00" } }));
    expect(mapped.line).toBe("bad\ufffd");
    expect(mapped.metadata.find(([n]) => n === "extra_k")?.[1]).toBe("\ufffd");
  });

  it("reuses one stream identity per service and level", () => {
    const mapper = new EntryMapper({});
    expect(mapper.map(fullEntry()).stream).toBe(mapper.map(fullEntry({ message: "other" })).stream);
    expect(mapper.map(fullEntry()).stream).not.toBe(mapper.map(fullEntry({ level: "error" })).stream);
  });

  it("refuses static labels that would shadow entry labels or are not label names", () => {
    expect(staticLabelProblem("service")).toMatch(/cannot be static/);
    expect(staticLabelProblem("level")).toMatch(/cannot be static/);
    expect(staticLabelProblem("bad-name")).toMatch(/label name/);
    expect(() => new EntryMapper({ level: "x" })).toThrow(/level/);
  });
});
