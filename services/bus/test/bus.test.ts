/**
 * The broker and the consumer in one process (dist/main.js): publishers reach Loki through it, the consumer
 * subscribes inside the process (inproc), SIGTERM stops both cleanly, and with the broker's CURVE keys (all the
 * compose bus service mounts) it starts, admits only listed publishers and reloads the allow-list on SIGHUP.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Publisher } from "zeromq";
import { createLogger, loadClientKeys } from "@aixcl/client-logger";
import { generateKeys, stackKeyDirs } from "@aixcl/service-runtime";
import { freePort, logMessage, queryAll, repoRoot, startLoki, tempDir, until, watchServiceProcess } from "@aixcl/testkit";

const busMain = fileURLToPath(new URL("../dist/main.js", import.meta.url));

beforeAll(() => {
  // This runs the build, not the sources: `npm test` builds first; alone, build with `npx tsc -b services/bus`.
  if (!existsSync(busMain)) throw new Error(`${busMain} is missing: run \`npx tsc -b services/bus\` first`);
});

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs dist/main.js with the shipped config files and `env`, until both parts said they started; its JSON log lines are collected as they come. */
async function spawnBus(env: Record<string, string>) {
  const child = spawn(process.execPath, [busMain], {
    env: {
      ...process.env,
      MESSAGE_BUS_CONFIG: `${repoRoot}config/message_bus.yaml`,
      LOG_CONSUMER_CONFIG: `${repoRoot}config/log_consumer.yaml`,
      MESSAGE_BUS_HOST: "127.0.0.1",
      // Any free port: the consumer must subscribe where the broker bound, not to the configured 0.
      MESSAGE_BUS_SUB_PORT: "0",
      MESSAGE_BUS_METRICS_PORT: "0",
      LOG_CONSUMER_OPS_PORT: "0",
      LOG_CONSUMER_SPOOL_DIR: "",
      LOG_CONSUMER_BATCH_MAX_WAIT: "100ms",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const { lines, exited, dispose } = watchServiceProcess(child);
  cleanups.push(dispose);
  await until("both started", () => lines.some((l) => l.msg === "broker started") && lines.some((l) => l.msg === "log consumer started"), 20_000);
  return { child, lines, exited };
}

describe("services/bus: broker and log consumer in one process", () => {
  it("delivers a published line to Loki through its own broker, and stops cleanly on SIGTERM", async () => {
    const loki = await startLoki();
    cleanups.push(() => loki.stop());
    const pubPort = await freePort();
    const { child, lines, exited } = await spawnBus({ MESSAGE_BUS_PUB_PORT: String(pubPort), LOKI_URL: loki.url });
    const subEndpoint = String(lines.find((l) => l.msg === "broker started")?.subEndpoint);
    expect(subEndpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
    // Its consumer subscribes inside the process, not over the port other subscribers use.
    expect(lines.find((l) => l.msg === "log consumer started")).toMatchObject({ bus: "inproc://aixcl-bus-subscribers" });

    const pub = new Publisher({ linger: 0 });
    cleanups.push(() => pub.close());
    pub.connect(`tcp://127.0.0.1:${pubPort}`);
    // A PUB socket drops what it sends before it has heard the broker's subscriptions: send until one arrives.
    const delivered = async () => (await queryAll(loki.url, '{service="bus-test"}')).some(([, line]) => line.startsWith("one process, one line"));
    for (let tries = 0; !(await delivered()) && tries < 100; tries++) {
      await pub.send(logMessage("aixcl", "bus-test", "main", "one process, one line"));
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await delivered()).toBe(true);

    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    // The broker stops first, so what publishers sent until they held reaches the consumer, which flushes it.
    const messages = lines.map((l) => l.msg);
    expect(messages).toContain("broker stopped");
    expect(messages.indexOf("broker stopped")).toBeLessThan(messages.indexOf("flushed everything before stopping"));
  });

  it("starts with the broker's CURVE keys alone (the consumer inside has none), and reloads the allow-list on SIGHUP", async () => {
    const keys = tempDir("bus-keys");
    // As `./aixcl keys` makes them: the broker's pair and an allow-list with a client (an empty one is refused).
    generateKeys(keys, ["cli"]);
    const { child, lines, exited } = await spawnBus({
      MESSAGE_BUS_PUB_PORT: String(await freePort()),
      MESSAGE_BUS_KEYS_DIR: stackKeyDirs(keys).broker,
      LOKI_URL: `http://127.0.0.1:${await freePort()}`,
      LOG_CONSUMER_FLUSH_DEADLINE: "1s",
    });
    child.kill("SIGHUP");
    await until("the allow list reloaded", () => lines.some((l) => l.msg === "allow list reloaded"), 10_000);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });

  it("with CURVE on, its consumer gets a listed client's lines into Loki; an unlisted publisher's never arrive", async () => {
    const loki = await startLoki();
    cleanups.push(() => loki.stop());
    const keys = tempDir("bus-keys");
    generateKeys(keys, ["app"]);
    const pubPort = await freePort();
    await spawnBus({ MESSAGE_BUS_PUB_PORT: String(pubPort), MESSAGE_BUS_KEYS_DIR: stackKeyDirs(keys).broker, LOKI_URL: loki.url });
    const endpoint = `tcp://127.0.0.1:${pubPort}`;
    const stranger = new Publisher({ linger: 0 });
    cleanups.push(() => stranger.close());
    stranger.connect(endpoint);
    const log = createLogger({ subsystem: "bus-curve", module: "main", endpoint, curve: loadClientKeys(stackKeyDirs(keys).client("app"), "app") });
    for (let n = 0; n < 20; n++) {
      log.info(`listed ${n}`);
      await stranger.send(logMessage("aixcl", "bus-curve", "main", `unlisted ${n}`));
    }
    await log.close();
    const got = async () => (await queryAll(loki.url, '{service="bus-curve"}')).map(([, line]) => line.split(" ").slice(0, 2).join(" "));
    for (let tries = 0; (await got()).length < 20 && tries < 100; tries++) await new Promise((r) => setTimeout(r, 200));
    expect((await got()).sort()).toEqual(Array.from({ length: 20 }, (_, n) => `listed ${n}`).sort());
  });
});
