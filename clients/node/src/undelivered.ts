import { writeSync } from "node:fs";
import type { LoggerStats } from "@aixcl/client-logger";

/**
 * A transport's close() has nobody to return its stats to (pino and winston call it themselves), so what the
 * logger could not deliver is said on stderr, once, as Python's logging reports a handler's failures. The write
 * is synchronous: pino's worker thread exits right after its close, before an asynchronous one would be passed on.
 */
export function reportUndelivered(stats: LoggerStats, transport: string): LoggerStats {
  const { buffer_full: full, closed, too_large: tooLarge, unencodable } = stats.dropped;
  if (full + closed + tooLarge + unencodable > 0) {
    writeSync(
      2,
      `@aixcl/logging (${transport}): ${full + closed + tooLarge + unencodable} log entries not delivered: ${closed} still held at close (no subscriber on the bus in time), ` +
        `${full} dropped earlier because the buffer was full, ${tooLarge} too large for the bus, ${unencodable} not encodable; ${stats.published} delivered\n`,
    );
  }
  return stats;
}
