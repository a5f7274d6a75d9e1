import type { LogLevelName } from "./level.js";

/** A decoded aico.core.LogEntry with wire defaults filled in; names are sanitized (see sanitizeName). */
export interface LogEntry {
  /** Nanoseconds since the Unix epoch; bigint because nanosecond times exceed Number's exact range. */
  timestampNs: bigint;
  level: LogLevelName;
  subsystem: string;
  module: string;
  function: string;
  message: string;
  /** The topic the entry travelled on (the LogEntry's own `topic` field when the producer set one). */
  topic: string;
  metadata: Record<string, string>;
  filePath: string;
  lineNumber: number;
  userUuid: string;
  sessionId: string;
  traceId: string;
  extra: Record<string, string>;
}

/** A LogEntry as the wire's defaults leave it: every field empty, level "unknown". */
export function emptyLogEntry(): LogEntry {
  return {
    timestampNs: 0n,
    level: "unknown",
    subsystem: "",
    module: "",
    function: "",
    message: "",
    topic: "",
    metadata: {},
    filePath: "",
    lineNumber: 0,
    userUuid: "",
    sessionId: "",
    traceId: "",
    extra: {},
  };
}

/** Type URL AICO uses when it packs a LogEntry into the envelope's `any_payload`. */
export const LOG_ENTRY_TYPE_URL = "type.googleapis.com/aico.core.LogEntry";

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
