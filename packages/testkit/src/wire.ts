import { randomUUID } from "node:crypto";
import type { LogEntry } from "@aixcl/shared";
import { decodeLogMessage, emptyLogEntry, encodeAicoMessage, encodeLogEntry, logTopic, sanitizeName } from "@aixcl/shared";

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
