import { loadMessageBusConfig, runService, serviceLog } from "@aixcl/service-runtime";
import { startBroker } from "./broker.js";

const log = serviceLog("broker");

await runService({
  log,
  load: () => loadMessageBusConfig(),
  start: async (config) => {
    const broker = await startBroker(config, log);
    // SIGHUP: `./aixcl keys` admits a new client without a restart.
    return { stop: () => broker.close(), reload: () => void broker.reloadAllowList() };
  },
});
