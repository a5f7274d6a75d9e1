import build from "pino-abstract-transport";
import type { LoggerOptions } from "@aixcl/client-logger";
import { createLogger } from "@aixcl/client-logger";
import type { ModuleOptions } from "./records.js";
import { pinoRecord, recordModuleKey } from "./records.js";
import { reportUndelivered } from "./undelivered.js";

/**
 * `pino.transport({ target: "@aixcl/logging/pino", options })`: the logger's options (subsystem required). Without
 * `module`, each record's module is its `moduleKey` field ("module": `logger.child({ module: "billing" })`), else
 * "main".
 */
export type PinoTransportOptions = LoggerOptions & ModuleOptions;

/**
 * The pino transport. pino runs it in a worker thread and sends it its configuration (message and error keys), so
 * records map the same whatever keys the application chose. On pino's end (flush at exit, `transport.end()`) the
 * logger closes, waiting up to `closeTimeoutMs` for held entries to reach the bus.
 */
export default async function aixclTransport(options: PinoTransportOptions) {
  const moduleKey = recordModuleKey(options);
  const { moduleKey: _moduleKey, ...loggerOptions } = options;
  const logger = createLogger(loggerOptions);
  return build(
    async (source) => {
      const keys = source as unknown as { messageKey?: string; errorKey?: string };
      const config = { messageKey: keys.messageKey ?? "msg", errorKey: keys.errorKey ?? "err", moduleKey };
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
