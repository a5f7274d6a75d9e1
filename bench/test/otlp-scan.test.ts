import { readFileSync } from "node:fs";
import { deflateSync, gzipSync } from "node:zlib";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { OTLP_LOGS_PATH, scanOtlpLogs } from "../src/otlp-scan.js";
import { bodyLines } from "../src/receiver.js";
import { parseMarks } from "../src/tally.js";
import { jsonLine } from "../src/workload.js";

// The proxy times and counts the OpenTelemetry Collector's lines from its OTLP requests: a record missed or misread
// here would show as loss or latency that is not the collector's.

const linesOf = (body: Buffer, headers: Parameters<typeof scanOtlpLogs>[1]) => {
  const lines: string[] = [];
  const scan = scanOtlpLogs(body, headers, (buf, start, end) => lines.push(buf.toString("utf8", start, end)));
  return { scan, lines };
};

/** The OTLP logs messages (opentelemetry/proto/logs/v1, common/v1, resource/v1), the fields a record can carry. */
const schema = protobuf.parse(`
  syntax = "proto3";
  message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
  message KeyValue { string key = 1; AnyValue value = 2; }
  message KeyValueList { repeated KeyValue values = 1; }
  message Resource { repeated KeyValue attributes = 1; }
  message InstrumentationScope { string name = 1; string version = 2; }
  message LogRecord { fixed64 time_unix_nano = 1; fixed64 observed_time_unix_nano = 11; int32 severity_number = 2; string severity_text = 3;
    AnyValue body = 5; repeated KeyValue attributes = 6; bytes trace_id = 9; bytes span_id = 10; }
  message ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; }
  message ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; }
  message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
`).root.lookupType("ExportLogsServiceRequest");

const text = (value: string) => ({ stringValue: value });
const attr = (key: string, value: string) => ({ key, value: text(value) });

/** Two resources, three scopes; string and non-string bodies; strings in attributes, resource and severity too. */
const request = {
  resourceLogs: [
    {
      resource: { attributes: [attr("service.name", "checkout")] },
      scopeLogs: [
        {
          scope: { name: "filelog", version: "1" },
          logRecords: [
            { timeUnixNano: 1, severityNumber: 9, severityText: "info", body: text("run=r blk=0 seq=0 t=1.5 first"), attributes: [attr("log.file.name", "a.log")] },
            { severityText: "seq=999 t=1 not a body", body: { kvlistValue: { values: [attr("msg", "seq=998 t=1 nested, not a line")] } } },
          ],
        },
        { scope: { name: "other" }, logRecords: [{ body: text("run=r blk=0 seq=1 t=2.5 second") }, { body: { intValue: 42 } }] },
      ],
    },
    { resource: { attributes: [attr("service.name", "seq=997 t=1 resource")] }, scopeLogs: [{ logRecords: [{ body: text("unicode ✓ seq=2 t=3.5 third"), traceId: Buffer.alloc(16, 1) }] }] },
  ],
};
const protobufBody = Buffer.from(schema.encode(schema.fromObject(request)).finish());
const EXPECTED_LINES = ["run=r blk=0 seq=0 t=1.5 first", "run=r blk=0 seq=1 t=2.5 second", "unicode ✓ seq=2 t=3.5 third"];

describe("scanOtlpLogs", () => {
  it("reads every record of a request the OpenTelemetry Collector 0.165.1 sent (gzip, protobuf), marks intact", () => {
    // Captured from the collector built by scripts/components.sh otelcol, with bench/otelcol/config.yaml, tailing
    // 20 of the benchmark's JSON lines (run "fixture", t = 1763700000000 + seq + 0.125) and one plain line, as they
    // were before they carried the entries' fields (jsonLine's level, service and message).
    const body = readFileSync(new URL("./fixtures/otelcol-0.165.1-logs.pb.gz", import.meta.url));
    const { scan, lines } = linesOf(body, { "content-type": "application/x-protobuf", "content-encoding": "gzip" });
    expect(scan.records).toBe(21);
    const expected = Array.from({ length: 20 }, (_, seq) => {
      const { level, service, msg } = JSON.parse(jsonLine("fixture", 1000, seq, 1_763_700_000_000 + seq + 0.125)) as Record<string, string>;
      return JSON.stringify({ level, service, msg });
    });
    expect(lines.sort()).toEqual([...expected, "plain line without marks"].sort());
    const marks = lines.map((l) => parseMarks(Buffer.from(l), 0, Buffer.byteLength(l))).filter((m) => m !== undefined);
    expect(marks.map((m) => m.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const m of marks) expect(m.tMs).toBeCloseTo(1_763_700_000_000 + m.seq + 0.125, 3);
  });

  it("hands over string bodies only: not attributes, resources, severity texts or non-string bodies", () => {
    const { scan, lines } = linesOf(protobufBody, { "content-type": "application/x-protobuf" });
    expect(scan).toEqual({ resources: 2, records: 5, bytes: protobufBody.length });
    expect(lines).toEqual(EXPECTED_LINES);
  });

  it("reads OTLP/JSON, and gzip or deflate bodies, to the same lines", () => {
    const json = Buffer.from(JSON.stringify(request));
    expect(linesOf(json, { "content-type": "application/json; charset=utf-8" }).lines).toEqual(EXPECTED_LINES);
    expect(linesOf(gzipSync(json), { "content-type": "application/json", "content-encoding": "gzip" }).lines).toEqual(EXPECTED_LINES);
    expect(linesOf(deflateSync(protobufBody), { "content-type": "application/x-protobuf", "content-encoding": "deflate" }).lines).toEqual(EXPECTED_LINES);
  });

  it("throws on a truncated request, an unknown encoding or content type", () => {
    const proto = { "content-type": "application/x-protobuf" };
    expect(() => linesOf(protobufBody.subarray(0, protobufBody.length - 7), proto)).toThrow(/past its message|truncated/);
    expect(() => linesOf(protobufBody, { ...proto, "content-encoding": "br" })).toThrow(/content-encoding "br"/);
    expect(() => linesOf(protobufBody, { "content-type": "text/plain" })).toThrow(/content-type "text\/plain"/);
    expect(() => linesOf(Buffer.from("[1]"), { "content-type": "application/json" })).toThrow(/ExportLogsServiceRequest/);
  });
});

describe("the proxy's bodyLines", () => {
  it("reads OTLP requests by their path, and refuses a path it does not know", () => {
    const seen: string[] = [];
    bodyLines(OTLP_LOGS_PATH, protobufBody, { "content-type": "application/x-protobuf" }, (buf, start, end) => seen.push(buf.toString("utf8", start, end)));
    expect(seen).toEqual(EXPECTED_LINES);
    expect(() => bodyLines("/v1/logs", protobufBody, {}, () => undefined)).toThrow(/\/v1\/logs/);
  });
});
