import { loadMessageBusConfig, runService, serviceLog } from "@aixcl/shared";
import { startBroker } from "./broker.js";

const log = serviceLog("broker");

await runService({
  log,
  load: () => loadMessageBusConfig(),
  start: async (config) => {
    const broker = await startBroker(config, log);
    return { stop: () => broker.close() };
  },
});
