import build from "pino-abstract-transport";
import type { LoggerOptions } from "@aixcl/shared/client";
import { createLogger } from "@aixcl/shared/client";
import { pinoRecord } from "./records.js";
import { reportUndelivered } from "./undelivered.js";

/** `pino.transport({ target: "@aixcl/logging/pino", options })`: the logger's options (subsystem and module required). */
export type PinoTransportOptions = LoggerOptions;

/**
 * The pino transport. pino runs it in a worker thread and sends it its configuration (message and error keys), so
 * records map the same whatever keys the application chose. On pino's end (flush at exit, `transport.end()`) the
 * logger closes, waiting up to `closeTimeoutMs` for held entries to reach the bus.
 */
export default async function aixclTransport(options: PinoTransportOptions) {
  const logger = createLogger(options);
  return build(
    async (source) => {
      const keys = source as unknown as { messageKey?: string; errorKey?: string };
      const config = { messageKey: keys.messageKey ?? "msg", errorKey: keys.errorKey ?? "err" };
      for await (const line of source) {
        const record = pinoRecord(line as Record<string, unknown>, config);
        logger.log(record.level, record.message, record.extra, record.context);
      }
    },
    {
      expectPinoConfig: true,
      close: async () => {
        reportUndelivered(await logger.close(), "pino");
      },
    },
  );
}
