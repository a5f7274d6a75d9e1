import { levelNumber } from "./level.js";
import type { LogEntry } from "./entry.js";
import { nsToTimestamp } from "./entry.js";
import { AicoMessageType, LOG_ENTRY_TYPE_URL, LogEntryType } from "./proto.js";

/** Encodes a bare aico.core.LogEntry: the payload our own clients send. */
export function encodeLogEntry(entry: LogEntry): Uint8Array {
  return LogEntryType.encode({
    timestamp: nsToTimestamp(entry.timestampNs),
    level: levelNumber(entry.level),
    subsystem: entry.subsystem,
    module: entry.module,
    function: entry.function,
    message: entry.message,
    topic: entry.topic,
    metadata: entry.metadata,
    filePath: entry.filePath,
    lineNumber: entry.lineNumber,
    userUuid: entry.userUuid,
    sessionId: entry.sessionId,
    traceId: entry.traceId,
    extra: entry.extra,
  }).finish();
}

export interface EnvelopeMetadata {
  messageId: string;
  timestampNs: bigint;
  source: string;
  attributes?: Record<string, string>;
}

/** Wraps a LogEntry the way real AICO producers do: an AicoMessage with the entry Any-packed. */
export function encodeAicoMessage(entry: LogEntry, meta: EnvelopeMetadata): Uint8Array {
  return AicoMessageType.encode({
    metadata: {
      messageId: meta.messageId,
      timestamp: nsToTimestamp(meta.timestampNs),
      source: meta.source,
      messageType: "aico.core.LogEntry",
      version: "v1",
      attributes: meta.attributes ?? {},
    },
    anyPayload: { type_url: LOG_ENTRY_TYPE_URL, value: encodeLogEntry(entry) },
  }).finish();
}
