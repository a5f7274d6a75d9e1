export { startBus, startShippedConsumer, startTestBroker } from "./bus.js";
export type { BusHandle, StartBusOptions } from "./bus.js";
