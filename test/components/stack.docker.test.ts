import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerComposeEnvironment, Wait, getContainerRuntimeClient, type StartedDockerComposeEnvironment } from "testcontainers";
import { createLogger } from "@aixcl/shared";
import { freePort, queryRange, repoRoot } from "@aixcl/testkit";

/**
 * Docker tier: the whole compose stack from docker-compose.yml, with the official images. Needs a Docker
 * engine; where none answers a ping, the suite is skipped and says why (it never passes without running).
 */
async function dockerEngine(): Promise<string | undefined> {
  try {
    const client = await getContainerRuntimeClient();
    const info = client.info.containerRuntime;
    console.info(`[docker tier] engine reachable: ${info.host} (server ${info.serverVersion}, ${info.operatingSystem})`);
    return undefined;
  } catch (err) {
    return `no Docker engine reachable (${err instanceof Error ? err.message : String(err)})`;
  }
}

const noEngine = await dockerEngine();
if (noEngine) console.warn(`[skipped] compose stack tests: ${noEngine}`);

const services = ["loki", "promtail", "prometheus", "grafana", "broker", "log-consumer"];

describe.skipIf(noEngine !== undefined)("the compose stack (docker-compose.yml, official images)", () => {
  let env: StartedDockerComposeEnvironment;
  const ports: Record<string, number> = {};
  const password = randomUUID();
  const url = (portVar: string) => `http://127.0.0.1:${ports[portVar]}`;
  const grafanaAuth = { Authorization: `Basic ${Buffer.from(`admin:${password}`).toString("base64")}` };

  beforeAll(async () => {
    // Every published port comes from the environment, so this run cannot collide with a running stack,
    // and a project name of its own keeps its containers and volumes apart from the real `aixcl` project.
    for (const v of ["LOKI_PORT", "PROMTAIL_PORT", "PROMETHEUS_PORT", "GRAFANA_PORT", "BROKER_PUB_PORT", "BROKER_SUB_PORT", "BROKER_METRICS_PORT", "CONSUMER_METRICS_PORT"]) {
      ports[v] = await freePort();
    }
    env = await new DockerComposeEnvironment(repoRoot, "docker-compose.yml")
      .withProjectName(`aixcl-test-${randomUUID().slice(0, 8)}`)
      .withEnvironment({ ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])), GRAFANA_ADMIN_PASSWORD: password })
      .withBuild()
      .withDefaultWaitStrategy(Wait.forHealthCheck())
      .withStartupTimeout(300_000)
      .up(services);
  }, 900_000);

  afterAll(async () => {
    await env?.down({ removeVolumes: true, timeout: 30_000 });
  }, 120_000);

  it("has every service healthy", async () => {
    const client = await getContainerRuntimeClient();
    for (const s of services) {
      const inspect = await client.container.inspect(client.container.getById(env.getContainer(`${s}-1`).getId()));
      expect(inspect.State.Health?.Status, s).toBe("healthy");
    }
  });

  it("delivers a log entry published on the bus to Loki", { timeout: 60_000 }, async () => {
    const run = randomUUID();
    const logger = createLogger({ subsystem: "stacktest", module: "docker_tier", endpoint: `tcp://127.0.0.1:${ports["BROKER_PUB_PORT"]}` });
    const deadline = Date.now() + 20_000;
    while (!logger.connected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    logger.info(`docker tier ${run}`);
    await logger.close();
    await expect
      .poll(async () => (await queryRange(url("LOKI_PORT"), `{service="stacktest"} |= "${run}"`)).flatMap((s) => s.values.map((v) => v[1])), { timeout: 40_000, interval: 1000 })
      .toEqual([expect.stringContaining(run)]);
  });

  it("has Grafana's provisioned datasources (fixed uids) and every dashboard under grafana/dashboards", async () => {
    const ds = (await (await fetch(`${url("GRAFANA_PORT")}/api/datasources`, { headers: grafanaAuth })).json()) as { uid: string }[];
    expect(ds.map((d) => d.uid)).toEqual(expect.arrayContaining(["loki", "prometheus"]));
    const expected = readdirSync(join(repoRoot, "grafana/dashboards"))
      .filter((f) => f.endsWith(".json"))
      .map((f) => (JSON.parse(readFileSync(join(repoRoot, "grafana/dashboards", f), "utf8")) as { uid: string }).uid);
    expect(expected.length).toBeGreaterThan(0);
    const found = (await (await fetch(`${url("GRAFANA_PORT")}/api/search?type=dash-db`, { headers: grafanaAuth })).json()) as { uid: string }[];
    expect(found.map((d) => d.uid)).toEqual(expect.arrayContaining(expected));
  });

  it("has Prometheus scraping every service with all targets up", { timeout: 90_000 }, async () => {
    const jobs = ["prometheus", "loki", "promtail", "broker", "log-consumer", "grafana"];
    await expect
      .poll(
        async () => {
          const body = (await (await fetch(`${url("PROMETHEUS_PORT")}/api/v1/targets?state=active`)).json()) as { data: { activeTargets: { labels: { job: string }; health: string }[] } };
          return Object.fromEntries(body.data.activeTargets.map((t) => [t.labels.job, t.health]));
        },
        { timeout: 80_000, interval: 2000 },
      )
      .toEqual(Object.fromEntries(jobs.map((j) => [j, "up"])));
  });
});
