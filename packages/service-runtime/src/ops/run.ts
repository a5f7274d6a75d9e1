import { KeyFileError } from "@aixcl/client-logger";
import { ConfigError } from "../config/config.js";
import type { ServiceLog } from "./log.js";

/** Exit status for a configuration the service refuses (sysexits' EX_CONFIG), so scripts can tell it apart. */
export const EXIT_BAD_CONFIG = 78;

/** A started service: stop() on SIGTERM or SIGINT; reload(), when it has one, on SIGHUP. */
export interface RunningService {
  stop(): Promise<unknown>;
  reload?(): void;
}

export interface ServiceDefinition<C, R extends RunningService> {
  log: ServiceLog;
  /** Reads and validates the configuration; a ConfigError or KeyFileError ends the process with EXIT_BAD_CONFIG. */
  load(): C;
  start(config: C): Promise<R>;
}

/**
 * Runs a service's lifecycle: load the configuration, start, and on SIGTERM or SIGINT stop (which flushes)
 * and exit 0. Signal handlers are registered before the start, so a signal during start-up still ends in a
 * clean stop; a second signal exits at once with 1, for an operator who will not wait. SIGHUP (which would end a
 * Node process) reloads what the service can reload, and a failed reload keeps it running as it was.
 */
export async function runService<C, R extends RunningService>(service: ServiceDefinition<C, R>): Promise<void> {
  const { log } = service;
  let running: Promise<R> | undefined;
  let signals = 0;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (++signals > 1) {
        log.warn("second signal: exiting without finishing the stop", { signal });
        process.exit(1);
      }
      log.info("stopping", { signal });
      (running ?? Promise.reject(new Error("not started")))
        .then((r) => r.stop())
        .then(
          () => process.exit(0),
          (error: Error) => {
            log.error("unclean stop", { error: error.message });
            process.exit(1);
          },
        );
    });
  }
  process.on("SIGHUP", () => {
    void running?.then((r) => {
      if (!r.reload) return log.info("SIGHUP: nothing to reload");
      try {
        r.reload();
      } catch (error) {
        log.error("reload failed, running on as before", { error: (error as Error).message });
      }
    });
  });
  let config: C;
  try {
    config = service.load();
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof KeyFileError)) throw error;
    log.error("bad configuration, not starting", { error: error.message });
    process.exit(EXIT_BAD_CONFIG);
  }
  try {
    running = service.start(config);
    await running;
  } catch (error) {
    log.error("cannot start", { error: (error as Error).message });
    process.exit(1);
  }
}
