import { ConfigError, KeyFileError, loadMessageBusConfig, serviceLog } from "@aixcl/shared";
import type { RunningBroker } from "./broker.js";
import { startBroker } from "./broker.js";

const log = serviceLog("broker");

let broker: Promise<RunningBroker> | undefined;
let stopping = false;

// Registered before anything starts, so a signal during start-up still ends in a clean stop.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    (broker ?? Promise.reject(new Error("not started")))
      .then((running) => running.close())
      .then(
        () => process.exit(0),
        (error: Error) => {
          log.error("unclean stop", { error: error.message });
          process.exit(1);
        },
      );
  });
}

try {
  broker = startBroker(loadMessageBusConfig(), log);
  await broker;
} catch (error) {
  const bad = error instanceof ConfigError || error instanceof KeyFileError;
  log.error(bad ? "bad configuration, not starting" : "cannot start", { error: (error as Error).message });
  process.exit(bad ? 78 : 1);
}
