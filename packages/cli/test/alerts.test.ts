import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AlertmanagerHandle } from "@aixcl/testkit";
import { freePort, printComponentLogsOnFailure, requireComponent, startAlertmanager } from "@aixcl/testkit";
import { runCli } from "./helpers.js";

const am = requireComponent("alertmanager");
if (am.skip) console.warn(`SKIPPED packages/cli/test/alerts.test.ts: ${am.skip}`);
printComponentLogsOnFailure();

describe.skipIf(am.skip !== undefined)("alerts against the real Alertmanager, running the shipped config", () => {
  let handle: AlertmanagerHandle;
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${handle.url}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    expect(res.status, await res.text()).toBe(200);
  };

  beforeAll(async () => {
    handle = await startAlertmanager();
  });
  afterAll(async () => handle?.stop());

  it("says nothing is firing when Alertmanager holds no alert", async () => {
    const r = await runCli(["alerts", "--alertmanager", handle.url]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: `no alerts firing (${handle.url})\n` });
  });

  it("lists firing alerts oldest first with service, alert, since when and summary; silenced ones are only counted", async () => {
    const ago = (min: number) => new Date(Date.now() - min * 60_000).toISOString();
    // What Loki's ruler and Prometheus send: POST /api/v2/alerts.
    await post("/api/v2/alerts", [
      { labels: { alertname: "ContainerErrorBurst", compose_service: "ollama", severity: "warning" }, annotations: { summary: "ollama wrote 42 error lines in 5 minutes" }, startsAt: ago(3) },
      { labels: { alertname: "ApplicationErrorBurst", service: "api_gateway", severity: "warning" }, annotations: { summary: "api_gateway logged 11 error or critical entries on the bus in 5 minutes" }, startsAt: ago(65) },
      { labels: { alertname: "TargetDown", job: "promtail", instance: "promtail:9080" }, annotations: { summary: "Prometheus cannot reach promtail" }, startsAt: ago(10) },
      { labels: { alertname: "ApplicationErrorBurst", service: "noisy_batch" }, annotations: { summary: "silenced one" }, startsAt: ago(1) },
    ]);
    await post("/api/v2/silences", {
      matchers: [{ name: "service", value: "noisy_batch", isRegex: false, isEqual: true }],
      startsAt: ago(1),
      endsAt: new Date(Date.now() + 3_600_000).toISOString(),
      createdBy: "alerts.test",
      comment: "known noisy",
    });
    await expect.poll(async () => (await handle.alerts()).find((a) => a.labels.service === "noisy_batch")?.status.state, { timeout: 10_000 }).toBe("suppressed");

    const r = await runCli(["alerts"], { ALERTMANAGER_URL: handle.url });
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^SERVICE +ALERT +SINCE +SUMMARY$/);
    expect(lines.slice(1).map((l) => l.split(/ {2,}/).slice(0, 2))).toEqual([
      ["api_gateway", "ApplicationErrorBurst"],
      ["promtail", "TargetDown"],
      ["ollama", "ContainerErrorBurst"],
    ]);
    expect(lines[1]).toMatch(/ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(1h0[45]m ago\) +api_gateway logged 11 error or critical entries on the bus in 5 minutes$/);
    expect(lines[3]).toMatch(/\((2|3)m ago\) +ollama wrote 42 error lines in 5 minutes$/);
    // Columns line up: every row's ALERT starts where the header's does.
    const alertColumn = (lines[0] as string).indexOf("ALERT");
    for (const line of lines.slice(1)) expect(line.slice(alertColumn)).toMatch(/^[A-Z]/);
    expect(r.stdout).not.toContain("noisy_batch");
    expect(r.stderr).toBe("1 more silenced or inhibited, not shown (Alertmanager's web UI lists them)\n");
  });

  it("--json prints one object per firing alert with its labels and annotations", async () => {
    const r = await runCli(["alerts", "--json", "--alertmanager", handle.url]);
    expect(r.code).toBe(0);
    const alerts = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(alerts.map((a) => a.service)).toEqual(["api_gateway", "promtail", "ollama"]);
    expect(alerts[0]).toMatchObject({
      alertname: "ApplicationErrorBurst",
      summary: "api_gateway logged 11 error or critical entries on the bus in 5 minutes",
      labels: { alertname: "ApplicationErrorBurst", service: "api_gateway", severity: "warning" },
    });
    expect(Date.parse(alerts[0]?.startsAt as string)).toBeLessThan(Date.now() - 3_600_000);
  });

  it("an unreachable Alertmanager exits 1 naming the URL and what to check", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await runCli(["alerts", "--alertmanager", url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: Alertmanager at ${url} is not reachable (ECONNREFUSED). Is the stack running? Check with: ./aixcl status\n`);
  });

  it("an address that is not Alertmanager's API exits 1 with what it answered", async () => {
    const r = await runCli(["alerts", "--alertmanager", `${handle.url}/nothing-here`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: Alertmanager answered HTTP 404/);
  });
});
