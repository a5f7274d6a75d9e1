/**
 * Reads an OTLP/HTTP logs request (POST /otlp/v1/logs: ExportLogsServiceRequest, protobuf or JSON, optionally
 * gzip- or deflate-compressed) the way push-scan.ts reads a Loki push: each record's string body is handed over as a
 * byte range, so the proxy can time and count the OpenTelemetry Collector's lines with the same tally as Promtail's.
 */
import { gunzipSync, inflateSync } from "node:zlib";
import { Cursor } from "./proto-cursor.js";

export const OTLP_LOGS_PATH = "/otlp/v1/logs";

export interface OtlpScan {
  resources: number;
  records: number;
  /** Uncompressed request size. */
  bytes: number;
}

export interface OtlpHeaders {
  "content-type"?: string | undefined;
  "content-encoding"?: string | undefined;
}

/**
 * Calls onLine(buf, start, end) for the body of every log record whose body is a string (other records are counted,
 * not handed over); throws on a malformed request or an encoding it does not know.
 */
export function scanOtlpLogs(body: Buffer, headers: OtlpHeaders, onLine: (buf: Buffer, start: number, end: number) => void): OtlpScan {
  const raw = decompress(body, headers["content-encoding"]);
  const type = (headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type === "application/x-protobuf") return scanProtobuf(raw, onLine);
  if (type === "application/json") return scanJson(raw, onLine);
  throw new Error(`unsupported content-type "${headers["content-type"]}" (OTLP/HTTP is application/x-protobuf or application/json)`);
}

function decompress(body: Buffer, encoding: string | undefined): Buffer {
  switch ((encoding ?? "").trim().toLowerCase()) {
    case "":
    case "identity":
      return body;
    case "gzip":
      return gunzipSync(body);
    case "deflate":
      return inflateSync(body);
    default:
      throw new Error(`unsupported content-encoding "${encoding}"`);
  }
}

/**
 * ExportLogsServiceRequest.resource_logs = 1; ResourceLogs.scope_logs = 2; ScopeLogs.log_records = 2;
 * LogRecord.body = 5 (AnyValue); AnyValue.string_value = 1.
 */
function scanProtobuf(raw: Buffer, onLine: (buf: Buffer, start: number, end: number) => void): OtlpScan {
  let resources = 0;
  let records = 0;
  new Cursor(raw, 0, raw.length).each(1, (resource) => {
    resources++;
    resource.each(2, (scope) =>
      scope.each(2, (record) => {
        records++;
        record.each(5, (value) => value.each(1, (text) => onLine(raw, text.pos, text.end)));
      }),
    );
  });
  return { resources, records, bytes: raw.length };
}

interface JsonRequest {
  resourceLogs?: { scopeLogs?: { logRecords?: { body?: { stringValue?: unknown } }[] }[] }[];
}

/** OTLP/JSON: the same messages with lowerCamelCase field names. */
function scanJson(raw: Buffer, onLine: (buf: Buffer, start: number, end: number) => void): OtlpScan {
  const request = JSON.parse(raw.toString("utf8")) as JsonRequest;
  if (typeof request !== "object" || request === null || Array.isArray(request)) throw new Error("not an ExportLogsServiceRequest object");
  let resources = 0;
  let records = 0;
  for (const resource of request.resourceLogs ?? []) {
    resources++;
    for (const scope of resource.scopeLogs ?? []) {
      for (const record of scope.logRecords ?? []) {
        records++;
        const text = record.body?.stringValue;
        if (typeof text !== "string") continue;
        const buf = Buffer.from(text);
        onLine(buf, 0, buf.length);
      }
    }
  }
  return { resources, records, bytes: raw.length };
}
