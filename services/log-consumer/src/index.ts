export { startConsumer } from "./consumer.js";
export type { ConsumerOptions, RunningConsumer, ShutdownSummary } from "./consumer.js";
export { consumerSchema, checkConsumerConfig, loadConsumerConfig, DEFAULT_CONSUMER_CONFIG_FILE } from "./config.js";
export type { ConsumerConfig } from "./config.js";
export { DROP_REASONS } from "./metrics.js";
export type { ConsumerMetrics } from "./metrics.js";
