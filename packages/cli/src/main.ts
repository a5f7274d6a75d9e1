#!/usr/bin/env node
// Entry point of the TypeScript subcommands; ./aixcl runs it inside the cli container, tests and developers
// run it from a checkout: node packages/cli/dist/main.js logs query '{service="loki"}'.
import { run } from "./run.js";

const controller = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => controller.abort());
}
// `./aixcl logs query ... | head` closes the pipe early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`error: ${error.stack ?? error.message}\n`);
    process.exitCode = 1;
  },
);
