/**
 * The Docker tier across machines (issue 25), on one machine: a second Docker network stands in for a second host.
 * A container attached only to that network reaches this host the way another machine would, through an address of
 * the host's (the network's gateway), where AIXCL_BUS_BIND publishes the broker's two bus ports; it never shares a
 * network with the stack. One ordered scenario: without keys ./aixcl start refuses that address and creates nothing;
 * with keys the stack starts, a keyed publisher there gets every line into Loki (counted by LogQL), and an unkeyed one
 * is refused at the handshake: none of its lines ever arrive. Last, the consumer is pointed at a "remote Loki" over
 * TLS with basic auth from .env (AIXCL_LOKI_*): a hand-written HTTPS proxy (the testkit's checkingProxy), on the host, checking the
 * Authorization header before forwarding to the stack's Loki.
 *
 * Outside CI it skips, saying why, where the other Docker-tier files would (no engine, no images, the stack's project
 * already running here).
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkingProxy, queryInstant, repoRoot, testCertificates } from "@aixcl/testkit";
import { Checkout, currentUser } from "./checkout.js";
import { container, docker, projectContainers, tierProblem } from "./engine.js";
import { LOKI } from "./load.js";
import { orderedScenario, until } from "./scenario.js";

const BROKER_METRICS = "http://127.0.0.1:9464";

const skip = tierProblem("across hosts", repoRoot);
if (skip) console.warn(`[skipped] Docker tier, across hosts: ${skip}`);

const count = async (logql: string) => (await queryInstant(LOKI, `sum(count_over_time(${logql}[1h]))`))[0]?.value ?? 0;

/** The sum of every sample of a counter on the broker's /metrics (all label values). */
async function brokerCounter(name: string): Promise<number> {
  const text = await (await fetch(`${BROKER_METRICS}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/**
 * A publisher on the other "host": our Node logger (@aixcl/client-logger, in the consumer's image) logging `lines`
 * numbered lines to the broker at `endpoint`, with the keys of MESSAGE_BUS_KEYS_DIR when given. It waits up to
 * PUB_WAIT_MS for a subscriber to take them, then closes and prints its stats.
 */
const PUBLISHER = `
import { createLogger } from "@aixcl/client-logger";
const e = process.env;
const log = createLogger({ subsystem: e.PUB_SERVICE, module: "remote", endpoint: e.PUB_ENDPOINT, closeTimeoutMs: 1000 });
for (let i = 0; i < Number(e.PUB_COUNT); i++) log.info("remote line " + i + " " + e.PUB_RUN);
const deadline = Date.now() + Number(e.PUB_WAIT_MS);
while (log.stats().buffered > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
console.log(JSON.stringify(await log.close()));
`;



interface PublisherStats {
  published: number;
  buffered: number;
  dropped: Record<string, number>;
}

describe.skipIf(skip !== undefined)("one ordered scenario: a publisher on another host (a second Docker network) through AIXCL_BUS_BIND", () => {
  orderedScenario();
  const run = randomBytes(4).toString("hex");
  const network = `aixcl-tier-remote-${run}`;
  const figures: string[] = [];
  const figure = (text: string) => {
    figures.push(text);
    console.info(`[docker tier, across hosts] ${text}`);
  };
  let checkout: Checkout;
  let gateway = "";

  beforeAll(() => {
    checkout = new Checkout(currentUser());
    docker(["network", "create", "--label", "org.aixcl.dockertier=remote-host", network]);
    // The host's address on that network: what "another machine" reaches this one at.
    gateway = docker(["network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", network]);
    // .env as ./aixcl start writes it, with the bus ports bound to that address.
    const example = readFileSync(join(checkout.dir, ".env.example"), "utf8");
    const env = example
      .replace(/^GRAFANA_ADMIN_PASSWORD=$/m, `GRAFANA_ADMIN_PASSWORD=${randomBytes(16).toString("hex")}`)
      .replace(/^AIXCL_BUS_BIND=.*$/m, `AIXCL_BUS_BIND=${gateway}`);
    writeFileSync(join(checkout.dir, ".env"), env, { mode: 0o600 });
  }, 120_000);

  afterAll(async () => {
    if (checkout && projectContainers().length > 0) await checkout.run(["clean", "--volumes", "--yes"], 240_000);
    spawnSync("docker", ["network", "rm", network], { stdio: "ignore" });
    console.info(`[docker tier, across hosts] figures:\n  ${figures.join("\n  ")}`);
  }, 300_000);

  /** Runs the publisher in a container attached to the other network only; with `keys`, as client remote-pub. */
  function publish(service: string, lines: number, keys: boolean, waitMs: number): PublisherStats {
    const keysDir = join(checkout.dir, "keys", "clients", "remote-pub");
    // The user the key files belong to (the services' uid): it reads the 0600 secret.
    const owner = keys ? statSync(keysDir) : undefined;
    const args = [
      "run", "--rm", "--network", network, "--entrypoint", "node",
      ...(owner ? ["--user", `${owner.uid}:${owner.gid}`, "--volume", `${keysDir}:/keys:ro`, "--env", "MESSAGE_BUS_KEYS_DIR=/keys", "--env", "MESSAGE_BUS_CLIENT_NAME=remote-pub"] : []),
      "--env", `PUB_ENDPOINT=tcp://${gateway}:5555`, "--env", `PUB_SERVICE=${service}`, "--env", `PUB_COUNT=${lines}`, "--env", `PUB_RUN=${run}`, "--env", `PUB_WAIT_MS=${waitMs}`,
      "aixcl-log-consumer:local", "--input-type=module", "-e", PUBLISHER,
    ];
    const r = spawnSync("docker", args, { encoding: "utf8", timeout: waitMs + 60_000 });
    if (r.status !== 0) throw new Error(`the publisher container failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as PublisherStats;
  }

  it("without keys, ./aixcl start refuses to publish the bus beyond 127.0.0.1, says what to do, and creates nothing", async () => {
    const r = await checkout.run(["start"], 120_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`AIXCL_BUS_BIND=${gateway} publishes the bus ports (5555, 5556) beyond this machine, and the bus has no CurveZMQ keys`);
    expect(r.stderr).toContain("./aixcl keys");
    expect(projectContainers()).toEqual([]);
    figure(`refused in ${(r.ms / 1000).toFixed(1)} s, nothing created`);
  });

  it("with keys (./aixcl keys remote-pub), the stack starts with the bus ports on that address and its metrics on 127.0.0.1", { timeout: 1_200_000 }, async () => {
    const keys = await checkout.run(["keys", "remote-pub"], 600_000);
    expect(keys.status, keys.stderr).toBe(0);
    const start = await checkout.run(["start"], 1_200_000);
    expect(start.status, start.stderr).toBe(0);
    figure(`./aixcl keys ${(keys.ms / 1000).toFixed(1)} s, ./aixcl start (bus on ${gateway}, CURVE) ${(start.ms / 1000).toFixed(1)} s`);
    const ports = docker(["port", container("broker")]).split("\n").sort();
    expect(ports).toEqual([`5555/tcp -> ${gateway}:5555`, `5556/tcp -> ${gateway}:5556`, "9464/tcp -> 127.0.0.1:9464"]);
    expect(await brokerCounter("aixcl_broker_curve_enabled")).toBe(1);
  });

  it("a keyed publisher on the other network: every line reaches Loki", { timeout: 180_000 }, async () => {
    const service = `remote_keyed_${run}`;
    const started = Date.now();
    const stats = publish(service, 500, true, 30_000);
    expect(stats).toMatchObject({ published: 500, buffered: 0 });
    await until("500 remote lines in Loki", async () => (await count(`{service="${service}"}`)) >= 500, 60_000);
    expect(await count(`{service="${service}"} |= "${run}"`)).toBe(500);
    figure(`500 lines from the other network, keyed: all in Loki ${((Date.now() - started) / 1000).toFixed(1)} s after the publisher started`);
  });

  it("an unkeyed publisher on the other network is refused at the handshake: none of its lines ever arrive", { timeout: 180_000 }, async () => {
    const service = `remote_unkeyed_${run}`;
    const failuresBefore = await brokerCounter("aixcl_broker_handshake_failures_total");
    const stats = publish(service, 100, false, 8_000);
    // Nobody ever subscribed for it: it held its lines and gave them up at close.
    expect(stats.published).toBe(0);
    expect(await brokerCounter("aixcl_broker_handshake_failures_total")).toBeGreaterThan(failuresBefore);
    // A keyed line sent after it arrives, so the pipeline flowed all along; the unkeyed lines are not there.
    const marker = `remote_marker_${run}`;
    expect(publish(marker, 1, true, 30_000)).toMatchObject({ published: 1 });
    await until("the keyed marker in Loki", async () => (await count(`{service="${marker}"}`)) >= 1, 60_000);
    expect(await count(`{service="${service}"}`)).toBe(0);
  });

  it("the consumer pushes to a remote Loki over TLS with basic auth from .env; the password only in a secret file", { timeout: 600_000 }, async () => {
    const certs = testCertificates("DNS:host.docker.internal");
    mkdirSync(join(checkout.dir, "certs"));
    copyFileSync(certs.caFile, join(checkout.dir, "certs", "loki-ca.pem"));
    const password = `pa55-${randomBytes(8).toString("hex")}`;
    // host.docker.internal is Docker's host gateway, the default bridge's address on this host.
    const hostGateway = docker(["network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", "bridge"]);
    const gatewayProxy = await checkingProxy(LOKI, `Basic ${Buffer.from(`edge-1:${password}`).toString("base64")}`, { tls: certs, host: hostGateway });
    try {
      appendFileSync(
        join(checkout.dir, ".env"),
        `\nAIXCL_LOKI_URL=https://host.docker.internal:${gatewayProxy.port}\nAIXCL_LOKI_CA_FILE=./certs/loki-ca.pem\nAIXCL_LOKI_USERNAME=edge-1\nAIXCL_LOKI_PASSWORD=${password}\nAIXCL_CONSUMER_LABELS=host=edge-1\n`,
      );
      const start = await checkout.run(["start"], 600_000);
      expect(start.status, start.stderr).toBe(0);
      figure(`./aixcl start with a remote Loki (TLS, basic auth) ${(start.ms / 1000).toFixed(1)} s`);
      // The password is in no container's environment or command, only in the consumer's secret file.
      const env = docker(["inspect", "--format", "{{json .Config.Env}} {{json .Config.Cmd}}", container("log-consumer")]);
      expect(env).not.toContain(password);
      expect(env).toContain("LOKI_PASSWORD_FILE=/run/secrets/loki_password");
      expect(env).toContain("LOKI_CA_FILE=/etc/aixcl/loki-ca.pem");
      expect(docker(["exec", container("log-consumer"), "cat", "/run/secrets/loki_password"])).toBe(password);
      for (const other of ["loki", "broker", "grafana"]) expect(docker(["inspect", "--format", "{{json .Mounts}}", container(other)])).not.toContain("loki_password");

      const service = `remote_tls_${run}`;
      expect(publish(service, 100, true, 30_000)).toMatchObject({ published: 100 });
      await until("100 lines through the TLS gateway", async () => (await count(`{service="${service}", host="edge-1"}`)) >= 100, 60_000);
      expect(await count(`{service="${service}", host="edge-1"}`)).toBe(100);
      const pushes = gatewayProxy.seen.filter((s) => s.path === "/loki/api/v1/push");
      expect(pushes.length).toBeGreaterThan(0);
      expect(gatewayProxy.seen.filter((s) => s.authorization !== `Basic ${Buffer.from(`edge-1:${password}`).toString("base64")}`)).toEqual([]);
      figure(`remote Loki over TLS: 100 lines through the gateway in ${pushes.length} pushes`);
    } finally {
      await gatewayProxy.close();
    }
  });
});
