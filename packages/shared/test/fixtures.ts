import type { LogEntry } from "../src/index.js";

/** An entry with every LogEntry field set to a distinct, non-default value. */
export function fullEntry(overrides: Partial<LogEntry> = {}): LogEntry {
  return {
    timestampNs: 1_763_700_000_123_456_789n,
    level: "warning",
    subsystem: "api_gateway",
    module: "auth",
    function: "verify_token",
    message: "token expired for user ✓",
    topic: "logs.api_gateway.auth",
    metadata: { request_id: "r-42", region: "local" },
    filePath: "src/auth/verify.ts",
    lineNumber: 118,
    userUuid: "5b0c3f0e-7a3c-4c1e-9f8a-0d1e2f3a4b5c",
    sessionId: "sess-9",
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    extra: { attempt: "3", path: "/v1/login" },
    ...overrides,
  };
}
