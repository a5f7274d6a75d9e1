/**
 * What an application needs to publish its logs on the bus, and nothing the services need besides: the logger,
 * its key loading and the names it uses. @aixcl/logging (clients/node) re-exports this entry point and bundles it
 * into its package, so the logger has one implementation; keep its imports free of the services' dependencies
 * (yaml, prom-client), which the package does not carry.
 */
export * from "./logger/index.js";
export type { ClientKeys } from "./curve/keys.js";
export { clientKeysFromEnv, KeyFileError, loadClientKeys } from "./curve/keys.js";
export type { LogLevelName } from "./wire/level.js";
export { LOG_LEVELS } from "./wire/level.js";
export { HOLD_TOPIC, sanitizeName } from "./wire/topic.js";
