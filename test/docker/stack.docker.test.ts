/**
 * The Docker tier: the stack as a user runs it. A fresh checkout (no .env, no keys) is driven through ./aixcl on
 * real containers from docker-compose.yml, once as an unprivileged user and once as root (when this runs as
 * root, as CI does; otherwise as this user only), and checked from the outside: the published ports, LogQL,
 * Grafana's and Prometheus' APIs, and the docker CLI for fault injection.
 *
 * Each pass is one ordered scenario, named so: `./aixcl start` from a fresh checkout runs in beforeAll (so any one
 * test runs alone with -t), each test sets up what it checks, and the last ones (keys, clean) change the stack for
 * good. After a failed step the rest of the pass is skipped, naming that step, instead of failing in its wake.
 *
 * In CI the upstream images are local stand-ins (.ci/standin-images.sh): Loki, Promtail, Prometheus and Alertmanager
 * are the pinned versions' own binaries (Alertmanager's web UI is a placeholder page: its API is what this tier
 * uses); Grafana is the only one that is not: a 2023 development backend of Grafana's (it calls itself 9.2.0)
 * tagged as the pinned 13.1.3, with no frontend. So this tier checks Grafana's provisioning and queries through its
 * HTTP API only; Grafana 13's frontend, its rendering of our dashboards and Alertmanager's UI are not tested here.
 *
 * In CI (CI=true) it never skips: no engine is a failure. Elsewhere it skips, saying why, when no engine answers,
 * when the engine cannot pull the stack's images, or when the stack's project (aixcl-logging) already runs here (it
 * would be replaced). Run it alone: `npm run test:docker`.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Publisher } from "zeromq";
import { encodeLogEntry, nowNs } from "@aixcl/wire";
import { createLogger } from "@aixcl/client-logger";
import { busEntry, metricSample, queryInstant, queryRange, repoRoot } from "@aixcl/testkit";
import { missing, runCleanups } from "../../services/log-consumer/test/processes.js";
import { Checkout, currentUser, testerUser, type AixclUser } from "./checkout.js";
import { pythonFieldsProgram, pythonNumberedProgram, runNodeTransports, runPython, sendOtlp } from "./clients.js";
import { ALL_SOURCES, collect, describeLoss, LOKI, RATE, settled, startSources, type SourceKind } from "./load.js";
import { container, containerLog, docker, health, killServiceProcess, PROJECT, projectContainers, projectVolumes, restartCount, servicePid, tierProblem, unhealthyReport } from "./engine.js";
import { orderedScenario, until } from "./scenario.js";

const SERVICES = ["loki", "promtail", "prometheus", "alertmanager", "grafana", "broker", "log-consumer"];
const ALERTMANAGER = "http://127.0.0.1:9093";

interface FiringAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
}
const firing = async () => (await (await fetch(`${ALERTMANAGER}/api/v2/alerts?active=true&silenced=false&inhibited=false`)).json()) as FiringAlert[];

const skip = tierProblem("stack", repoRoot);
if (skip) console.warn(`[skipped] Docker tier: ${skip}`);

const users: AixclUser[] = skip ? [] : currentUser().uid === 0 ? [testerUser(), currentUser()] : [currentUser()];
if (!skip && currentUser().uid !== 0) console.warn("[docker tier] not root: the pass as root is left out (CI runs both)");

/** What `./aixcl start` printed as its own figure. */
function healthyAfter(stderr: string): number {
  const m = /All services healthy ([0-9.]+) s after \.\/aixcl start\./.exec(stderr);
  if (!m) throw new Error(`./aixcl start did not print its time to all-healthy:\n${stderr}`);
  return Number(m[1]);
}

const allHealthy = () => SERVICES.every((s) => health(s) === "running/healthy");

describe.skipIf(skip !== undefined).each(users)("one ordered scenario: the stack through ./aixcl, run by $name", (user) => {
  orderedScenario();
  let checkout: Checkout;
  let firstStart: Awaited<ReturnType<Checkout["run"]>>;
  const run = randomBytes(4).toString("hex");
  const figures: string[] = [];
  const figure = (text: string) => {
    figures.push(text);
    console.info(`[docker tier, ${user.name}] ${text}`);
  };

  beforeAll(async () => {
    checkout = new Checkout(user);
    firstStart = await checkout.run(["start"], 1_200_000);
  }, 1_200_000);
  /** Grafana's admin, with the password ./aixcl start generated into the checkout's .env. */
  const grafanaAuth = () => {
    const password = /^GRAFANA_ADMIN_PASSWORD=(.+)$/m.exec(readFileSync(join(checkout.dir, ".env"), "utf8"))?.[1] ?? "";
    return { Authorization: `Basic ${Buffer.from(`admin:${password}`).toString("base64")}` };
  };
  afterAll(async () => {
    await runCleanups();
    // Whatever happened, leave no project behind for the next pass or the next run.
    if (projectContainers().length > 0) await checkout.run(["clean", "--volumes", "--yes"], 180_000);
    console.info(`[docker tier, ${user.name}] figures:\n  ${figures.join("\n  ")}`);
  }, 240_000);

  it("./aixcl start from a fresh checkout (no .env) reaches all-healthy and prints the time it took", () => {
    const r = firstStart;
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("Created .env with a generated Grafana admin password");
    expect(allHealthy()).toBe(true);
    const built = r.stderr.includes("Building images");
    figure(`first start (${built ? "with image builds" : "images already built"}): all-healthy ${healthyAfter(r.stderr)} s by ./aixcl, ${(r.ms / 1000).toFixed(1)} s wall`);
  });

  it("./aixcl status: every service healthy, exit 0", async () => {
    const r = await checkout.run(["status"]);
    expect(r.status, r.stderr).toBe(0);
    for (const s of SERVICES) expect(r.stdout).toMatch(new RegExp(`^${s}\\s+running\\s+healthy\\s`, "m"));
  });

  it("./aixcl bus test: a LogEntry goes through broker and consumer into Loki", async () => {
    const r = await checkout.run(["bus", "test"], 120_000);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^OK: bus-test-\S+ went producer -> broker/m);
  });

  it("./aixcl logs query and logs tail --follow against the running stack", { timeout: 180_000 }, async () => {
    // Promtail ships the broker's first lines within seconds of the start; ask until they are there.
    await until("the broker's start line in logs query", async () => {
      const query = await checkout.run(["logs", "query", '{compose_service="broker"}', "--since", "10m"], 120_000);
      expect(query.status, query.stderr).toBe(0);
      return query.stdout.includes("broker started");
    }, 60_000);

    const service = `dockertier_tail_${run}`;
    const tail = checkout.spawn(["logs", "tail", `{service="${service}"}`, "--follow"]);
    await until("logs tail to follow", () => tail.stderr.includes("following"), 120_000);
    const logger = createLogger({ subsystem: service, module: "tail", endpoint: "tcp://127.0.0.1:5555" });
    logger.info(`followed line ${run}`);
    await logger.close();
    await until("the line in logs tail's output", () => tail.stdout.includes(`followed line ${run}`), 60_000);
    tail.interrupt();
    expect(await tail.exited).not.toBeNull();
    // Ctrl-C leaves no one-off container behind.
    await until("the cli container to go", () => !projectContainers().some((c) => c.includes("-cli-run-")), 30_000);
  });

  it("Promtail ships every service's lines with the labels the dashboards use, and keeps Loki's query log out", { timeout: 120_000 }, async () => {
    await until("a stream from every service", async () => {
      const params = new URLSearchParams({ "match[]": `{compose_project="${PROJECT}"}`, start: `${BigInt(Date.now() - 3600_000) * 1_000_000n}` });
      const series = ((await (await fetch(`${LOKI}/loki/api/v1/series?${params}`)).json()) as { data: Record<string, string>[] }).data;
      const services = new Set(series.map((s) => s["compose_service"]));
      for (const s of series) expect(Object.keys(s)).toEqual(expect.arrayContaining(["container", "compose_project", "compose_service", "stream"]));
      return SERVICES.every((s) => services.has(s));
    });
    // Every query writes Loki's per-query lines (engine.go, metrics.go with the query text); the queries above
    // made many. They are in the container's own log, not in Loki, and Promtail counts them.
    expect(containerLog("loki")).toMatch(/caller=metrics\.go:\d+ .*query=/);
    const [shipped] = await queryInstant(LOKI, 'sum(count_over_time({compose_service="loki"} |~ "caller=(metrics|engine)[.]go" [1h]))');
    expect(shipped?.value ?? 0).toBe(0);
    expect(await metricSample("http://127.0.0.1:9080", 'logentry_dropped_lines_total{reason="loki_query_log"}')).toBeGreaterThan(0);
  });

  it("Grafana lists both datasources by uid and the dashboards in folder AIXCL, and a dashboard query returns data", { timeout: 60_000 }, async () => {
    const auth = grafanaAuth();
    const grafana = "http://127.0.0.1:3000";
    const ds = (await (await fetch(`${grafana}/api/datasources`, { headers: auth })).json()) as { uid: string; type: string }[];
    expect(ds.map((d) => [d.uid, d.type])).toEqual(expect.arrayContaining([["loki", "loki"], ["prometheus", "prometheus"]]));
    const dashboards = (await (await fetch(`${grafana}/api/search?type=dash-db`, { headers: auth })).json()) as { uid: string; folderTitle?: string }[];
    const shipped = ["application-logs", "container-logs", "logging-pipeline"].map((f) => (JSON.parse(readFileSync(join(repoRoot, `grafana/dashboards/${f}.json`), "utf8")) as { uid: string }).uid);
    for (const uid of shipped) expect(dashboards.find((d) => d.uid === uid)?.folderTitle, uid).toBe("AIXCL");

    // The Container Logs dashboard's log panel, its variables set to everything of the project.
    const board = JSON.parse(readFileSync(join(repoRoot, "grafana/dashboards/container-logs.json"), "utf8")) as { panels: { title: string; targets?: { expr: string }[] }[] };
    // The stack's own project picked, "shown", everything else All.
    const expr = (board.panels.find((p) => p.title === "Logs")?.targets?.[0]?.expr ?? "")
      .replaceAll("$project", PROJECT)
      .replaceAll("$own", "-")
      .replace(/\$(service|container|stream)/g, ".+")
      .replaceAll("$search", "");
    expect(expr).toContain(`compose_project=~"${PROJECT}"`);
    const res = await fetch(`${grafana}/api/ds/query`, {
      method: "POST",
      headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ from: "now-1h", to: "now", queries: [{ refId: "A", datasource: { uid: "loki", type: "loki" }, expr, queryType: "range", maxLines: 100 }] }),
    });
    const body = (await res.json()) as { results: { A: { frames: { data: { values: unknown[][] } }[]; error?: string } } };
    expect(res.status, JSON.stringify(body)).toBe(200);
    const rows = body.results.A.frames.reduce((n, f) => n + (f.data.values[0]?.length ?? 0), 0);
    expect(rows).toBeGreaterThan(0);
  });

  it("Prometheus reports every target up", { timeout: 120_000 }, async () => {
    const jobs = ["prometheus", "loki", "promtail", "alertmanager", "broker", "log-consumer", "grafana"];
    await until("every target up", async () => {
      const body = (await (await fetch("http://127.0.0.1:9090/api/v1/targets?state=active")).json()) as { data: { activeTargets: { labels: { job: string }; health: string }[] } };
      const up = new Set(body.data.activeTargets.filter((t) => t.health === "up").map((t) => t.labels.job));
      return jobs.every((j) => up.has(j));
    });
  });

  it("a second log consumer container on the stack's spool volume is refused at start, naming the directory; the first goes on", { timeout: 120_000 }, async () => {
    const uid = /^AIXCL_UID=(\d+)$/m.exec(readFileSync(join(checkout.dir, ".env"), "utf8"))?.[1] ?? "1000";
    const second = spawnSync(
      "docker",
      ["run", "--rm", "--user", `${uid}:${uid}`, "--volume", `${PROJECT}_log-consumer-spool:/var/lib/log-consumer`, "--env", "LOG_CONSUMER_SPOOL_DIR=/var/lib/log-consumer/spool",
        "--env", "MESSAGE_BUS_HOST=127.0.0.1", "--env", "LOKI_URL=http://127.0.0.1:3100", "aixcl-log-consumer:local"],
      { encoding: "utf8", timeout: 90_000 },
    );
    expect(second.status, `${second.stdout}${second.stderr}`).not.toBe(0);
    expect(`${second.stdout}${second.stderr}`).toMatch(/spool\.dir \/var\/lib\/log-consumer\/spool: in use by another log consumer/);
    expect(health("log-consumer")).toBe("running/healthy");
    const bus = await checkout.run(["bus", "test"], 120_000);
    expect(bus.status, `${bus.stdout}${bus.stderr}`).toBe(0);
  });

  it("Python's logging through BusHandler (clients/python, pip-installed) on the host: every field arrives", { timeout: 180_000 }, async () => {
    const service = `dockertier_py_${run}`;
    const py = await runPython(pythonFieldsProgram(service));
    expect(py.status, py.stderr).toBe(0);
    await until("both records in Loki", async () => (await queryRange(LOKI, `{service="${service}"}`)).flatMap((s) => s.values).length === 2, 60_000);
    const [failed] = (await queryRange(LOKI, `{service="${service}", level="error"}`)).flatMap((s) => s.values);
    const entry = busEntry(failed?.[1] ?? "", failed?.[2]);
    expect(entry.message).toMatch(/^charging invoice-1234 failed\nTraceback \(most recent call last\):\n[\s\S]*ZeroDivisionError: division by zero$/);
    expect(entry.fields).toMatchObject({ module: "billing", function: "charge", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736", meta_logger: "shop.billing", extra_invoice: "1234", topic: `logs.${service}.billing` });
  });

  it("pino and winston through the packed @aixcl/logging, installed in a project outside the repository", { timeout: 300_000 }, async () => {
    const service = `dockertier_node_${run}`;
    for (const app of await runNodeTransports(service)) expect(app.status, app.stderr).toBe(0);
    await until("both lines in Loki", async () => (await queryRange(LOKI, `{service="${service}"}`)).flatMap((s) => s.values).length === 2, 60_000);
    const lines = Object.fromEntries(
      (await queryRange(LOKI, `{service="${service}"}`)).flatMap((s) => s.values.map((v) => busEntry(v[1], v[2])).map(({ message, fields }) => [message, { level: s.stream["level"], ...fields }])),
    );
    expect(lines["pino says"]).toMatchObject({ level: "warning", module: "pino", extra_order: "7" });
    expect(lines["winston says"]).toMatchObject({ level: "error", module: "winston", extra_order: "8" });
  });

  it("an OpenTelemetry SDK into Loki's published OTLP endpoint: otlp_config's labels; the Application Logs dashboard shows OTLP and bus lines through Grafana", { timeout: 120_000 }, async () => {
    const service = `dockertier_otlp_${run}`;
    await sendOtlp(LOKI, service, 5);
    await until("the OTLP records in Loki", async () => (await queryRange(LOKI, `{service_name="${service}"}`)).flatMap((s) => s.values).length === 5, 60_000);
    const [stream] = await queryRange(LOKI, `{service_name="${service}"}`);
    // service.name and service.namespace index; service.instance.id (a new stream per process) does not.
    expect(stream?.stream).toEqual({ service_name: service, service_namespace: "shop" });
    expect(stream?.values[0]?.[2]).toMatchObject({ service_instance_id: "pid-123", order: expect.any(String) });

    const board = JSON.parse(readFileSync(join(repoRoot, "grafana/dashboards/application-logs.json"), "utf8")) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const bus = `dockertier_py_${run}`;
    const expr = (board.panels.find((p) => p.title === "Logs")?.targets?.[0]?.expr ?? "")
      .replaceAll("$service", `${service}|${bus}`)
      .replaceAll("$level", ".+")
      .replaceAll("$module", "")
      .replaceAll("$search", "");
    const res = await fetch("http://127.0.0.1:3000/api/ds/query", {
      method: "POST",
      headers: { ...grafanaAuth(), "Content-Type": "application/json" },
      body: JSON.stringify({ from: "now-1h", to: "now", queries: [{ refId: "A", datasource: { uid: "loki", type: "loki" }, expr, queryType: "range", maxLines: 100 }] }),
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    expect(text).toContain("otlp record 0");
    expect(text).toContain("charging invoice-1234 failed");
  });

  it("the alert rules are loaded: Loki's ruler (read-only rules mount) and Prometheus' pipeline rules, sent to Alertmanager", { timeout: 120_000 }, async () => {
    type Groups = { data: { groups: { rules: { name: string; health: string }[] }[] } };
    const rules = async (url: string) => ((await (await fetch(url)).json()) as Groups).data.groups.flatMap((g) => g.rules);
    // Health is "unknown" until the first evaluation, a minute after the start at most.
    await until("Loki's two log rules evaluated", async () => {
      const logRules = await rules(`${LOKI}/prometheus/api/v1/rules`);
      expect(logRules.map((r) => r.name).sort()).toEqual(["ApplicationErrorBurst", "ContainerErrorBurst"]);
      return logRules.every((r) => r.health === "ok");
    }, 90_000);
    expect(containerLog("loki")).not.toMatch(/permission denied|unable to list rules/);
    await until("every pipeline rule evaluated", async () => {
      const pipeline = await rules("http://127.0.0.1:9090/api/v1/rules");
      const names = pipeline.map((r) => r.name);
      return ["TargetDown", "LogConsumerDroppingEntries", "BrokerDroppingMessages", "BrokerBacklogFilling", "BrokerHoldingLogs"].every((n) => names.includes(n)) && pipeline.every((r) => r.health === "ok");
    });
    const managers = (await (await fetch("http://127.0.0.1:9090/api/v1/alertmanagers")).json()) as { data: { activeAlertmanagers: { url: string }[] } };
    expect(managers.data.activeAlertmanagers.map((a) => a.url)).toEqual(["http://alertmanager:9093/api/v2/alerts"]);
  });

  /**
   * Numbered lines at 2,000 lines/s per source (load.ts) through the published broker port while `fault` happens;
   * what each source lost, once the consumer holds nothing more.
   */
  async function underLoad(name: string, kinds: readonly SourceKind[], fault: () => Promise<void>) {
    const sources = startSources(kinds, name, run);
    await sleep(3000);
    const at = Math.max(...[...sources.values()].map((s) => s.next));
    await fault();
    await until("all services healthy again", allHealthy, 120_000, () => unhealthyReport(SERVICES));
    await sleep(3000);
    const results = await collect(sources);
    figure(`${name} at ${RATE} lines/s per source, fault at seq ~${at}: ${results.map(describeLoss).join("; ")}`);
    return { at, results };
  }

  // Plain PUB publishers (AICO's services) know nothing of holding: the broker keeps their logs while no consumer is
  // there, so a consumer restart costs them nothing either.
  it("under load, ./aixcl restart log-consumer loses nothing, for our logger and for plain PUB publishers in both wire formats", { timeout: 300_000 }, async () => {
    const { results } = await underLoad("restart_consumer", ALL_SOURCES, async () => {
      const r = await checkout.run(["restart", "log-consumer"], 180_000);
      expect(r.status, r.stderr).toBe(0);
    });
    for (const r of results) expect(r.lost, r.kind).toEqual([]);
  });

  it("under load, ./aixcl restart broker loses nothing of our logger's (it holds while the broker is away)", { timeout: 300_000 }, async () => {
    const { results } = await underLoad("restart_broker", ["logger"], async () => {
      const r = await checkout.run(["restart", "broker"], 180_000);
      expect(r.status, r.stderr).toBe(0);
    });
    for (const r of results) expect(r.lost, r.kind).toEqual([]);
  });

  it("a Python service logging through BusHandler across ./aixcl restart broker loses nothing", { timeout: 300_000 }, async () => {
    const service = `dockertier_py_restart_${run}`;
    const rate = 500;
    const app = runPython(pythonNumberedProgram(service, rate, 15), {}, 180_000);
    await sleep(4000);
    const r = await checkout.run(["restart", "broker"], 180_000);
    expect(r.status, r.stderr).toBe(0);
    const py = await app;
    expect(py.status, py.stderr).toBe(0);
    const total = rate * 15;
    const counts = await settled(service, total);
    const lost = missing(counts, total);
    figure(`Python BusHandler at ${rate} lines/s across ./aixcl restart broker: ${total} logged, ${lost.length} lost; handler ${py.stdout.trim().split("\n").at(-1)}`);
    expect(lost).toEqual([]);
  });

  it("under load, Loki stopped for 20 s loses nothing, for every kind of publisher", { timeout: 400_000 }, async () => {
    const { results } = await underLoad("loki_down_20s", ALL_SOURCES, async () => {
      docker(["stop", container("loki")]);
      await sleep(20_000);
      docker(["start", container("loki")]);
    });
    for (const r of results) expect(r.lost, r.kind).toEqual([]);
  });

  it("with the consumer stopped, the broker keeps the logs (on its volume, as the services' uid) across its own restart; the consumer gets them all", { timeout: 400_000 }, async () => {
    docker(["stop", container("log-consumer")]);
    const down = await checkout.run(["bus", "test", "--timeout", "5s"], 120_000);
    expect(down.status).toBe(1);
    expect(`${down.stdout}${down.stderr}`).toContain("log-consumer");
    const sources = startSources(ALL_SOURCES, "backlog", run);
    await until("the broker holding", async () => ((await metricSample("http://127.0.0.1:9464", "aixcl_broker_backlog_messages")) ?? 0) > 5000, 60_000);
    // Written within a second; the files belong to the uid the services run as (AIXCL_UID).
    await sleep(1500);
    const uid = /^AIXCL_UID=(\d+)$/m.exec(readFileSync(join(checkout.dir, ".env"), "utf8"))?.[1];
    const files = docker(["exec", container("broker"), "find", "/var/lib/broker/backlog", "-type", "f", "-printf", "%U %f\\n"]).split("\n").filter((l) => l !== "");
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(f.split(" ")[0], f).toBe(uid);
    const restartFrom = Math.min(...[...sources.values()].map((s) => s.next));
    const r = await checkout.run(["restart", "broker"], 180_000);
    expect(r.status, r.stderr).toBe(0);
    const restartTo = Math.max(...[...sources.values()].map((s) => s.next));
    await sleep(3000);
    docker(["start", container("log-consumer")]);
    await until("all services healthy again", allHealthy, 120_000, () => unhealthyReport(SERVICES));
    const results = await collect(sources);
    figure(`consumer stopped, broker restarted with its disk backlog, consumer back: ${results.map(describeLoss).join("; ")}`);
    for (const result of results) {
      // Our logger holds while the broker is away; a plain PUB loses only what it sent while no broker ran.
      if (result.kind === "logger") expect(result.lost).toEqual([]);
      for (const seq of result.lost) expect(seq >= restartFrom - RATE && seq <= restartTo + RATE, `${result.kind} seq ${seq} lost outside the broker's restart (${restartFrom}..${restartTo})`).toBe(true);
    }
    const up = await checkout.run(["bus", "test"], 120_000);
    expect(up.status, `${up.stdout}${up.stderr}`).toBe(0);
  });

  // The documented bound (LOGGING.md, "What a fault can cost"): a consumer crash loses the batch being filled
  // (batch.max_wait, 1 s) and what ZeroMQ had received but not handed over; a broker crash what was inside it.
  // Both only around the moment of the kill. A plain PUB loses besides what it sends while no broker runs.
  for (const [service, kinds] of [["log-consumer", ALL_SOURCES], ["broker", ["logger"]]] as const) {
    it(`under load, a SIGKILL of the ${service}'s process: the restart policy brings it back, loss within the documented bound`, { timeout: 300_000 }, async () => {
      const restarts = restartCount(service);
      let killed = 0;
      const { results, at } = await underLoad(`sigkill_${service.replace("-", "_")}`, kinds, async () => {
        killed = killServiceProcess(service);
        await until(`${service} restarted by its restart policy`, () => restartCount(service) > restarts, 60_000);
      });
      expect(servicePid(service)).not.toBe(killed);
      for (const r of results) {
        expect(r.lost.length, r.kind).toBeLessThanOrEqual(1.5 * RATE);
        for (const seq of r.lost) expect(Math.abs(seq - at), `${r.kind}: seq ${seq} lost far from the kill at ${at}`).toBeLessThanOrEqual(1.5 * RATE);
      }
    });
  }

  it("an error burst fires ApplicationErrorBurst for its service in Alertmanager, listed by ./aixcl alerts; the stack's own errors fire nothing", { timeout: 240_000 }, async () => {
    // Loki's ruler evaluates every minute: the alert fires at the first evaluation after the 11th error.
    const burstService = `dockertier_burst_${run}`;
    const logger = createLogger({ subsystem: burstService, module: "burst", endpoint: "tcp://127.0.0.1:5555" });
    for (let i = 0; i < 11; i++) logger.error(`payment failed ${i} ${run}`);
    await logger.close();
    await until("ApplicationErrorBurst in Alertmanager", async () => (await firing()).some((a) => a.labels.alertname === "ApplicationErrorBurst" && a.labels.service === burstService), 150_000);
    const alerts = await checkout.run(["alerts"], 120_000);
    expect(alerts.status, alerts.stderr).toBe(0);
    expect(alerts.stdout).toMatch(new RegExp(`^${burstService}\\s+ApplicationErrorBurst\\s`, "m"));
    const json = await checkout.run(["alerts", "--json"], 120_000);
    expect(json.status, json.stderr).toBe(0);
    expect(json.stdout).toContain(`"service":"${burstService}"`);
    // The faults before this step (in the ordered run) made the stack's own services log errors (a consumer without Loki, restarts, kills): none
    // of that may alert as an application or a container error burst.
    const own = (await firing()).filter((a) => SERVICES.includes(a.labels.service ?? "") || SERVICES.includes(a.labels.compose_service ?? ""));
    expect(own).toEqual([]);

    const auth = grafanaAuth();
    const viaGrafana = (await (await fetch("http://127.0.0.1:3000/api/alertmanager/alertmanager/api/v2/alerts", { headers: auth })).json()) as FiringAlert[];
    expect(viaGrafana.some((a) => a.labels.service === burstService)).toBe(true);
  });

  it("./aixcl stop, then start: the logs are kept; the warm start's time is printed", { timeout: 300_000 }, async () => {
    const service = `dockertier_kept_${run}`;
    const logger = createLogger({ subsystem: service, module: "kept", endpoint: "tcp://127.0.0.1:5555" });
    for (let i = 0; i < 100; i++) logger.info(`kept ${i} ${run}`);
    await logger.close();
    await until("the lines in Loki", async () => (await queryInstant(LOKI, `sum(count_over_time({service="${service}"}[1h]))`))[0]?.value === 100, 60_000);
    const before = (await queryInstant(LOKI, `sum(count_over_time({service="${service}"}[1h]))`))[0]?.value;
    const stop = await checkout.run(["stop"], 180_000);
    expect(stop.status, stop.stderr).toBe(0);
    const start = await checkout.run(["start"], 300_000);
    expect(start.status, start.stderr).toBe(0);
    expect(start.stderr).toContain("images up to date with this checkout");
    figure(`warm start (./aixcl stop, then start): all-healthy ${healthyAfter(start.stderr)} s by ./aixcl, ${(start.ms / 1000).toFixed(1)} s wall`);
    const after = (await queryInstant(LOKI, `sum(count_over_time({service="${service}"}[1h]))`))[0]?.value;
    expect(after).toBe(before);
  });

  it("./aixcl keys, then restart: the bus requires CURVE, bus test passes, a plaintext publisher is refused and counted", { timeout: 600_000 }, async () => {
    const keys = await checkout.run(["keys", "my-app"], 600_000);
    expect(keys.status, keys.stderr).toBe(0);
    expect(keys.stdout).toContain("created keys/broker/broker.secret");
    expect(keys.stdout).toContain("created keys/clients/my-app/clients/my-app.secret");
    expect(keys.stdout).not.toContain("/keys-rw");
    const restart = await checkout.run(["restart"], 300_000);
    expect(restart.status, restart.stderr).toBe(0);
    expect(await metricSample("http://127.0.0.1:9464", "aixcl_broker_curve_enabled")).toBe(1);

    const bus = await checkout.run(["bus", "test"], 120_000);
    expect(bus.status, `${bus.stdout}\n${bus.stderr}`).toBe(0);

    // An application with its own key pair (made above for "my-app") through the Python client.
    const keyed = `dockertier_py_curve_${run}`;
    const py = await runPython(pythonFieldsProgram(keyed), { MESSAGE_BUS_KEYS_DIR: join(checkout.dir, "keys/clients/my-app"), MESSAGE_BUS_CLIENT_NAME: "my-app" });
    expect(py.status, py.stderr).toBe(0);
    await until("the keyed client's records in Loki", async () => (await queryRange(LOKI, `{service="${keyed}"}`)).flatMap((s) => s.values).length === 2, 60_000);

    // Refused during the handshake: kind "protocol" (a plaintext greeting) or, when the connection drops first, "other".
    const refused = async () => {
      let n = 0;
      for (const kind of ["protocol", "other"]) n += (await metricSample("http://127.0.0.1:9464", `aixcl_broker_handshake_failures_total{side="publishers",kind="${kind}"}`)) ?? 0;
      return n;
    };
    const before = await refused();
    const plain = new Publisher({ linger: 0 });
    plain.connect("tcp://127.0.0.1:5555");
    const service = `dockertier_plaintext_${run}`;
    try {
      let i = 0;
      await until("the refused handshake to be counted", async () => {
        const entry = { timestampNs: nowNs(), level: "info", subsystem: service, module: "x", function: "", message: `plaintext ${i++}`, topic: "", metadata: {}, filePath: "", lineNumber: 0, userUuid: "", sessionId: "", traceId: "", extra: {} } as const;
        await plain.send([`logs.${service}.x`, encodeLogEntry(entry)]);
        return (await refused()) > before;
      }, 30_000);
    } finally {
      plain.close();
    }
    expect(await queryRange(LOKI, `{service="${service}"}`)).toEqual([]);
  });

  // Least privilege, seen from inside: every key file each container can open, wherever it is in its file system.
  it("each container can open exactly its own key files, and Grafana's password is in no container's environment", { timeout: 300_000 }, () => {
    const listKeyFiles = [
      'const fs = require("fs"), path = require("path"); const found = [];',
      "const walk = (dir) => { let entries; try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }",
      '  for (const e of entries) { const f = path.join(dir, e.name);',
      '    if (e.isDirectory()) { if (!["/proc", "/sys", "/dev"].includes(f) && e.name !== "node_modules") walk(f); }',
      '    else if (/(\\.secret|\\.pub|^allowed_clients|^revoked_clients)$/.test(e.name)) { try { fs.closeSync(fs.openSync(f, "r")); found.push(f); } catch {} } } };',
      'walk("/"); console.log(JSON.stringify(found.sort()));',
    ].join("\n");
    const opened = (output: string) => JSON.parse(output.trim().split("\n").at(-1) ?? "[]") as string[];
    expect(opened(docker(["exec", container("broker"), "node", "-e", listKeyFiles]))).toEqual(["/keys/allowed_clients", "/keys/broker.pub", "/keys/broker.secret"]);
    expect(opened(docker(["exec", container("log-consumer"), "node", "-e", listKeyFiles]))).toEqual([
      "/keys/broker.pub",
      "/keys/clients/log-consumer.pub",
      "/keys/clients/log-consumer.secret",
    ]);
    // The cli service as `./aixcl logs`, `alerts` and `bus test` run it (`./aixcl keys` adds ./keys at /keys-rw to write).
    const cli = docker([
      "compose", "--project-name", PROJECT, "--project-directory", checkout.dir, "--file", join(checkout.dir, "docker-compose.yml"), "--profile", "tools",
      "run", "--rm", "--no-deps", "-T", "--entrypoint", "node", "cli", "-e", listKeyFiles,
    ]);
    expect(opened(cli)).toEqual(["/keys/broker.pub", "/keys/clients/cli.pub", "/keys/clients/cli.secret"]);

    const password = /^GRAFANA_ADMIN_PASSWORD=(.*)$/m.exec(readFileSync(join(checkout.dir, ".env"), "utf8"))?.[1] ?? "";
    expect(password).not.toBe("");
    for (const service of ["grafana", "broker", "log-consumer"]) {
      expect(docker(["inspect", "--format", "{{json .Config.Env}}", container(service)])).not.toContain(password);
    }
    expect(docker(["exec", container("grafana"), "cat", "/run/secrets/grafana_admin_password"])).toBe(password);
  });

  it("./aixcl keys for a new client while the bus runs CURVE: the broker reloads (not restarts) and admits it", { timeout: 600_000 }, async () => {
    const startedAt = () => docker(["inspect", "--format", "{{.State.StartedAt}}", container("broker")]);
    const before = startedAt();
    const keys = await checkout.run(["keys", "late-app"], 600_000);
    expect(keys.status, keys.stderr).toBe(0);
    expect(keys.stderr).toContain("The broker reloaded its allow-list");
    expect(startedAt()).toBe(before);
    expect(await metricSample("http://127.0.0.1:9464", 'aixcl_broker_allow_list_reloads_total{result="ok"}')).toBeGreaterThanOrEqual(1);
    const keyed = `dockertier_py_late_${run}`;
    const py = await runPython(pythonFieldsProgram(keyed), { MESSAGE_BUS_KEYS_DIR: join(checkout.dir, "keys/clients/late-app"), MESSAGE_BUS_CLIENT_NAME: "late-app" });
    expect(py.status, py.stderr).toBe(0);
    await until("the new client's records in Loki", async () => (await queryRange(LOKI, `{service="${keyed}"}`)).flatMap((s) => s.values).length === 2, 60_000);
  });

  it("./aixcl keys revoke cuts a client off for good: the broker restarts, the client is refused, a later ./aixcl keys keeps it out", { timeout: 600_000 }, async () => {
    const revoke = await checkout.run(["keys", "revoke", "my-app"], 300_000);
    expect(revoke.status, revoke.stderr).toBe(0);
    expect(revoke.stderr).toContain("Restarting the broker");
    const again = await checkout.run(["keys"], 300_000);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/allow-list keys\/broker\/allowed_clients: cli, late-app, log-consumer$/m);
    const list = await checkout.run(["keys", "list"], 300_000);
    expect(list.stdout).toMatch(/^my-app\s+revoked\s/m);
    const denied = async () => (await metricSample("http://127.0.0.1:9464", 'aixcl_broker_auth_decisions_total{result="denied",reason="unknown_key"}')) ?? 0;
    const before = await denied();
    const keyed = `dockertier_py_revoked_${run}`;
    // Its handler never gets through; the program ends at its own close timeout or is killed after 60 s.
    const py = runPython(pythonFieldsProgram(keyed), { MESSAGE_BUS_KEYS_DIR: join(checkout.dir, "keys/clients/my-app"), MESSAGE_BUS_CLIENT_NAME: "my-app" }, 60_000);
    await until("the revoked key's refusal to be counted", async () => (await denied()) > before, 60_000);
    await py;
    expect(await queryRange(LOKI, `{service="${keyed}"}`)).toEqual([]);
  });

  it("./aixcl clean --volumes --yes removes the containers and the data", { timeout: 300_000 }, async () => {
    const r = await checkout.run(["clean", "--volumes", "--yes"], 240_000);
    expect(r.status, r.stderr).toBe(0);
    expect(projectContainers()).toEqual([]);
    expect(projectVolumes()).toEqual([]);
  });
});
