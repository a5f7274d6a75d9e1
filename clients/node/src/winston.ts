import TransportStream from "winston-transport";
import type { Logger, LoggerOptions, LoggerStats } from "@aixcl/client-logger";
import { createLogger } from "@aixcl/client-logger";
import type { ModuleOptions } from "./records.js";
import { recordModuleKey, winstonRecord } from "./records.js";
import { reportUndelivered } from "./undelivered.js";

/**
 * The logger's options and winston's. winston's `format` (a logform format) takes the name of the logger's wire
 * format option, which is `wireFormat` here. Without `module`, each record's module is its `moduleKey` field
 * ("module": `logger.child({ module: "billing" })`, `defaultMeta`), else "main".
 */
export type AixclTransportOptions = Omit<LoggerOptions, "format"> &
  ModuleOptions &
  TransportStream.TransportStreamOptions & {
    /** "aixcl" (default) or "aico": AICO's topic and envelope (LoggerOptions.format). */
    wireFormat?: LoggerOptions["format"];
  };

/**
 * winston transport: `new winston.transports.Console()`'s sibling, `new AixclTransport({ subsystem })`.
 * Logging never blocks (the logger queues and a pump sends). winston calls close() when the transport is removed
 * or the logger closed; await it (it resolves with the delivery stats) before the process exits.
 */
export class AixclTransport extends TransportStream {
  private readonly logger: Logger;
  private readonly moduleKey: string | undefined;
  private closing: Promise<LoggerStats> | undefined;
  /** Set by winston when the transport is added to a logger. */
  declare levels?: Record<string, number>;

  constructor(options: AixclTransportOptions) {
    super(options);
    this.moduleKey = recordModuleKey(options);
    const { format: _winstonFormat, wireFormat, moduleKey: _moduleKey, ...rest } = options;
    this.logger = createLogger({ ...rest, ...(wireFormat ? { format: wireFormat } : {}) });
  }

  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    const record = winstonRecord(info, { levels: this.levels, moduleKey: this.moduleKey });
    this.logger.log(record.level, record.message, record.extra, record.context);
    next();
  }

  /** Delivery so far: published, buffered, dropped by reason. */
  stats(): LoggerStats {
    return this.logger.stats();
  }

  /** Waits up to closeTimeoutMs for held entries to reach the bus; the same promise on every call. */
  override close(): Promise<LoggerStats> {
    this.closing ??= this.logger.close().then((stats) => reportUndelivered(stats, "winston"));
    return this.closing;
  }
}
