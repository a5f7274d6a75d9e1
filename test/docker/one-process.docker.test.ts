/**
 * The Docker tier for the one-process bus (`./aixcl start --one-process`: the broker and the log consumer in one
 * container, `bus`, from the log-consumer image). One ordered scenario from a fresh checkout: the stack starts with
 * the bus in place of broker and log-consumer, `bus test` passes, our logger and a plain ZeroMQ PUB publisher get
 * every line into Loki (counted by LogQL), Prometheus scrapes the bus under both names, and the bus' memory is
 * measured (docker stats) under 4,000 lines/s; then `start --two-processes` while the logger keeps sending: the bus
 * goes, broker and log-consumer take over its volumes, and no line is lost or stored twice; the two containers'
 * memory under the same load; `start --one-process` again (the lines sent just before all there); `./aixcl keys` with
 * the bus (CURVE with the broker's keys alone, SIGHUP reloads, revoke restarts it); last `clean --volumes`.
 *
 * Outside CI it skips, saying why, where the other Docker-tier files would (no engine, no images, the stack's project
 * already running here).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { curveKeyPair } from "zeromq";
import { metricSample, repoRoot } from "@aixcl/testkit";
import { missing, runCleanups } from "../../services/log-consumer/test/processes.js";
import { Checkout, currentUser } from "./checkout.js";
import { container, docker, health, projectContainers, projectVolumes, tierProblem, unhealthyReport } from "./engine.js";
import { collect, describeLoss, RATE, settled, startSources } from "./load.js";
import { orderedScenario, until } from "./scenario.js";

const OTHERS = ["loki", "promtail", "prometheus", "alertmanager", "grafana"];
const ONE = [...OTHERS, "bus"];
const TWO = [...OTHERS, "broker", "log-consumer"];

const skip = tierProblem("one process", repoRoot);
if (skip) console.warn(`[skipped] Docker tier, one process: ${skip}`);

/** A service's container memory now (docker stats --no-stream), in MiB. */
function memoryMiB(service: string): number {
  const usage = docker(["stats", "--no-stream", "--format", "{{.MemUsage}}", container(service)]).split("/")[0]?.trim() ?? "";
  const m = /^([0-9.]+)\s*([KMG]i?B|B)$/.exec(usage);
  if (!m) throw new Error(`docker stats: cannot read ${JSON.stringify(usage)}`);
  const factor = { B: 1 / 1024 ** 2, KiB: 1 / 1024, kB: 1 / 1000, KB: 1 / 1024, MiB: 1, MB: 1, GiB: 1024, GB: 1024 }[m[2] as "B"] ?? Number.NaN;
  return Number(m[1]) * factor;
}

/** Seconds of load each measurement runs. */
const LOAD_SECONDS = 12;

/**
 * The sum of the services' memory (docker stats), read every second from 2 s into the load to its end: "median /
 * highest MiB (n readings)". One reading catches the heap wherever the collector left it, so there are several.
 */
async function memoryUnderLoad(services: readonly string[], began: number): Promise<string> {
  const readings: number[] = [];
  await sleep(2000);
  while (Date.now() - began < LOAD_SECONDS * 1000) {
    readings.push(services.reduce((sum, s) => sum + memoryMiB(s), 0));
    await sleep(1000);
  }
  readings.sort((a, b) => a - b);
  return `${readings[Math.floor(readings.length / 2)]?.toFixed(1)} / ${readings.at(-1)?.toFixed(1)} MiB (median / highest of ${readings.length} readings)`;
}

const healthy = (services: readonly string[]) => services.every((s) => health(s) === "running/healthy");

interface Target {
  labels: { job: string };
  health: string;
  scrapeUrl: string;
}

describe.skipIf(skip !== undefined)("one ordered scenario: the broker and the log consumer in one process (start --one-process), then back to two", () => {
  orderedScenario();
  const run = Math.random().toString(16).slice(2, 10);
  const figures: string[] = [];
  const figure = (text: string) => {
    figures.push(text);
    console.info(`[docker tier, one process] ${text}`);
  };
  let checkout: Checkout;
  let firstStart: Awaited<ReturnType<Checkout["run"]>>;

  beforeAll(async () => {
    checkout = new Checkout(currentUser());
    firstStart = await checkout.run(["start", "--one-process"], 1_200_000);
  }, 1_200_000);

  afterAll(async () => {
    await runCleanups();
    if (checkout && projectContainers().length > 0) await checkout.run(["clean", "--volumes", "--yes"], 240_000);
    console.info(`[docker tier, one process] figures:\n  ${figures.join("\n  ")}`);
  }, 300_000);

  it("./aixcl start --one-process from a fresh checkout: the bus in place of broker and log-consumer, all healthy, kept in .env", async () => {
    const r = firstStart;
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(checkout.dir, ".env"), "utf8")).toMatch(/^AIXCL_BUS_PROCESSES=one$/m);
    expect(healthy(ONE), unhealthyReport(ONE)).toBe(true);
    const names = projectContainers();
    expect(names).toContain(container("bus"));
    expect(names).not.toContain(container("broker"));
    expect(names).not.toContain(container("log-consumer"));
    const status = await checkout.run(["status"]);
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^bus\s+running\s+healthy\s+tcp:\/\/127\.0\.0\.1:5555/m);
    const healthyAfter = /All services healthy ([0-9.]+) s after/.exec(r.stderr)?.[1];
    figure(`start --one-process (${r.stderr.includes("Building images") ? "with image builds" : "images built"}): all-healthy ${healthyAfter} s by ./aixcl, ${(r.ms / 1000).toFixed(1)} s wall`);
  });

  it("./aixcl bus test: a LogEntry goes through the one process into Loki", async () => {
    const r = await checkout.run(["bus", "test"], 120_000);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^OK: bus-test-\S+ went producer -> broker/m);
  });

  it("our logger and a plain PUB publisher at 2,000 lines/s each: every line in Loki (LogQL), the bus' memory under that load", { timeout: 300_000 }, async () => {
    const sources = startSources(["logger", "plain"], "onebus", run);
    const memory = await memoryUnderLoad(["bus"], Date.now());
    const results = await collect(sources);
    for (const r of results) {
      expect(r.total, r.kind).toBeGreaterThan(RATE * (LOAD_SECONDS - 1));
      expect(r.lost, describeLoss(r)).toEqual([]);
      expect(r.twice, describeLoss(r)).toBe(0);
    }
    figure(`one process, ${2 * RATE} lines/s: ${results.map(describeLoss).join("; ")}`);
    figure(`memory (docker stats): bus ${memory} at ${2 * RATE} lines/s, ${memoryMiB("bus").toFixed(1)} MiB just after`);
  });

  it("Prometheus scrapes the bus as the broker and as the log consumer, both up", { timeout: 120_000 }, async () => {
    const busAddress = docker(["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container("bus")]);
    let targets: Target[] = [];
    await until(
      "the broker and log-consumer targets up",
      async () => {
        const body = (await (await fetch("http://127.0.0.1:9090/api/v1/targets?state=active")).json()) as { data: { activeTargets: Target[] } };
        targets = body.data.activeTargets.filter((t) => t.labels.job === "broker" || t.labels.job === "log-consumer");
        return ["broker", "log-consumer"].every((job) => targets.some((t) => t.labels.job === job && t.health === "up"));
      },
      120_000,
      () => JSON.stringify(targets),
    );
    // The broker's job finds its target by DNS: the address it scrapes is the bus container's.
    expect(targets.find((t) => t.labels.job === "broker")?.scrapeUrl).toBe(`http://${busAddress}:9464/metrics`);
  });

  it("./aixcl start --two-processes while our logger sends: the bus goes, broker and log-consumer healthy on its volumes, no line lost or twice", { timeout: 900_000 }, async () => {
    const sources = startSources(["logger", "plain"], "switch", run);
    await sleep(3000);
    // A plain PUB socket drops what it sends while no broker runs (LOGGING.md, Reliability): it stops just before the
    // switch, so what it sent is what the bus held then. Our logger holds while the broker is away and keeps sending.
    const plain = sources.get("plain");
    sources.delete("plain");
    const plainSent = (await plain?.stop()) ?? 0;
    const r = await checkout.run(["start", "--two-processes"], 600_000);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("Switching to two processes for the bus: stopping and removing bus");
    expect(readFileSync(join(checkout.dir, ".env"), "utf8")).toMatch(/^AIXCL_BUS_PROCESSES=two$/m);
    expect(projectContainers()).not.toContain(container("bus"));
    expect(healthy(TWO), unhealthyReport(TWO)).toBe(true);
    figure(`switch to two processes: ${(r.ms / 1000).toFixed(1)} s wall, all-healthy ${/All services healthy ([0-9.]+) s after/.exec(r.stderr)?.[1]} s by ./aixcl`);

    // The same load as on the bus, now on the two containers.
    const more = startSources(["plain"], "two", run);
    const memory = await memoryUnderLoad(["broker", "log-consumer"], Date.now());
    const results = await collect(new Map([...sources, ...more]));
    const plainCounts = await settled(`dockertier_switch_plain_${run}`, plainSent);
    const plainResult = { kind: "plain" as const, total: plainSent, lost: missing(plainCounts, plainSent), twice: [...plainCounts.values()].filter((n) => n > 1).length };
    for (const result of [...results, plainResult]) {
      expect(result.lost, describeLoss(result)).toEqual([]);
      expect(result.twice, describeLoss(result)).toBe(0);
    }
    figure(`across the switch: ${[plainResult, ...results].map(describeLoss).join("; ")}`);
    figure(`memory (docker stats): broker + log-consumer ${memory} at ${2 * RATE} lines/s, ${(memoryMiB("broker") + memoryMiB("log-consumer")).toFixed(1)} MiB just after`);
  });

  it("./aixcl start --one-process again: broker and log-consumer go, the bus takes over, the lines sent just before all in Loki", { timeout: 600_000 }, async () => {
    const sources = startSources(["plain"], "back", run);
    await sleep(3000);
    const sent = (await sources.get("plain")?.stop()) ?? 0;
    const r = await checkout.run(["start", "--one-process"], 600_000);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("Switching to one process for the bus: stopping and removing broker log-consumer");
    const names = projectContainers();
    expect(names).not.toContain(container("broker"));
    expect(names).not.toContain(container("log-consumer"));
    expect(healthy(ONE), unhealthyReport(ONE)).toBe(true);
    const counts = await settled(`dockertier_back_plain_${run}`, sent);
    const result = { kind: "plain" as const, total: sent, lost: missing(counts, sent), twice: [...counts.values()].filter((n) => n > 1).length };
    expect(result.lost, describeLoss(result)).toEqual([]);
    expect(result.twice, describeLoss(result)).toBe(0);
    figure(`switch back to one process: ${(r.ms / 1000).toFixed(1)} s wall; ${describeLoss(result)}`);
  });

  it("./aixcl keys with the bus: CURVE after a restart (bus test passes, the consumer inside needs no keys); register reloads the allow-list (SIGHUP), revoke restarts the bus", { timeout: 600_000 }, async () => {
    const keys = await checkout.run(["keys"], 600_000);
    expect(keys.status, keys.stderr).toBe(0);
    const restart = await checkout.run(["restart", "broker"], 300_000);
    expect(restart.status, restart.stderr).toBe(0);
    expect(healthy(ONE), unhealthyReport(ONE)).toBe(true);
    const curve = await checkout.run(["bus", "test"], 120_000);
    expect(curve.status, `${curve.stdout}\n${curve.stderr}`).toBe(0);

    const startedAt = () => docker(["inspect", "--format", "{{.State.StartedAt}}", container("bus")]);
    const reloads = () => metricSample("http://127.0.0.1:9464", 'aixcl_broker_allow_list_reloads_total{result="ok"}');
    const before = { started: startedAt(), reloads: (await reloads()) ?? 0 };
    const register = await checkout.run(["keys", "register", "laptop", curveKeyPair().publicKey], 300_000);
    expect(register.status, register.stderr).toBe(0);
    expect(register.stderr).toContain("The broker reloaded its allow-list");
    await until("the bus' broker to count the reload", async () => ((await reloads()) ?? 0) > before.reloads, 30_000);
    // SIGHUP reached the broker inside, through the container's init, and stopped nothing.
    expect(startedAt()).toBe(before.started);
    expect(health("bus")).toBe("running/healthy");

    const revoke = await checkout.run(["keys", "revoke", "laptop"], 300_000);
    expect(revoke.status, revoke.stderr).toBe(0);
    expect(revoke.stderr).toContain("Restarting the bus (broker and consumer in one process) so that it cuts off the revoked client now.");
    expect(startedAt()).not.toBe(before.started);
    expect(healthy(ONE), unhealthyReport(ONE)).toBe(true);
    const after = await checkout.run(["bus", "test"], 120_000);
    expect(after.status, `${after.stdout}\n${after.stderr}`).toBe(0);
  });

  it("./aixcl clean --volumes removes every container and volume of the project", async () => {
    const r = await checkout.run(["clean", "--volumes", "--yes"], 240_000);
    expect(r.status, r.stderr).toBe(0);
    expect(projectContainers()).toEqual([]);
    expect(projectVolumes()).toEqual([]);
  });
});
