/**
 * @aixcl/logging: publish structured logs on the aixcl-logging message bus from Node. The logger is the one the
 * repository's own services use (packages/shared/src/logger), re-exported here and bundled into this package;
 * the pino and winston transports are the subpaths `@aixcl/logging/pino` and `@aixcl/logging/winston`.
 */
export * from "@aixcl/shared/client";
