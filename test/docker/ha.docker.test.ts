/**
 * The Docker tier for the HA profile (issue 25): a fresh checkout started with `./aixcl start --ha` (three Loki
 * instances on one S3 bucket behind the nginx gateway that keeps the name `loki`), then faults under a steady load
 * from both of a user's paths at once:
 *   - the bus: our logger (load.ts's SteadyLogger) at RATE (2,000) lines/s through the published broker port;
 *   - a container: a plain `docker run` writing numbered lines to stdout at CONTAINER_RATE (2,000) lines/s, which
 *     Promtail ships through the gateway.
 * So 4,000 lines/s in all, each line stored by three ingesters. The faults, in order, on one load: loki-1 SIGKILLed
 * (`docker kill`), kept down, started again; the same for loki-2; the store (s3) stopped for 20 s, then started;
 * the gateway (service loki) restarted. A prober queries through the gateway every 250 ms during each fault and
 * the figures say how many queries failed and for how long. When the load stops, every line of both sources must
 * be in Loki, counted by LogQL through the gateway by sequence number: none missing, none twice.
 *
 * Then the switches, with the logs stored so far: `./aixcl start --single` (the single-instance stack healthy, the
 * HA containers gone, every line the HA profile stored shown by the single instance, once), a line written to the
 * single instance, and `./aixcl start --ha` again (that line in the bucket, the HA profile's lines still once).
 *
 * One pass, as the user who runs the tier (root in CI): the stack tier (stack.docker.test.ts) already runs
 * ./aixcl as an unprivileged user, and the HA profile changes nothing of who owns what in the checkout.
 *
 * Skips and never-skips as stack.docker.test.ts does (CI=true: no engine, a running project or missing images
 * are failures). Run it alone: `npx vitest run --project docker test/docker/ha.docker.test.ts`.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryAll, queryInstant, repoRoot } from "@aixcl/testkit";
import { countSeqs, missing, runCleanups, type SteadySource } from "../../services/log-consumer/test/processes.js";
import { Checkout, currentUser, type Run } from "./checkout.js";
import { collect, describeLoss, LOKI, RATE, startSources, type SourceKind, type SourceResult } from "./load.js";
import { container, docker, health, PROJECT, projectContainers, projectVolumes, tierProblem, unhealthyReport } from "./engine.js";
import { orderedScenario, until } from "./scenario.js";

const CI = process.env.CI === "true";
const SERVICES = ["loki", "promtail", "prometheus", "alertmanager", "grafana", "broker", "log-consumer"];
const HA_SERVICES = ["loki-1", "loki-2", "loki-3", "s3"];
const HA_ALL = [...SERVICES, ...HA_SERVICES];
/** Lines per second of the container writing to stdout (the Promtail path). */
const CONTAINER_RATE = 2000;
/** How long a killed Loki instance stays down before it is started again. */
const DOWN_MS = 15_000;
const PROBE_INTERVAL_MS = 250;

/** The HA profile's own images (gateway, store, the copy helper), which the stack's image check does not cover. */
function haImagesProblem(): string | undefined {
  for (const image of ["nginx:1.30.6-alpine", "versity/versitygw:v1.8.0", "debian:bookworm-slim"]) {
    if (spawnSync("docker", ["image", "inspect", image], { stdio: "ignore" }).status === 0) continue;
    const pull = spawnSync("docker", ["pull", "--quiet", image], { encoding: "utf8", timeout: 120_000 });
    if (pull.status !== 0) {
      const message = `this engine cannot pull ${image}; in CI .ci/standin-images.sh builds the HA profile's stand-ins`;
      if (CI) throw new Error(`Docker tier (HA): ${message}`);
      return message;
    }
  }
  return undefined;
}

const skip = tierProblem("HA", repoRoot) ?? haImagesProblem();
if (skip) console.warn(`[skipped] Docker tier, HA profile: ${skip}`);

const exists = (service: string) => spawnSync("docker", ["inspect", container(service)], { stdio: "ignore" }).status === 0;
const healthy = (services: readonly string[]) => services.every((s) => exists(s) && health(s) === "running/healthy");

function healthyAfter(stderr: string): number {
  const m = /All services healthy ([0-9.]+) s after \.\/aixcl start\./.exec(stderr);
  if (!m) throw new Error(`./aixcl start did not print its time to all-healthy:\n${stderr}`);
  return Number(m[1]);
}

/** Each container of the project with its memory use now (docker stats --no-stream), and the sum in MiB. */
function memory(): { rows: string[]; totalMiB: number } {
  const out = docker(["stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", ...projectContainers()]);
  const toMiB = (v: string) => {
    const m = /^([0-9.]+)\s*([KMG]i?B|B)$/.exec(v.trim());
    if (!m) return 0;
    const factor = { B: 1 / 1024 ** 2, KiB: 1 / 1024, KB: 1 / 1024, MiB: 1, MB: 1, GiB: 1024, GB: 1024 }[m[2] as "B"] ?? 0;
    return Number(m[1]) * factor;
  };
  const rows = out.split("\n").filter((l) => l !== "").map((l) => l.replace(`${PROJECT}-`, "").replace(/-1\t/, " "));
  const totalMiB = out.split("\n").reduce((sum, l) => sum + toMiB(l.split("\t")[1]?.split("/")[0] ?? ""), 0);
  return { rows: rows.sort(), totalMiB };
}

/** The gateway's own error lines (nginx error_log on stderr) since `sinceMs`, distinct by message, for a failure's cause. */
function gatewayErrors(sinceMs: number): string[] {
  const r = spawnSync("docker", ["logs", "--since", new Date(sinceMs).toISOString(), container("loki")], { encoding: "utf8", maxBuffer: 64 << 20 });
  const lines = `${r.stdout}${r.stderr}`.split("\n").filter((l) => /\[(error|crit)\]|upstream/.test(l));
  return [...new Set(lines.map((l) => l.replace(/^\S+ \S+ /, "").replace(/, client: .*?(, upstream)/, "$1").replace(/\d+#\d+: \*\d+ /, "")))].slice(0, 6);
}

/**
 * Queries through the gateway every 250 ms (one at a time, 5 s timeout each) until stopped: how many failed, and
 * how long queries failed (from a failed query's start to the next good one's start, summed; and the longest run).
 */
class QueryProbe {
  private readonly samples: { at: number; ok: boolean; why?: string }[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly logql: string) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const at = Date.now();
      let ok = false;
      let why: string | undefined;
      try {
        const res = await fetch(`${LOKI}/loki/api/v1/query?${new URLSearchParams({ query: this.logql })}`, { signal: AbortSignal.timeout(5000) });
        const body = await res.text();
        ok = res.status === 200;
        if (!ok) why = `${res.status} ${body.slice(0, 120).trim()}`;
      } catch (e) {
        why = (e as Error).message;
      }
      this.samples.push({ at, ok, why });
      const wait = at + PROBE_INTERVAL_MS - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }

  async stop(): Promise<{ queries: number; failed: number; failingMs: number; longestMs: number; reasons: string[] }> {
    this.stopped = true;
    await this.done;
    const end = Date.now();
    let failingMs = 0;
    let longestMs = 0;
    let runStart: number | undefined;
    for (const s of [...this.samples, { at: end, ok: true }]) {
      if (!s.ok && runStart === undefined) runStart = s.at;
      if (s.ok && runStart !== undefined) {
        failingMs += s.at - runStart;
        longestMs = Math.max(longestMs, s.at - runStart);
        runStart = undefined;
      }
    }
    const reasons = [...new Set(this.samples.filter((s) => !s.ok).map((s) => s.why ?? ""))].slice(0, 3);
    return { queries: this.samples.length, failed: this.samples.filter((s) => !s.ok).length, failingMs, longestMs, reasons };
  }
}

/** A plain container printing `seq=<n> ctr <run>` at `rate` lines/s to stdout until /tmp/stop exists, then `total=<n>`. */
class ContainerSource implements SteadySource {
  readonly service: string;
  readonly name: string;
  private total: number | undefined;

  constructor(run: string, readonly rate: number) {
    this.name = `aixcl-hatier-writer-${run}`;
    this.service = this.name;
    const program = [
      `start=$(date +%s%N); n=0`,
      `while [ ! -e /tmp/stop ]; do`,
      `  due=$(( ($(date +%s%N) - start) * ${rate} / 1000000000 ))`,
      `  if [ $due -gt $n ]; then seq -f "seq=%.0f ctr ${run}" $n $((due - 1)); n=$due; fi`,
      `  sleep 0.02`,
      `done`,
      `echo "total=$n ${run}"`,
      `exec sleep 600`,
    ].join("\n");
    docker(["run", "--detach", "--init", "--name", this.name, "debian:bookworm-slim", "bash", "-c", program]);
  }

  /** The next sequence number, as far as the container's log shows (only for the figures: where a fault began). */
  get next(): number {
    const r = spawnSync("docker", ["logs", "--tail", "1", this.name], { encoding: "utf8" });
    const m = /^seq=(\d+) /.exec(r.stdout.trim());
    return m ? Number(m[1]) + 1 : 0;
  }

  async stop(): Promise<number> {
    if (this.total !== undefined) return this.total;
    docker(["exec", this.name, "touch", "/tmp/stop"]);
    let total: number | undefined;
    await until("the writer container's total line", () => {
      const r = spawnSync("docker", ["logs", "--tail", "3", this.name], { encoding: "utf8" });
      const m = /^total=(\d+) /m.exec(r.stdout);
      if (m) total = Number(m[1]);
      return total !== undefined;
    }, 30_000);
    this.total = total ?? 0;
    return this.total;
  }

  remove(): void {
    spawnSync("docker", ["rm", "--force", this.name], { stdio: "ignore" });
  }

  /** Waits until Loki's count of the container's numbered lines reaches `total` or stands still for 10 s. */
  async counted(total: number, timeoutMs = 180_000): Promise<SourceResult & { kind: SourceKind | "container" }> {
    const logql = `{container="${this.name}"} |~ "^seq="`;
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let stableSince = Date.now();
    for (;;) {
      const [sample] = await queryInstant(LOKI, `sum(count_over_time(${logql}[1h]))`);
      const n = sample?.value ?? 0;
      if (n !== last) [last, stableSince] = [n, Date.now()];
      if (n >= total || Date.now() - stableSince > 10_000 || Date.now() > deadline) break;
      await sleep(1000);
    }
    const counts = countSeqs(await queryAll(LOKI, logql));
    return { kind: "container" as SourceKind, total, lost: missing(counts, total), twice: [...counts.values()].filter((c) => c > 1).length };
  }
}

describe.skipIf(skip !== undefined)("one ordered scenario: the HA profile through ./aixcl start --ha, faults under load", () => {
  orderedScenario();
  const user = currentUser();
  let checkout: Checkout;
  let firstStart: Run;
  const run = randomBytes(4).toString("hex");
  const figures: string[] = [];
  const figure = (text: string) => {
    figures.push(text);
    console.info(`[docker tier, HA, ${user.name}] ${text}`);
  };
  let bus: Map<SourceKind, SteadySource> | undefined;
  let sentByLogger = 0;
  let writer: ContainerSource | undefined;
  const probeQuery = () => `sum(count_over_time({service="dockertier_ha_logger_${run}"}[1m]))`;

  beforeAll(async () => {
    checkout = new Checkout(user);
    firstStart = await checkout.run(["start", "--ha"], 900_000);
  }, 900_000);

  afterAll(async () => {
    await runCleanups();
    writer?.remove();
    if (projectContainers().length > 0) await checkout.run(["clean", "--volumes", "--yes"], 180_000);
    // ./aixcl clean takes the volumes of the profile it is in; the other profile's may remain after a failure.
    const left = projectVolumes();
    if (left.length > 0) spawnSync("docker", ["volume", "rm", "--force", ...left], { stdio: "ignore" });
    console.info(`[docker tier, HA, ${user.name}] figures:\n  ${figures.join("\n  ")}`);
  }, 240_000);

  it("./aixcl start --ha from a fresh checkout: every service and the three instances, the store and the gateway healthy; time and idle memory printed", async () => {
    const r = firstStart;
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(healthy(HA_ALL), unhealthyReport(HA_ALL)).toBe(true);
    // The gateway, not a Loki, answers under the name loki.
    expect(docker(["inspect", "--format", "{{.Config.Image}}", container("loki")])).toMatch(/^nginx:/);
    const built = r.stderr.includes("Building images");
    figure(`start --ha (${built ? "with image builds" : "images already built"}): all-healthy ${healthyAfter(r.stderr)} s by ./aixcl, ${(r.ms / 1000).toFixed(1)} s wall`);
    // Idle: nothing sent yet but the stack's own logs.
    await sleep(5000);
    const mem = memory();
    figure(`idle memory (docker stats): ${mem.totalMiB.toFixed(0)} MiB in all; ${mem.rows.join(", ")}`);
    const bt = await checkout.run(["bus", "test"], 120_000);
    expect(bt.status, `${bt.stdout}\n${bt.stderr}`).toBe(0);
  });

  it(`a steady load starts: our logger at ${RATE} lines/s through the bus and a container at ${CONTAINER_RATE} lines/s to stdout`, async () => {
    bus = startSources(["logger"], "ha", run);
    writer = new ContainerSource(run, CONTAINER_RATE);
    // Both paths reach Loki through the gateway before any fault.
    await until("the first lines of both sources in Loki", async () => {
      const [a] = await queryInstant(LOKI, `sum(count_over_time({service="dockertier_ha_logger_${run}"}[5m]))`);
      const [b] = await queryInstant(LOKI, `sum(count_over_time({container="${writer?.name}"}[5m]))`);
      return (a?.value ?? 0) > 0 && (b?.value ?? 0) > 0;
    }, 60_000);
  });

  const where = () => `bus seq ~${bus?.get("logger")?.next ?? 0}, container seq ~${writer?.next ?? 0}`;

  /**
   * One fault under the load, with queries through the gateway every 250 ms: `inject` (after 2 s of probing),
   * `restore`, then `service` and every service healthy again. Returns the seconds from `restore` to `service`
   * healthy, the probe's figures and the gateway's error lines meanwhile.
   */
  async function fault(what: string, service: string, inject: () => Promise<void>, restore: () => void) {
    const since = Date.now();
    const probe = new QueryProbe(probeQuery());
    await sleep(2000);
    figure(`${what} at ${where()}`);
    await inject();
    const restoredAt = Date.now();
    restore();
    await until(`${service} healthy again`, () => health(service) === "running/healthy", 180_000, () => unhealthyReport([service]));
    const healthyS = (Date.now() - restoredAt) / 1000;
    await until("all services healthy", () => healthy(HA_ALL), 120_000, () => unhealthyReport(HA_ALL));
    await sleep(2000);
    const p = await probe.stop();
    const queries = `queries ${p.failed}/${p.queries} failed, failing ${(p.failingMs / 1000).toFixed(2)} s in all, longest ${(p.longestMs / 1000).toFixed(2)} s${p.reasons.length ? ` (${p.reasons.join(" | ")})` : ""}`;
    return { healthyS, p, queries, errors: gatewayErrors(since) };
  }

  for (const instance of ["loki-1", "loki-2"]) {
    it(`${instance} SIGKILLed (docker kill), down ${DOWN_MS / 1000} s, started again: queries through the gateway keep answering; healthy again`, { timeout: 300_000 }, async () => {
      let state = "";
      const r = await fault(
        `${instance} killed`,
        instance,
        async () => {
          docker(["kill", container(instance)]);
          await sleep(DOWN_MS);
          state = docker(["inspect", "--format", "{{.State.Status}}", container(instance)]);
        },
        () => docker(["start", container(instance)]),
      );
      figure(`${instance} SIGKILL: state ${DOWN_MS / 1000} s after the kill "${state}"; healthy ${r.healthyS.toFixed(1)} s after docker start; ${r.queries}`);
      if (r.errors.length > 0) figure(`${instance} SIGKILL: the gateway's error lines: ${r.errors.join(" || ")}`);
      expect(r.p.failed, `queries failed while ${instance} was down: ${r.p.reasons.join(" | ")}; gateway: ${r.errors.join(" || ")}`).toBe(0);
    });
  }

  it("the store (s3) stopped for 20 s, then started: the instances go on; query failures measured", { timeout: 300_000 }, async () => {
    const r = await fault(
      "s3 stopped",
      "s3",
      async () => {
        docker(["stop", container("s3")]);
        await sleep(20_000);
      },
      () => docker(["start", container("s3")]),
    );
    figure(`s3 stopped 20 s: healthy ${r.healthyS.toFixed(1)} s after docker start; ${r.queries}`);
    expect(r.p.failed, `queries failed while the store was down: ${r.p.reasons.join(" | ")}; gateway: ${r.errors.join(" || ")}`).toBe(0);
  });

  it("the gateway (service loki) restarted: healthy again; query failures measured", { timeout: 300_000 }, async () => {
    const r = await fault("gateway restarted", "loki", async () => {}, () => docker(["restart", container("loki")]));
    // The gateway is the one address: while nginx restarts, nothing answers on it (the bound: its restart).
    figure(`gateway restart: healthy ${r.healthyS.toFixed(1)} s after docker restart; ${r.queries}`);
    expect(r.p.longestMs, "queries failed for longer than the gateway's own restart").toBeLessThanOrEqual(r.healthyS * 1000 + 1000);
  });

  it("the load stops: every line of both sources is in Loki through the gateway, once", { timeout: 400_000 }, async () => {
    if (!bus || !writer) throw new Error("no load");
    const sentAt = Date.now();
    const [busResults, total] = await Promise.all([collect(bus), writer.stop()]);
    const ctr = await writer.counted(total);
    const results = [...busResults, ctr];
    figure(`after the faults, ${((Date.now() - sentAt) / 1000).toFixed(1)} s to count: ${results.map(describeLoss).join("; ")}`);
    for (const r of results) {
      expect(r.total, r.kind).toBeGreaterThan(0);
      expect(r.lost, r.kind).toEqual([]);
      expect(r.twice, r.kind).toBe(0);
    }
    sentByLogger = busResults.find((r) => r.kind === "logger")?.total ?? 0;
  });

  // What a switch does with the logs stored so far (LOGGING.md, "Switching"): carried along, once.
  const loggerCount = async () => (await queryInstant(LOKI, `sum(count_over_time({service="dockertier_ha_logger_${run}"}[2h]))`))[0]?.value ?? 0;
  const markerQuery = `{service="dockertier_ha_marker_${run}"}`;

  it("./aixcl start --single: the single-instance stack healthy again, the HA containers gone, every line the HA profile stored carried over once", { timeout: 400_000 }, async () => {
    const r = await checkout.run(["start", "--single"], 300_000);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).toContain("Switching back to the single Loki instance");
    figure(`start --single after HA (the instances flushed, the bucket copied): all-healthy ${healthyAfter(r.stderr)} s by ./aixcl, ${(r.ms / 1000).toFixed(1)} s wall; ${/copied (\d+) files in ([\d.]+) s/.exec(r.stderr)?.slice(1).join(" files in ") ?? "?"} s`);
    expect(healthy(SERVICES), unhealthyReport(SERVICES)).toBe(true);
    for (const s of HA_SERVICES) expect(exists(s), s).toBe(false);
    expect(docker(["inspect", "--format", "{{.Config.Image}}", container("loki")])).toMatch(/^grafana\/loki:/);
    expect(sentByLogger).toBeGreaterThan(0);
    expect(await loggerCount()).toBe(sentByLogger);
    // A line only the single instance holds, for the way back.
    const now = BigInt(Date.now()) * 1_000_000n;
    const res = await fetch(`${LOKI}/loki/api/v1/push`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ streams: [{ stream: { service: `dockertier_ha_marker_${run}` }, values: [[String(now), "written to the single instance"]] }] }),
    });
    expect(res.status).toBe(204);
  });

  it("./aixcl start --ha again: the single instance's line carried into the bucket, the HA profile's lines still there once", { timeout: 400_000 }, async () => {
    const r = await checkout.run(["start", "--ha"], 300_000);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).toContain("Switching to the HA profile");
    figure(`start --ha from the single instance (it flushed, its volume copied): all-healthy ${healthyAfter(r.stderr)} s by ./aixcl, ${(r.ms / 1000).toFixed(1)} s wall`);
    expect(healthy(HA_ALL), unhealthyReport(HA_ALL)).toBe(true);
    expect((await queryAll(LOKI, markerQuery, 2)).map((v) => v[1])).toEqual(["written to the single instance"]);
    expect(await loggerCount()).toBe(sentByLogger);
    const bt = await checkout.run(["bus", "test"], 120_000);
    expect(bt.status, `${bt.stdout}\n${bt.stderr}`).toBe(0);
  });

  it("./aixcl clean --volumes --yes removes the containers and the data", { timeout: 300_000 }, async () => {
    const r = await checkout.run(["clean", "--volumes", "--yes"], 240_000);
    expect(r.status, r.stderr).toBe(0);
    expect(projectContainers()).toEqual([]);
    // The HA profile's volumes too, though .env is back in single mode.
    expect(projectVolumes()).toEqual([]);
  });
});
