import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LokiHandle } from "@aixcl/testkit";
import { freePort, requireComponent, startLoki } from "@aixcl/testkit";
import { nsAgo, runCli, startCli, until } from "./helpers.js";

const loki = requireComponent("loki");
if (loki.skip) console.warn(`SKIPPED packages/cli/test/loki.test.ts: ${loki.skip}`);

describe.skipIf(loki.skip !== undefined)("logs query and logs tail against the real Loki", () => {
  let handle: LokiHandle;
  const service = `svc-${randomUUID().slice(0, 8)}`;
  const app = `app_${randomUUID().slice(0, 8)}`;
  const selector = `{compose_project="aixcl", compose_service="${service}"}`;

  beforeAll(async () => {
    handle = await startLoki();
    await handle.push([
      {
        stream: { compose_project: "aixcl", compose_service: service, container: `aixcl-${service}-1`, stream: "stdout" },
        values: [
          [nsAgo(3000), "first line"],
          [nsAgo(2000), "second line"],
          [nsAgo(1000), "third line with error"],
        ],
      },
      { stream: { service: app, level: "error" }, values: [[nsAgo(1500), "payment failed", { trace_id: "trace-42", module: "checkout" }]] },
    ]);
    await handle.waitFor(selector, 3);
  });
  afterAll(async () => handle?.stop());

  it("logs query prints the entries oldest first with their source", async () => {
    const r = await runCli(["logs", "query", selector, "--loki", handle.url]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.split("  ")[1])).toEqual(["first line", "second line", "third line with error"]);
    expect(lines[0]).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z ${service}  first line$`));
  });

  it("logs query filters with LogQL and takes the Loki URL from LOKI_URL", async () => {
    const r = await runCli(["logs", "query", `${selector} |= "error"`], { LOKI_URL: handle.url });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    expect(r.stdout).toContain("third line with error");
  });

  it("logs query --json keeps stream labels and structured metadata apart", async () => {
    const r = await runCli(["logs", "query", `{service="${app}"}`, "--json", "--loki", handle.url]);
    expect(r.code).toBe(0);
    const entry = JSON.parse(r.stdout.trim()) as { labels: Record<string, string>; metadata: Record<string, string>; line: string; ts: string };
    // Stream labels only (Loki adds service_name by itself); the metadata is not folded into them.
    expect(entry.labels).toMatchObject({ service: app, level: "error" });
    expect(Object.keys(entry.labels)).not.toContain("trace_id");
    expect(entry.metadata).toMatchObject({ trace_id: "trace-42", module: "checkout" });
    expect(entry.line).toBe("payment failed");
    expect(entry.ts).toMatch(/^\d{19}$/);
  });

  it("logs query --limit keeps the newest entries and says so", async () => {
    const r = await runCli(["logs", "query", selector, "--limit", "2", "--loki", handle.url]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("first line");
    expect(r.stdout.trim().split("\n")).toHaveLength(2);
    expect(r.stderr).toContain("newest 2 entries shown");
  });

  it("logs query --since excludes older entries", async () => {
    await handle.push([{ stream: { compose_project: "aixcl", compose_service: `${service}-old` }, values: [[nsAgo(2 * 3600_000), "two hours ago"]] }]);
    const old = `{compose_service="${service}-old"}`;
    await handle.waitFor(old, 1, 10_000).catch(() => undefined);
    expect((await runCli(["logs", "query", old, "--since", "1h", "--loki", handle.url])).stdout).toBe("");
    expect((await runCli(["logs", "query", old, "--since", "3h", "--loki", handle.url])).stdout).toContain("two hours ago");
  });

  it("logs query runs metric queries and prints their series", async () => {
    const r = await runCli(["logs", "query", `sum by (compose_service) (count_over_time(${selector}[10m]))`, "--since", "5m", "--loki", handle.url]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.at(-1)).toMatch(new RegExp(`\\{compose_service="${service}"\\} 3$`));
  });

  it("a query Loki cannot parse exits 1 with Loki's reason", async () => {
    const r = await runCli(["logs", "query", '{compose_service="x"', "--loki", handle.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: Loki rejected the query: parse error/);
    expect(r.stdout).toBe("");
  });

  it("an unreachable Loki exits 1 naming the URL and what to check", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await runCli(["logs", "query", selector, "--loki", url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Loki at ${url} is not reachable (ECONNREFUSED). Is the stack running? Check with: ./aixcl status`);
  });

  it("a wrong command line exits 2 with the usage", async () => {
    const r = await runCli(["logs", "query", selector, "--follow"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: logs query: unknown option --follow/);
    expect(r.stderr).toContain("Usage:");
  });

  it("logs tail without --follow prints the newest entries and exits", async () => {
    const r = await runCli(["logs", "tail", selector, "--limit", "2", "--loki", handle.url]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n").map((l) => l.split("  ")[1])).toEqual(["second line", "third line with error"]);
  });

  it("logs tail refuses a metric query", async () => {
    const r = await runCli(["logs", "tail", `count_over_time(${selector}[1m])`, "--loki", handle.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("logs tail needs a log query");
  });

  it("logs tail --follow prints the backlog once, then new entries as they arrive, until stopped", async () => {
    const tail = startCli(["logs", "tail", selector, "--follow", "--loki", handle.url]);
    await until(() => tail.live.stderr.includes("following"), 10_000, "the tail to start");
    expect(tail.live.stdout.trim().split("\n")).toHaveLength(3);
    // Give the websocket a moment to be registered with the ingester before pushing.
    await new Promise((r) => setTimeout(r, 1000));
    await handle.push([{ stream: { compose_project: "aixcl", compose_service: service, container: `aixcl-${service}-1`, stream: "stdout" }, values: [[nsAgo(0), "live line"]] }]);
    await until(() => tail.live.stdout.includes("live line"), 15_000, "the live line");
    tail.abort();
    const r = await tail.done;
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => l.split("  ")[1]);
    expect(lines).toEqual(["first line", "second line", "third line with error", "live line"]);
  });
});
