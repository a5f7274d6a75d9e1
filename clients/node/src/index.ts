/**
 * @aixcl/logging: publish structured logs on the aixcl-logging message bus from Node. The logger is the one the
 * repository's own services use (packages/client-logger, with the wire format of packages/wire), re-exported here
 * and bundled into this package; the pino and winston transports are the subpaths `@aixcl/logging/pino` and
 * `@aixcl/logging/winston`.
 *
 * Named, not `export *`: @aixcl/client-logger also exports what the services take from it (the log throttle, the
 * key files' reading rules, Z85), which is not this package's API.
 */
export type { ClientKeys, Extra, LogContext, Logger, LoggerOptions, LoggerStats } from "@aixcl/client-logger";
export {
  BATCH_LIMITS,
  BoundedQueue,
  clientKeysFromEnv,
  createLogger,
  DEFAULT_MODULE,
  extraText,
  extraTexts,
  fitEntry,
  KeyFileError,
  loadClientKeys,
  MAX_MESSAGE_BYTES,
  maxPayloadBytes,
  readField,
  SendQueue,
  truncationMarker,
  unserializable,
} from "@aixcl/client-logger";
export type { LogLevelName } from "@aixcl/wire";
export { HOLD_TOPIC, LOG_LEVELS, sanitizeName } from "@aixcl/wire";
