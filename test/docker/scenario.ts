/**
 * One ordered scenario: the tests of a describe block run in order on one stack, and once a step fails the steps
 * after it are skipped with a note naming it, instead of failing for a reason that is not theirs.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach } from "vitest";

export function orderedScenario(): void {
  let failed: string | undefined;
  beforeEach((context) => {
    if (failed !== undefined) {
      console.warn(`[docker tier] skipped "${context.task.name}": the earlier step "${failed}" failed`);
      context.skip();
    }
  });
  afterEach((context) => {
    if (context.task.result?.state === "fail") failed ??= context.task.name;
  });
}

/** Polls `check` every 250 ms until it holds; past the timeout it fails naming `what` (and `explain()`'s report). */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 120_000, explain?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${explain ? `\n${explain()}` : ""}`);
    await sleep(250);
  }
}
