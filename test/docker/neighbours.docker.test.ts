/**
 * The Docker tier beside what a user already runs: AIXCL's own compose project `aixcl` (a service and a named
 * volume of its own), another compose project, plain `docker run` containers, AICO's message bus. One ordered
 * scenario: beforeAll starts the layout the stack had before it became project aixcl-logging, writes logs into it,
 * starts the neighbours, and upgrades through ./aixcl start; each test then checks one promise, and the last ones
 * (stop/start/clean, a taken port, AICO's bus) restart the stack themselves.
 *
 * Outside CI it skips, saying why, where the main tier would (stack.docker.test.ts) or where a compose project
 * `aixcl` exists already: that is AIXCL's, which this tier must not stand in for.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Publisher } from "zeromq";
import { encodeAicoMessage, nowNs } from "@aixcl/wire";
import { createLogger } from "@aixcl/client-logger";
import { freePort, metricSample, queryInstant, queryRange, repoRoot } from "@aixcl/testkit";
import { Checkout, currentUser, type Run } from "./checkout.js";
import { docker, health, PROJECT, projectContainers, tierProblem } from "./engine.js";
import { LOKI } from "./load.js";
import { CHAINED_TRACEBACK } from "../components/traceback.js";
import { seedQueries } from "../docs/markdown.js";
import { aixclOutput, NeighbourProject, numbered, pythonImage, removeContainers, runPlain, tracebackProgram } from "./neighbours.js";
import { orderedScenario, until } from "./scenario.js";

const CI = process.env.CI === "true";
const SERVICES = ["loki", "promtail", "prometheus", "alertmanager", "grafana", "broker", "log-consumer"];
const PROMTAIL = "http://127.0.0.1:9080";

function skipReason(): string | undefined {
  const problem = tierProblem("neighbours", repoRoot);
  if (problem) return problem;
  if (docker(["ps", "--all", "--quiet", "--filter", "label=com.docker.compose.project=aixcl"]) === "") return undefined;
  const reason = "a compose project named aixcl (AIXCL's own stack) exists here; this tier makes one of that name";
  if (CI) throw new Error(`Docker tier (neighbours): ${reason}`);
  return reason;
}
const skip = skipReason();
if (skip) console.warn(`[skipped] Docker tier, beside other stacks: ${skip}`);

const entries = async (logql: string) => (await queryRange(LOKI, logql, { limit: 5000 })).flatMap((s) => s.values.map((v) => ({ labels: s.stream, line: v[1], ts: v[0] })));
const count = async (logql: string) => (await queryInstant(LOKI, `sum(count_over_time(${logql}[1h]))`))[0]?.value ?? 0;
const allHealthy = (services = SERVICES) => services.every((s) => spawnSync("docker", ["inspect", `${PROJECT}-${s}-1`], { stdio: "ignore" }).status === 0 && health(s) === "running/healthy");
const containersOf = (project: string, workingDir?: string) =>
  docker(["ps", "--all", "--quiet", "--filter", `label=com.docker.compose.project=${project}`, ...(workingDir ? ["--filter", `label=com.docker.compose.project.working_dir=${workingDir}`] : [])])
    .split("\n")
    .filter((l) => l !== "");
const volumeExists = (name: string) => spawnSync("docker", ["volume", "inspect", name], { stdio: "ignore" }).status === 0;

describe.skipIf(skip !== undefined)("one ordered scenario: the stack beside AIXCL, another project, plain containers and AICO's bus", () => {
  orderedScenario();
  const run = randomBytes(4).toString("hex");
  const figures: string[] = [];
  const figure = (text: string) => {
    figures.push(text);
    console.info(`[docker tier, neighbours] ${text}`);
  };
  let checkout: Checkout;
  let upgrade: Run;
  const legacyService = `dockertier_legacy_${run}`;
  const output = aixclOutput(run);
  const aixcl = new NeighbourProject(
    "aixcl",
    Object.fromEntries(Object.entries(output).map(([service, first]) => [service, numbered(`${service} line`, run, 1, first)])),
    "ollama-data",
  );
  const shop = new NeighbourProject(`shop${run}`, { api: numbered("api line", run) });
  const plain = `aixcl-tier-plain-${run}`;
  const quiet = `aixcl-tier-quiet-${run}`;
  const plainContainers: string[] = [plain, quiet];
  const legacyVolumes = ["loki-data", "grafana-data", "log-consumer-spool", "broker-backlog"].map((v) => `aixcl_${v}`);

  beforeAll(async () => {
    checkout = new Checkout(currentUser());
    // The layout before the rename: compose project aixcl, nothing to migrate from.
    const compose = join(checkout.dir, "docker-compose.yml");
    const script = join(checkout.dir, "aixcl");
    writeFileSync(compose, readFileSync(compose, "utf8").replace(/^name: aixcl-logging$/m, "name: aixcl"));
    writeFileSync(script, readFileSync(script, "utf8").replace(/^PROJECT=aixcl-logging$/m, "PROJECT=aixcl").replace(/^LEGACY_PROJECT=aixcl$/m, "LEGACY_PROJECT=none"));
    const old = await checkout.run(["start"], 1_200_000);
    if (old.status !== 0) throw new Error(`the previous layout did not start:\n${old.stderr}`);
    const logger = createLogger({ subsystem: legacyService, module: "old", endpoint: "tcp://127.0.0.1:5555" });
    for (let i = 0; i < 200; i++) logger.info(`before the upgrade ${i} ${run}`);
    await logger.close();
    await until("the previous layout's lines in Loki", async () => (await count(`{service="${legacyService}"}`)) === 200, 90_000);

    // The neighbours, started after it (the old layout's `up --remove-orphans` would have removed AIXCL's ollama).
    aixcl.up();
    shop.up();
    runPlain(plain, numbered("plain line", run));
    runPlain(quiet, numbered("quiet line", run), { "org.aixcl.logging.collect": "false" });

    // The upgrade: this checkout's files as they are now, then ./aixcl start.
    copyFileSync(join(repoRoot, "docker-compose.yml"), compose);
    copyFileSync(join(repoRoot, "aixcl"), script);
    upgrade = await checkout.run(["start"], 1_200_000);
  }, 2_400_000);

  afterAll(async () => {
    if (checkout && projectContainers().length > 0) await checkout.run(["clean", "--volumes", "--yes"], 240_000);
    aixcl.remove();
    shop.remove();
    removeContainers(plainContainers);
    spawnSync("docker", ["volume", "rm", ...legacyVolumes, "aixcl_prometheus-data", "aixcl_promtail-positions", "aixcl_alertmanager-data"], { stdio: "ignore" });
    console.info(`[docker tier, neighbours] figures:\n  ${figures.join("\n  ")}`);
  }, 300_000);

  it("upgrading from the layout that ran as project aixcl keeps the logs and the Grafana password, and leaves AIXCL alone", async () => {
    expect(upgrade.status, upgrade.stderr).toBe(0);
    expect(upgrade.stderr).toContain("Upgrading from the layout that ran as compose project 'aixcl'");
    expect(containersOf("aixcl", checkout.dir)).toEqual([]);
    expect(aixcl.running()).toBe(true);
    expect(aixcl.volumeExists()).toBe(true);
    // The old volumes are copied, never removed (AIXCL's stack may share a name such as aixcl_loki-data).
    for (const v of legacyVolumes) expect(volumeExists(v), v).toBe(true);
    expect(await count(`{service="${legacyService}"}`)).toBe(200);
    const password = /^GRAFANA_ADMIN_PASSWORD=(.+)$/m.exec(readFileSync(join(checkout.dir, ".env"), "utf8"))?.[1] ?? "";
    const user = await fetch("http://127.0.0.1:3000/api/user", { headers: { Authorization: `Basic ${Buffer.from(`admin:${password}`).toString("base64")}` } });
    expect(user.status).toBe(200);
  });

  it("every container's lines reach Loki with their labels: AIXCL's, another project's, a plain one's; an opted-out one's never", async () => {
    await until("lines from the three neighbours", async () => {
      const counts = await Promise.all([`{compose_project="aixcl", compose_service="ollama"} |= "${run}"`, `{compose_project="${shop.project}"}`, `{container="${plain}"}`].map(count));
      return counts.every((n) => n >= 5);
    }, 90_000);
    const [ollama] = await entries(`{compose_project="aixcl", compose_service="ollama"} |= "${run}"`);
    expect(ollama?.labels).toMatchObject({ compose_project: "aixcl", compose_service: "ollama", container: aixcl.container, stream: "stdout", job: "containers" });
    const [api] = await entries(`{compose_project="${shop.project}"}`);
    expect(api?.labels).toMatchObject({ compose_service: "api", container: shop.container, stream: "stdout" });
    const [line] = await entries(`{container="${plain}"}`);
    expect(line?.labels).toMatchObject({ container: plain, stream: "stdout", job: "containers" });
    expect(line?.labels).not.toHaveProperty("compose_project");
    expect(line?.line).toMatch(new RegExp(`^plain line \\d+ ${run}$`));
    // Numbered lines arrive in order and whole: every number from the first to the newest.
    const seqs = (await entries(`{container="${plain}"}`)).map((e) => Number(e.line.split(" ")[2])).sort((a, b) => a - b);
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) + i));
    expect(await count(`{job="containers"} |= "quiet line"`)).toBe(0);
  });

  it("seed 003's four example queries, as LOGGING.md shows them, each find AIXCL's containers' output", async () => {
    const queries = seedQueries();
    expect(queries.map((q) => q.title)).toEqual(["All AIXCL container logs", "PostgreSQL errors", "Ollama model activity", "Authentication events"]);
    for (const q of queries) {
      await until(`a hit for ${q.title}: ${q.logql}`, async () => (await count(`${q.logql} |= "${run}"`)) > 0, 60_000);
    }
    // And only where they should: the model line is Ollama's, the error PostgreSQL's.
    expect((await entries(`${queries[1]?.logql} |= "${run}"`)).map((e) => e.labels["compose_service"])).toEqual(["postgres"]);
    expect(new Set((await entries(`${queries[2]?.logql} |= "${run}" |= "loading"`)).map((e) => e.labels["compose_service"]))).toEqual(new Set(["ollama"]));
  });

  it("a container started after the stack shows up within seconds; a removed one stops being followed", async () => {
    const late = `aixcl-tier-late-${run}`;
    plainContainers.push(late);
    const started = Date.now();
    runPlain(late, numbered("late line", run, 0.2));
    await until("the late container's first line", async () => (await count(`{container="${late}"}`)) > 0, 60_000);
    const seconds = (Date.now() - started) / 1000;
    figure(`a container started after the stack: its first line queryable in Loki ${seconds.toFixed(1)} s after docker run`);
    expect(seconds).toBeLessThan(30);
    const targets = async () => (await (await fetch(`${PROMTAIL}/targets`)).text()).includes(late);
    expect(await targets()).toBe(true);
    docker(["rm", "--force", late]);
    await until("Promtail to drop the removed container's target", async () => !(await targets()), 30_000);
  });

  it("a Python traceback printed by a container is one entry in Loki, with every line of it; the next line is its own", async () => {
    const name = `aixcl-tier-python-${run}`;
    plainContainers.push(name);
    docker(["run", "--detach", "--name", name, pythonImage(), "python3", "-c", tracebackProgram(run)]);
    await until("both entries", async () => (await count(`{container="${name}"}`)) >= 2, 60_000);
    await sleep(2000);
    const lines = (await entries(`{container="${name}"}`)).sort((a, b) => (a.ts < b.ts ? -1 : 1)).map((e) => e.line);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(CHAINED_TRACEBACK);
    expect(lines[0]).toContain(`charging failed ${run}`);
    expect(lines[1]).toBe(`done ${run}`);
  });

  it("50 containers logging 10 lines/s each: every line in Loki; Promtail's CPU and memory", { timeout: 600_000 }, async () => {
    const names = Array.from({ length: 50 }, (_, i) => `aixcl-tier-load-${run}-${i}`);
    plainContainers.push(...names);
    for (const name of names) runPlain(name, numbered("load line", run, 0.1));
    const cpu = async () => (await metricSample(PROMTAIL, "process_cpu_seconds_total")) ?? 0;
    const rss = async () => (await metricSample(PROMTAIL, "process_resident_memory_bytes")) ?? 0;
    await sleep(10_000);
    const [cpu0, t0] = [await cpu(), Date.now()];
    let peak = 0;
    while (Date.now() - t0 < 60_000) {
      peak = Math.max(peak, await rss());
      await sleep(2000);
    }
    const share = (await cpu()) - cpu0;
    const seconds = (Date.now() - t0) / 1000;
    docker(["stop", "--time", "1", ...names]);
    // Every line Docker logged for them is in Loki.
    const logged = names.map((n) => spawnSync("docker", ["logs", n], { encoding: "utf8", maxBuffer: 64 << 20 }).stdout.split("\n").filter((l) => l !== "").length);
    const total = logged.reduce((a, b) => a + b, 0);
    await until("every load line in Loki", async () => (await count(`{container=~"aixcl-tier-load-${run}-.*"}`)) >= total, 120_000);
    expect(await count(`{container=~"aixcl-tier-load-${run}-.*"}`)).toBe(total);
    figure(`50 containers at 10 lines/s (${total} lines): Promtail ${((share / seconds) * 100).toFixed(1)}% of one core, peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB over ${seconds.toFixed(0)} s`);
    removeContainers(names);
  });

  it("AIXCL_COLLECT_PROJECTS in .env keeps only the named projects and the stack's own; the rest are left out", { timeout: 600_000 }, async () => {
    const env = join(checkout.dir, ".env");
    const original = readFileSync(env, "utf8");
    const left = `aixcl-tier-left-${run}`;
    plainContainers.push(left);
    try {
      writeFileSync(env, `${original}\nAIXCL_COLLECT_PROJECTS=aixcl\n`);
      const r = await checkout.run(["start"], 300_000);
      expect(r.status, r.stderr).toBe(0);
      runPlain(left, numbered("left line", run, 0.2));
      const shopBefore = await count(`{compose_project="${shop.project}"}`);
      const ollamaBefore = await count(`{compose_project="aixcl", compose_service="ollama"}`);
      const own = `{compose_project="${PROJECT}", compose_service="alertmanager"} |= "Loading configuration file"`;
      const ownBefore = await count(own);
      // The stack's own services log little when idle: a SIGHUP makes Alertmanager log its configuration reload now.
      expect(spawnSync("docker", ["kill", "--signal", "HUP", `${PROJECT}-alertmanager-1`]).status).toBe(0);
      // AIXCL's project and the stack's own go on arriving, well past Promtail's 5 s discovery refresh.
      await until("AIXCL's newer lines", async () => (await count(`{compose_project="aixcl", compose_service="ollama"}`)) >= ollamaBefore + 10, 60_000);
      await until("the stack's own newer lines (Alertmanager's reload)", async () => (await count(own)) > ownBefore, 60_000);
      expect(await count(`{container="${left}"}`)).toBe(0);
      expect(await count(`{compose_project="${shop.project}"}`)).toBe(shopBefore);
    } finally {
      writeFileSync(env, original);
      const back = await checkout.run(["start"], 300_000);
      expect(back.status, back.stderr).toBe(0);
    }
    await until("every container again", async () => (await count(`{container="${left}"}`)) > 0, 60_000);
  });

  it("./aixcl stop, start and clean --volumes --yes leave AIXCL's containers and volume, the other project and plain containers running", { timeout: 600_000 }, async () => {
    for (const args of [["stop"], ["start"], ["clean", "--volumes", "--yes"]]) {
      const r = await checkout.run(args, 300_000);
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      expect(aixcl.running(), `AIXCL's ollama after ./aixcl ${args.join(" ")}`).toBe(true);
      expect(shop.running(), `the other project after ./aixcl ${args.join(" ")}`).toBe(true);
      expect(docker(["inspect", "--format", "{{.State.Running}}", plain])).toBe("true");
    }
    expect(aixcl.volumeExists()).toBe(true);
    expect(projectContainers()).toEqual([]);
  });

  it("./aixcl start with a published port taken says which port, who holds it and what to do; nothing starts", { timeout: 600_000 }, async () => {
    const holder = `aixcl-tier-port-${run}`;
    plainContainers.push(holder);
    docker(["run", "--detach", "--name", holder, "--publish", "127.0.0.1:5555:5555", "debian:bookworm-slim", "sleep", "600"]);
    try {
      const r = await checkout.run(["start"], 300_000);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`127.0.0.1:5555 (BROKER_PUB_PORT, broker) is in use by container ${holder}`);
      expect(r.stderr).toContain("AIXCL_BUS_HOST");
      expect(projectContainers()).toEqual([]);
    } finally {
      docker(["rm", "--force", holder]);
    }
  });

  it("AICO's bus: with AIXCL_BUS_HOST the consumer reads AICO's broker, the stack runs none, AICO's envelopes reach Loki", { timeout: 900_000 }, async () => {
    // AICO's broker on the host, bound where containers reach it (the host's address on Docker's bridge, via
    // host.docker.internal); here a broker process of ours in that role, on ports of its own.
    const [pub, sub, metrics] = [await freePort(), await freePort(), await freePort()];
    const broker = spawn(process.execPath, [join(repoRoot, "services/broker/dist/main.js")], {
      env: { ...process.env, MESSAGE_BUS_CONFIG: join(repoRoot, "config/message_bus.yaml"), MESSAGE_BUS_HOST: "0.0.0.0", MESSAGE_BUS_PUB_PORT: String(pub), MESSAGE_BUS_SUB_PORT: String(sub), MESSAGE_BUS_METRICS_PORT: String(metrics), MESSAGE_BUS_METRICS_HOST: "127.0.0.1", MESSAGE_BUS_KEYS_DIR: "" },
      stdio: "ignore",
    });
    const env = join(checkout.dir, ".env");
    const original = readFileSync(env, "utf8");
    try {
      writeFileSync(env, `${original}\nAIXCL_BUS_HOST=host.docker.internal\nAIXCL_BUS_SUB_PORT=${sub}\nAIXCL_BUS_PUB_PORT=${pub}\n`);
      const r = await checkout.run(["start"], 600_000);
      expect(r.status, r.stderr).toBe(0);
      expect(allHealthy(SERVICES.filter((s) => s !== "broker"))).toBe(true);
      expect(spawnSync("docker", ["inspect", `${PROJECT}-broker-1`], { stdio: "ignore" }).status).not.toBe(0);
      // An AICO service: a plain PUB socket sending AICO's envelope on its logs/ topic.
      const service = `dockertier_aico_${run}`;
      const publisher = new Publisher({ linger: 1000 });
      publisher.connect(`tcp://127.0.0.1:${pub}`);
      await until("the consumer to receive through AICO's broker", async () => {
        const entry = { timestampNs: nowNs(), level: "info", subsystem: service, module: "core", function: "", message: `aico ${run}`, topic: "", metadata: {}, filePath: "", lineNumber: 0, userUuid: "", sessionId: "", traceId: "", extra: {} } as const;
        await publisher.send([`logs/${service}/core/v1`, encodeAicoMessage(entry, { messageId: randomBytes(8).toString("hex"), timestampNs: entry.timestampNs, source: "aico" })]);
        return (await count(`{service="${service}"}`)) > 0;
      }, 120_000);
      publisher.close();
      const bus = await checkout.run(["bus", "test"], 180_000);
      expect(bus.status, `${bus.stdout}${bus.stderr}`).toBe(0);
    } finally {
      writeFileSync(env, original);
      broker.kill("SIGTERM");
    }
  });
});
