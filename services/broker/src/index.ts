export { startBroker } from "./broker.js";
export type { BrokerOptions, RunningBroker } from "./broker.js";
export { BrokerMetrics, topicFamily } from "./metrics.js";
export { SubscriptionSet } from "./subscriptions.js";
