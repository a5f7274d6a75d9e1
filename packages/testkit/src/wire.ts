import { randomUUID } from "node:crypto";
import type { LogEntry } from "@aixcl/wire";
import { decodeLogMessage, emptyLogEntry, encodeAicoMessage, encodeLogEntry, logTopic, sanitizeName } from "@aixcl/wire";

/** The two wire formats on the bus: ours (`logs.<subsystem>.<module>`, a bare LogEntry) and AICO's (`logs/<subsystem>/<module>/v1`, an AicoMessage envelope). */
export type WireFormat = "aixcl" | "aico";
export const WIRE_FORMATS: readonly WireFormat[] = ["aixcl", "aico"];

/** The topic a publisher of `format` uses. */
export function wireTopic(format: WireFormat, subsystem: string, module: string): string {
  return format === "aico" ? `logs/${sanitizeName(subsystem)}/${sanitizeName(module)}/v1` : logTopic(subsystem, module);
}

/** A log message exactly as a publisher of `format` sends it: [topic, payload]. */
export function logMessage(format: WireFormat, subsystem: string, module: string, message: string, timestampNs = BigInt(Date.now()) * 1_000_000n): [Buffer, Buffer] {
  const topic = wireTopic(format, subsystem, module);
  const entry: LogEntry = { ...emptyLogEntry(), timestampNs, level: "info", subsystem, module, message, topic };
  const payload = format === "aico" ? encodeAicoMessage(entry, { messageId: randomUUID(), timestampNs, source: subsystem }) : encodeLogEntry(entry);
  return [Buffer.from(topic), Buffer.from(payload)];
}

/** The message text of a log message off the bus; throws when it does not decode. */
export function messageText(frames: readonly Uint8Array[]): string {
  const result = decodeLogMessage(frames);
  if (!result.ok) throw new Error(`not a log message: ${result.reason}`);
  return result.entry.message;
}

/**
 * An entry with every LogEntry field set to a distinct, non-default value (a metadata key with a dot, which label
 * mapping must rewrite).
 */
export function fullEntry(overrides: Partial<LogEntry> = {}): LogEntry {
  return {
    timestampNs: 1_763_700_000_123_456_789n,
    level: "warning",
    subsystem: "api_gateway",
    module: "auth",
    function: "verify_token",
    message: "token expired for user ✓",
    topic: "logs.api_gateway.auth",
    metadata: { request_id: "r-42", "region.name": "local" },
    filePath: "src/auth/verify.ts",
    lineNumber: 118,
    userUuid: "5b0c3f0e-7a3c-4c1e-9f8a-0d1e2f3a4b5c",
    sessionId: "sess-9",
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    extra: { attempt: "3", path: "/v1/login" },
    ...overrides,
  };
}
