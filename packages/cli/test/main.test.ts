import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LokiHandle } from "@aixcl/testkit";
import { requireComponent, startLoki } from "@aixcl/testkit";
import { nsAgo, until } from "./helpers.js";

// The built entry point, as ./aixcl runs it in the cli container and as a checkout runs it after `npm run build`.
const main = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const built = existsSync(main);
if (!built && process.env.CI === "true") throw new Error(`CI=true and ${main} is missing: npm test builds it with tsc -b first`);
if (!built) console.warn(`SKIPPED packages/cli/test/main.test.ts: ${main} is not built (npm run build)`);
const loki = requireComponent("loki");
if (loki.skip) console.warn(`SKIPPED packages/cli/test/main.test.ts: ${loki.skip}`);

function spawnMain(args: string[]) {
  const child = spawn(process.execPath, [main, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, out, exited };
}

describe.skipIf(!built || loki.skip !== undefined)("node packages/cli/dist/main.js", () => {
  let handle: LokiHandle;
  const selector = '{compose_project="aixcl", compose_service="main-test"}';

  beforeAll(async () => {
    handle = await startLoki();
    const values: [string, string][] = Array.from({ length: 2000 }, (_, i) => [nsAgo(60_000, i), `line ${i} ${"x".repeat(100)}`]);
    await handle.push([{ stream: { compose_project: "aixcl", compose_service: "main-test" }, values }]);
    await handle.waitFor(selector, 2000);
  });
  afterAll(async () => handle?.stop());

  it("logs tail --follow stops cleanly on Ctrl-C (SIGINT), exit status 0", async () => {
    const p = spawnMain(["logs", "tail", selector, "--follow", "--limit", "1", "--loki", handle.url]);
    await until(() => p.out.stderr.includes("following"), 15_000, "the tail to start");
    p.child.kill("SIGINT");
    expect(await p.exited).toBe(0);
    expect(p.out.stdout.trim().split("\n")).toHaveLength(1);
  });

  it("a reader that closes the pipe early (| head) is not an error", async () => {
    const p = spawnMain(["logs", "query", selector, "--limit", "2000", "--loki", handle.url]);
    await until(() => p.out.stdout.length > 0, 15_000, "the first output");
    p.child.stdout.destroy();
    expect(await p.exited).toBe(0);
    expect(p.out.stderr).not.toContain("EPIPE");
  });

  it("exit status 2 and the usage for a wrong command line", async () => {
    const p = spawnMain(["logs", "query"]);
    expect(await p.exited).toBe(2);
    expect(p.out.stderr).toContain("Usage:");
  });
});
