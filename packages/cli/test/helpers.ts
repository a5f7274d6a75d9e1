import { run } from "../src/index.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with captured output; `live` sees output as it is written (for --follow). */
export function startCli(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const controller = new AbortController();
  const out = { stdout: "", stderr: "" };
  const done = run(argv, {
    stdout: { write: (s: string) => (out.stdout += s) },
    stderr: { write: (s: string) => (out.stderr += s) },
    env,
    signal: controller.signal,
  }).then((code): CliResult => ({ code, ...out }));
  return { live: out, done, abort: () => controller.abort() };
}

export function runCli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startCli(argv, env).done;
}

export async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Unix nanoseconds as Loki's JSON push wants them, `offsetMs` from now. */
export function nsAgo(offsetMs: number, extraNs = 0): string {
  return String(BigInt(Date.now() - offsetMs) * 1_000_000n + BigInt(extraNs));
}
