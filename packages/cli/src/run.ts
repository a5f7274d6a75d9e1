import { parseArgs, UsageError, USAGE } from "./args.js";
import type { CliIO } from "./commands.js";
import { KeyFileError } from "@aixcl/client-logger";
import { AlertmanagerError } from "./alertmanager.js";
import { runAlerts, runBusTest, runKeys, runKeysList, runKeysRegister, runKeysRevoke, runQuery, runTail } from "./commands.js";
import { LokiError } from "./loki.js";

/** Exit statuses: 0 success, 1 the operation failed, 2 the command line is wrong. */
export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  let cmd;
  try {
    cmd = parseArgs(argv, io.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`error: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  try {
    switch (cmd.kind) {
      case "help":
        io.stdout.write(`${USAGE}\n`);
        return 0;
      case "query":
        return await runQuery(cmd, io);
      case "tail":
        return await runTail(cmd, io);
      case "bus-test":
        return await runBusTest(cmd, io);
      case "keys":
        return runKeys(cmd, io);
      case "keys-list":
        return runKeysList(cmd, io);
      case "keys-revoke":
        return runKeysRevoke(cmd, io);
      case "keys-register":
        return runKeysRegister(cmd, io);
      case "alerts":
        return await runAlerts(cmd, io);
    }
  } catch (error) {
    if (error instanceof LokiError || error instanceof AlertmanagerError || error instanceof KeyFileError) {
      io.stderr.write(`error: ${error.message}\n`);
      return 1;
    }
    if ((error as Error).name === "AbortError") return 0;
    throw error;
  }
}
