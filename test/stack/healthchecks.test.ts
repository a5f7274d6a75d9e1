/**
 * The healthcheck commands of docker-compose.yml, run for real against the real components: no Docker engine
 * here, so each command runs on this machine with the container's port swapped for the test process' port.
 * This is what proves the Loki check works without a shell (the AIXCL bug) and that each check tells a
 * ready service from one that is not.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { RunningBroker } from "@aixcl/broker";
import type { ServiceLog } from "@aixcl/service-runtime";
import type { LokiHandle } from "@aixcl/testkit";
import { componentBinary, freePort, requireComponent, startAlertmanager, startLoki, startPrometheus, startPromtail, tempDir } from "@aixcl/testkit";
import { startShippedConsumer, startTestBroker } from "@aixcl/bus-harness";

const root = fileURLToPath(new URL("../../", import.meta.url));
const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, { healthcheck: { test: string[] } }>;
};
const silent: ServiceLog = { debug() {}, info() {}, warn() {}, error() {} };

/** The service's healthcheck argv (after "CMD") with its container port replaced by `port`. */
function healthcheck(service: string, containerPort: number, port: number): string[] {
  const [kind, ...argv] = compose.services[service]?.healthcheck.test ?? [];
  expect(kind).toBe("CMD");
  const swapped = argv.map((a) => a.replaceAll(`127.0.0.1:${containerPort}`, `127.0.0.1:${port}`).replaceAll(`127.0.0.1/${containerPort}`, `127.0.0.1/${port}`));
  expect(swapped, `${service}'s healthcheck addresses 127.0.0.1:${containerPort}`).not.toEqual(argv);
  return swapped;
}

function exec(argv: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(argv[0] as string, argv.slice(1), { timeout: 15_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

async function eventually(argv: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await exec(argv);
    if (r.code === 0 || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 500));
  }
}

const loki = requireComponent("loki");
if (loki.skip) console.warn(`SKIPPED Loki healthcheck tests: ${loki.skip}`);

describe.skipIf(loki.skip !== undefined)("Loki: `loki -health` works without a shell", () => {
  let handle: LokiHandle;
  beforeAll(async () => {
    handle = await startLoki();
  });
  afterAll(async () => handle?.stop());

  it("exits 0 against a ready Loki", async () => {
    const argv = healthcheck("loki", 3100, handle.httpPort);
    expect(argv[0]).toBe("/usr/bin/loki");
    const r = await exec([componentBinary("loki") as string, ...argv.slice(1)]);
    expect(r).toEqual({ code: 0, output: "Loki is healthy\n" });
  });

  it("exits non-zero when nothing answers", async () => {
    const argv = healthcheck("loki", 3100, await freePort());
    const r = await exec([componentBinary("loki") as string, ...argv.slice(1)]);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain("Health check failed");
  });
});

const promtail = requireComponent("promtail");
if (promtail.skip) console.warn(`SKIPPED Promtail healthcheck tests: ${promtail.skip}`);

describe.skipIf(loki.skip !== undefined || promtail.skip !== undefined)("Promtail: HTTP over bash's /dev/tcp (the image has no curl or wget)", () => {
  let handle: LokiHandle;
  beforeAll(async () => {
    handle = await startLoki();
  });
  afterAll(async () => handle?.stop());

  async function promtailWith(logFile: boolean) {
    const varLogDir = tempDir("varlog");
    if (logFile) writeFileSync(join(varLogDir, "syslog.log"), "a line\n");
    return startPromtail({ lokiUrl: handle.url, varLogDir });
  }

  it("exits 0 once Promtail has something to tail", async () => {
    const p = await promtailWith(true);
    try {
      const r = await eventually(healthcheck("promtail", 9080, p.httpPort), 20_000);
      expect(r.code).toBe(0);
    } finally {
      await p.stop();
    }
  });

  it("fails once Promtail is down", async () => {
    const p = await promtailWith(true);
    const argv = healthcheck("promtail", 9080, p.httpPort);
    expect((await eventually(argv, 20_000)).code).toBe(0);
    await p.stop();
    expect((await exec(argv)).code).not.toBe(0);
  });

  it("reads the HTTP status line: a server answering 404 fails it", async () => {
    // Any HTTP server will do to show the status is checked, not merely that the port accepts connections.
    const argv = healthcheck("promtail", 9080, handle.httpPort).map((a) => a.replace("GET /ready", "GET /no-such-path"));
    expect((await exec(argv)).code).not.toBe(0);
  });
});

const prometheus = requireComponent("prometheus");
const hasWget = (await exec(["wget", "--version"])).code === 0;
if (prometheus.skip) console.warn(`SKIPPED Prometheus healthcheck test: ${prometheus.skip}`);
if (!hasWget) console.warn("SKIPPED Prometheus healthcheck test: no wget on this machine (the prom/prometheus image has busybox wget)");

describe.skipIf(prometheus.skip !== undefined || !hasWget)("Prometheus: wget (busybox in the image)", () => {
  it("exits 0 against a ready Prometheus and non-zero once it is gone", async () => {
    const p = await startPrometheus();
    const argv = healthcheck("prometheus", 9090, p.httpPort);
    try {
      expect((await eventually(argv, 20_000)).code).toBe(0);
    } finally {
      await p.stop();
    }
    expect((await exec(argv)).code).not.toBe(0);
  });
});

const alertmanager = requireComponent("alertmanager");
if (alertmanager.skip) console.warn(`SKIPPED Alertmanager healthcheck test: ${alertmanager.skip}`);
if (!hasWget) console.warn("SKIPPED Alertmanager healthcheck test: no wget on this machine (the prom/alertmanager image has busybox wget)");

describe.skipIf(alertmanager.skip !== undefined || !hasWget)("Alertmanager: wget (busybox in the image)", () => {
  it("exits 0 against a ready Alertmanager and non-zero once it is gone", async () => {
    const a = await startAlertmanager();
    const argv = healthcheck("alertmanager", 9093, a.httpPort);
    try {
      expect((await eventually(argv, 20_000)).code).toBe(0);
    } finally {
      await a.stop();
    }
    expect((await exec(argv)).code).not.toBe(0);
  });
});

describe("our services: node fetch of /readyz", () => {
  let broker: RunningBroker;
  beforeAll(async () => {
    broker = await startTestBroker({}, silent);
  });
  afterAll(async () => broker?.close());

  it("broker: exits 0 while the broker serves, non-zero once it stopped", async () => {
    const argv = healthcheck("broker", 9464, broker.ops.port);
    expect(argv[0]).toBe("node");
    expect((await exec([process.execPath, ...argv.slice(1)])).code).toBe(0);
    const other = await startTestBroker({}, silent);
    const stopped = healthcheck("broker", 9464, other.ops.port);
    await other.close();
    expect((await exec([process.execPath, ...stopped.slice(1)])).code).not.toBe(0);
  });

  it.skipIf(loki.skip !== undefined)("log-consumer: exits 0 when ready (bus and Loki reachable), non-zero when Loki is not", async () => {
    const handle = await startLoki();
    const consumerWith = (lokiUrl: string) => startShippedConsumer(broker.subEndpoint, lokiUrl, silent);
    const good = await consumerWith(handle.url);
    const bad = await consumerWith(`http://127.0.0.1:${await freePort()}`);
    try {
      const port = (c: { opsUrl: string }) => Number(new URL(c.opsUrl).port);
      expect((await eventually([process.execPath, ...healthcheck("log-consumer", 9465, port(good)).slice(1)], 10_000)).code).toBe(0);
      expect((await exec([process.execPath, ...healthcheck("log-consumer", 9465, port(bad)).slice(1)])).code).not.toBe(0);
    } finally {
      await good.stop();
      await bad.stop();
      await handle.stop();
    }
  });

  it.skipIf(loki.skip !== undefined)("bus: exits 0 only when both its broker's and its consumer's /readyz answer 200", async () => {
    const handle = await startLoki();
    const good = await startShippedConsumer(broker.subEndpoint, handle.url, silent);
    const bad = await startShippedConsumer(broker.subEndpoint, `http://127.0.0.1:${await freePort()}`, silent);
    const gone = await startTestBroker({}, silent);
    await gone.close();
    /** The bus' healthcheck with the broker's port 9464 and the consumer's 9465 replaced by these processes'. */
    const bus = (brokerPort: number, consumer: { opsUrl: string }) => {
      const argv = healthcheck("bus", 9464, brokerPort);
      const both = argv.map((a) => a.replaceAll("127.0.0.1:9465", `127.0.0.1:${new URL(consumer.opsUrl).port}`));
      expect(both, "the bus' healthcheck addresses 127.0.0.1:9465").not.toEqual(argv);
      return [process.execPath, ...both.slice(1)];
    };
    try {
      expect((await eventually(bus(broker.ops.port, good), 10_000)).code).toBe(0);
      expect((await exec(bus(broker.ops.port, bad))).code).not.toBe(0);
      expect((await exec(bus(gone.ops.port, good))).code).not.toBe(0);
    } finally {
      await good.stop();
      await bad.stop();
      await handle.stop();
    }
  });
});
