import { describe, expect, it } from "vitest";
import { fullEntry } from "@aixcl/testkit";
import type { LokiEntry } from "../src/mapping.js";
import { ALL_METADATA, DEFAULT_FIELD_PLACES, EntryMapper, staticLabelProblem } from "../src/mapping.js";

/** The encoders trust sizes: the line's UTF-8 length, then each metadata value's, and bytes adds them up. */
function expectConsistentSizes(mapped: LokiEntry): void {
  expect(mapped.sizes).toEqual([mapped.line, ...mapped.metadata.map(([, value]) => value)].map((text) => Buffer.byteLength(text)));
  const metadataBytes = mapped.metadata.reduce((sum, [name, value]) => sum + name.length + Buffer.byteLength(value), 0);
  expect(mapped.bytes).toBe(16 + Buffer.byteLength(mapped.line) + metadataBytes);
}

describe("EntryMapper", () => {
  it("with every field as metadata: labels, line, timestamp and structured metadata", () => {
    const mapped = new EntryMapper({ host: "laptop" }, ALL_METADATA).map(fullEntry());
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
    expectConsistentSizes(mapped);
  });

  it("by default keeps module as metadata and puts the rest, the ids too, at the end of the line in logfmt", () => {
    const mapped = new EntryMapper({}).map(fullEntry());
    expect(mapped.line).toBe(
      "token expired for user ✓ function=verify_token file_path=src/auth/verify.ts line_number=118 topic=logs.api_gateway.auth" +
        " user_uuid=5b0c3f0e-7a3c-4c1e-9f8a-0d1e2f3a4b5c session_id=sess-9 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 meta_request_id=r-42 meta_region_name=local extra_attempt=3 extra_path=/v1/login",
    );
    expect(Object.fromEntries(mapped.metadata)).toEqual({ module: "auth" });
    expectConsistentSizes(mapped);
  });

  it("drops what is set to drop", () => {
    const places = { ...DEFAULT_FIELD_PLACES, topic: "drop", meta: "drop", trace_id: "drop", session_id: "metadata" } as const;
    const mapped = new EntryMapper({}, places).map(fullEntry({ message: "m" }));
    expect(mapped.line).toBe("m function=verify_token file_path=src/auth/verify.ts line_number=118 user_uuid=5b0c3f0e-7a3c-4c1e-9f8a-0d1e2f3a4b5c extra_attempt=3 extra_path=/v1/login");
    expect(mapped.metadata.map(([name]) => name)).toEqual(["module", "session_id"]);
    expectConsistentSizes(mapped);
  });

  it("puts the fields on the first line of a multi-line message, the rest untouched", () => {
    const places = { ...ALL_METADATA, function: "line", line_number: "line" } as const;
    const mapper = new EntryMapper({}, places);
    const traceback = 'failed\nTraceback (most recent call last):\n  File "x.py", line 3\nValueError: bad';
    expect(mapper.map(fullEntry({ message: traceback })).line).toBe(
      'failed function=verify_token line_number=118\nTraceback (most recent call last):\n  File "x.py", line 3\nValueError: bad',
    );
    expect(mapper.map(fullEntry({ message: "\nsecond" })).line).toBe("function=verify_token line_number=118\nsecond");
    expect(mapper.map(fullEntry({ message: "" })).line).toBe("function=verify_token line_number=118");
  });

  it("quotes line values logfmt would misread, with JSON's escapes", () => {
    const places = { ...ALL_METADATA, extra: "line" } as const;
    const mapped = new EntryMapper({}, places).map(
      fullEntry({ message: "m", extra: { space: "a b", quote: 'say "hi"', eq: "a=b", back: "c:\\dir", nl: "x\ny", plain: "ü/ok-1.5", tab: "\t" } }),
    );
    expect(mapped.line).toBe(
      'm extra_space="a b" extra_quote="say \\"hi\\"" extra_eq="a=b" extra_back="c:\\\\dir" extra_nl="x\\ny" extra_plain=ü/ok-1.5 extra_tab="\\t"',
    );
    expectConsistentSizes(mapped);
  });

  it("keeps a field in metadata when the message itself holds its name=, so | logfmt cannot read the message's value for it", () => {
    const mapped = new EntryMapper({}).map(fullEntry({ message: "retry with function=other", metadata: {}, extra: { attempt: "3" } }));
    expect(mapped.line).toBe(
      "retry with function=other file_path=src/auth/verify.ts line_number=118 topic=logs.api_gateway.auth" +
        " user_uuid=5b0c3f0e-7a3c-4c1e-9f8a-0d1e2f3a4b5c session_id=sess-9 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 extra_attempt=3",
    );
    expect(mapped.metadata.find(([name]) => name === "function")).toEqual(["function", "verify_token"]);
    expectConsistentSizes(mapped);
  });

  it("leaves empty fields out of structured metadata and the line", () => {
    const mapped = new EntryMapper({}, ALL_METADATA).map(
      fullEntry({ function: "", filePath: "", lineNumber: 0, userUuid: "", sessionId: "", traceId: "", metadata: {}, extra: { empty: "" } }),
    );
    expect(mapped.metadata.map(([name]) => name)).toEqual(["module", "topic"]);
    const inLine = new EntryMapper({}).map(
      fullEntry({ message: "m", function: "", filePath: "", lineNumber: 0, topic: "", userUuid: "", sessionId: "", traceId: "", metadata: {}, extra: { empty: "" } }),
    );
    expect(inLine.line).toBe("m");
  });

  it("keeps keys that sanitize to the same name apart, in metadata and in the line", () => {
    const entry = fullEntry({ message: "m", metadata: { "a.b": "1", "a-b": "2", a_b: "3" }, extra: {} });
    const mapped = new EntryMapper({}, ALL_METADATA).map(entry);
    const meta = mapped.metadata.filter(([name]) => name.startsWith("meta_"));
    expect(meta).toEqual([["meta_a_b", "1"], ["meta_a_b_2", "2"], ["meta_a_b_3", "3"]]);
    expect(new EntryMapper({}).map(entry).line).toMatch(/ meta_a_b=1 meta_a_b_2=2 meta_a_b_3=3$/);
  });

  it("counts UTF-8 bytes of the line and metadata into the size", () => {
    const small = new EntryMapper({}).map(fullEntry({ message: "x", metadata: {}, extra: {} }));
    const wide = new EntryMapper({}).map(fullEntry({ message: "日".repeat(100), metadata: {}, extra: {} }));
    expect(wide.bytes - small.bytes).toBe(300 - 1);
    const wideField = new EntryMapper({}).map(fullEntry({ message: "x", metadata: {}, extra: { k: "日" } }));
    expectConsistentSizes(wideField);
  });

  it("makes text that is not valid UTF-8 well-formed", () => {
    const mapped = new EntryMapper({}, ALL_METADATA).map(fullEntry({ message: "bad\ud800", extra: { k: "\udc00" } }));
    expect(mapped.line).toBe("bad\ufffd");
    expect(mapped.metadata.find(([n]) => n === "extra_k")?.[1]).toBe("\ufffd");
    expect(new EntryMapper({}).map(fullEntry({ message: "bad\ud800", metadata: {}, extra: { k: "\udc00" } })).line).toMatch(/^bad\ufffd .* extra_k=\ufffd$/);
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
