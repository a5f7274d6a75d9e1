import { runService, serviceLog } from "@aixcl/service-runtime";
import { loadConsumerConfig } from "./config.js";
import { startConsumer } from "./consumer.js";

await runService({
  log: serviceLog("log-consumer"),
  load: () => loadConsumerConfig(),
  start: (config) => startConsumer(config, { log: serviceLog("log-consumer", config.log_level) }),
});
