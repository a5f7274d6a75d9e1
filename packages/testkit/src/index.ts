export { componentBinary, repoRoot, requireComponent, requireComponents, requiredBinary, runComponent, shippedConfig } from "./components.js";
export type { ComponentName, ComponentRequirement } from "./components.js";
export { freePort, printComponentLogsOnFailure } from "./process.js";
export { entryCount, queryRange, startLoki } from "./loki.js";
export type { LokiHandle, LokiStream, QueryRangeOptions, StartLokiOptions } from "./loki.js";
export { startPromtail } from "./promtail.js";
export type { PromtailHandle, StartPromtailOptions } from "./promtail.js";
export { mapScrapeTargets, startPrometheus } from "./prometheus.js";
export type { PrometheusHandle, ScrapeTarget, StartPrometheusOptions } from "./prometheus.js";
