/**
 * Our provisioning loaded by a real Grafana server built from Grafana's Go module
 * (grafana/scripts/grafana-server.sh, which explains why that build is a 2023 main-branch commit and not 13.1).
 * Checked through Grafana's HTTP API: the datasources exist under their fixed uids, the dashboards sit in the
 * AIXCL folder, a dashboard's LogQL query through the provisioned Loki datasource returns data, and the alerts of
 * a real Alertmanager come through the provisioned Alertmanager datasource, as Grafana's alerting view asks.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, printComponentLogsOnFailure, requireComponents, startAlertmanager, tempDir, type AlertmanagerHandle } from "@aixcl/testkit";
import { PROJECT, SEARCH, startLogFixture, type LogFixture } from "./fixture.js";
import { checkedInDashboards, dashboardProviders, dashboardsDir, grafanaDir, panelQueries, renderQuery } from "./provisioning.js";

const script = join(grafanaDir, "scripts/grafana-server.sh");
function scriptOutput(flag: string): string | undefined {
  try {
    return execFileSync("bash", [script, flag], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}
const grafanaBin = scriptOutput("--path");
const grafanaHome = scriptOutput("--home");
const missing = grafanaBin && grafanaHome ? undefined : "the Grafana server is not built; run bash grafana/scripts/grafana-server.sh (~15 min)";
if (missing && process.env["CI"] === "true") throw new Error(`CI=true and ${missing}`);
const need = requireComponents("loki", "alertmanager");
const skip = missing ?? need.skip;
if (skip) console.warn(`[skipped] provisioning in a real Grafana server: ${skip}`);
printComponentLogsOnFailure();

describe.skipIf(skip !== undefined)("our provisioning in a real Grafana server", () => {
  let fx: LogFixture;
  let alertmanager: AlertmanagerHandle;
  let grafana: ChildProcess;
  let dir: string;
  let url: string;
  let log = "";
  const password = randomBytes(12).toString("hex");

  async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await fetch(`${url}${path}`, {
      ...init,
      headers: { Authorization: `Basic ${Buffer.from(`admin:${password}`).toString("base64")}`, "Content-Type": "application/json", ...init.headers },
      signal: AbortSignal.timeout(15_000),
    });
    const body = await res.text();
    if (!res.ok) throw new Error(`Grafana ${path} answered ${res.status}: ${body}`);
    return JSON.parse(body) as T;
  }

  beforeAll(async () => {
    fx = await startLogFixture();
    alertmanager = await startAlertmanager();
    dir = tempDir("grafana-server");
    // Our provisioning as shipped; only what docker-compose.yml provides differently is adapted: the
    // datasource URLs (compose service names) and the provider path (the compose mount of grafana/dashboards).
    const provisioning = join(dir, "provisioning");
    cpSync(join(grafanaDir, "provisioning"), provisioning, { recursive: true });
    const dsFile = join(provisioning, "datasources/datasources.yml");
    writeFileSync(
      dsFile,
      readFileSync(dsFile, "utf8").replace("http://loki:3100", fx.loki.url).replace("http://prometheus:9090", "http://127.0.0.1:9").replace("http://alertmanager:9093", alertmanager.url),
    );
    const providerFile = join(provisioning, "dashboards/dashboards.yml");
    const providerPath = dashboardProviders()[0]!.options.path;
    writeFileSync(providerFile, readFileSync(providerFile, "utf8").replace(`path: ${providerPath}`, `path: ${dashboardsDir}`));
    for (const sub of ["data", "plugins", "logs"]) mkdirSync(join(dir, sub));

    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    grafana = spawn(grafanaBin!, ["server", "--homepath", grafanaHome!], {
      cwd: dir,
      env: {
        ...process.env,
        GF_PATHS_DATA: join(dir, "data"),
        GF_PATHS_PLUGINS: join(dir, "plugins"),
        GF_PATHS_LOGS: join(dir, "logs"),
        GF_PATHS_PROVISIONING: provisioning,
        GF_SERVER_HTTP_ADDR: "127.0.0.1",
        GF_SERVER_HTTP_PORT: String(port),
        GF_SECURITY_ADMIN_PASSWORD: password,
        GF_ANALYTICS_REPORTING_ENABLED: "false",
        GF_ANALYTICS_CHECK_FOR_UPDATES: "false",
        GF_LOG_MODE: "console",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    process.once("exit", () => grafana.kill("SIGKILL"));
    grafana.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    grafana.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (grafana.exitCode !== null) throw new Error(`Grafana exited with ${grafana.exitCode}:\n${log.slice(-4000)}`);
      const ok = await fetch(`${url}/api/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`Grafana not healthy within 90 s:\n${log.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }, 180_000);

  afterAll(async () => {
    if (grafana && grafana.exitCode === null) {
      const exited = new Promise((r) => grafana.once("exit", r));
      grafana.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (grafana.exitCode === null) grafana.kill("SIGKILL");
    }
    await alertmanager?.stop();
    await fx?.stop();
  });

  it("provisions both datasources under their fixed uids, the trace links unescaped", async () => {
    const loki = await api<{ type: string; isDefault: boolean; jsonData: { derivedFields: { url: string }[]; maxLines: number; timeout: number } }>(
      "/api/datasources/uid/loki",
    );
    expect(loki).toMatchObject({ type: "loki", isDefault: true, jsonData: { maxLines: 5000, timeout: 60 } });
    // `$$` in the file is Grafana's escape for a literal `$`: the link must reach the browser as ${__value.raw}.
    for (const f of loki.jsonData.derivedFields) expect(f.url).toContain('"${__value.raw}"');
    const prometheus = await api<{ type: string; jsonData: { timeInterval: string } }>("/api/datasources/uid/prometheus");
    expect(prometheus).toMatchObject({ type: "prometheus", jsonData: { timeInterval: "15s" } });
  });

  it("provisions the Alertmanager datasource under its fixed uid, and Grafana's alerting API shows that Alertmanager's alerts", async () => {
    const ds = await api<{ type: string; jsonData: { implementation: string; handleGrafanaManagedAlerts: boolean } }>("/api/datasources/uid/alertmanager");
    expect(ds).toMatchObject({ type: "alertmanager", jsonData: { implementation: "prometheus", handleGrafanaManagedAlerts: false } });
    // What Loki's ruler sends when an application's errors burst.
    const res = await fetch(`${alertmanager.url}/api/v2/alerts`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify([{ labels: { alertname: "ApplicationErrorBurst", service: "grafana_test" }, annotations: { summary: "grafana_test logged 11 error entries" } }]),
    });
    expect(res.status).toBe(200);
    // The endpoint Grafana's Alerting > Alert groups view reads for an external Alertmanager.
    const alerts = await api<{ labels: Record<string, string>; annotations: Record<string, string> }[]>("/api/alertmanager/alertmanager/api/v2/alerts");
    expect(alerts.map((a) => a.labels)).toContainEqual({ alertname: "ApplicationErrorBurst", service: "grafana_test" });
  });

  it("provisions every dashboard into the AIXCL folder, read-only", async () => {
    const folder = await api<{ uid: string; title: string }>("/api/folders/aixcl");
    expect(folder.title).toBe("AIXCL");
    const found = await api<{ uid: string; title: string; folderUid: string }[]>("/api/search?type=dash-db&folderUIDs=aixcl");
    const shipped = [...checkedInDashboards().values()].map((d) => ({ uid: d.json.uid, title: d.json.title }));
    expect(found.map((d) => ({ uid: d.uid, title: d.title })).sort((a, b) => a.uid.localeCompare(b.uid))).toEqual(
      shipped.sort((a, b) => a.uid.localeCompare(b.uid)),
    );
    for (const { uid } of shipped) {
      const d = await api<{ meta: { provisioned: boolean; folderTitle: string; canSave: boolean } }>(`/api/dashboards/uid/${uid}`);
      expect(d.meta).toMatchObject({ provisioned: true, folderTitle: "AIXCL" });
    }
    expect(log).not.toMatch(/level=error[^\n]*(provisioning\.datasources|provisioning\.dashboard|Failed to load dashboard)/);
  });

  it("answers a dashboard's LogQL query through the provisioned Loki datasource", async () => {
    const d = [...checkedInDashboards().values()].find((x) => x.json.title === "AIXCL - Container Logs")!.json;
    const logsPanel = panelQueries(d).find((q) => q.panel === "Logs")!;
    const expr = renderQuery(logsPanel.expr, d.templating?.list ?? [], { project: [PROJECT], own: "-", service: { all: true }, container: { all: true }, stream: { all: true }, search: SEARCH });
    const body = {
      from: String(Date.now() - 15 * 60_000),
      to: String(Date.now() + 1000),
      queries: [{ refId: "A", datasource: { type: "loki", uid: logsPanel.datasourceUid }, expr, queryType: "range", maxLines: 100 }],
    };
    const res = await api<{ results: { A: { status?: number; error?: string; frames: { data: { values: unknown[][] } }[] } } }>("/api/ds/query", {
      method: "POST",
      body: JSON.stringify(body),
    });
    expect(res.results.A.error).toBeUndefined();
    const values = JSON.stringify(res.results.A.frames.map((f) => f.data.values));
    expect(values).toContain(`${SEARCH}: card declined`);
    expect(values).not.toContain("query_hash=");
  });
});
