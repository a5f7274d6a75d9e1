/**
 * One ordered scenario: the tests of a describe block run in order on one stack, and once a step fails the steps
 * after it are skipped with a note naming it, instead of failing for a reason that is not theirs.
 */
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
