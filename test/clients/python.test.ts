/**
 * The Python client's tests (clients/python/tests, pytest) against the real parts: this file starts Loki from the
 * shipped config, the broker and the log consumer (bus-harness), plus the brokers some tests need of their own, and
 * runs pytest in the clients/python venv (scripts/python.sh) with their endpoints in the environment. pytest's
 * output is printed; the test passes when pytest does.
 */
import { spawn } from "node:child_process";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningConsumer } from "@aixcl/log-consumer";
import { generateKeys, stackKeyDirs } from "@aixcl/service-runtime";
import type { BrokerProcess, LokiHandle } from "@aixcl/testkit";
import { freePort, printComponentLogsOnFailure, repoRoot, requireComponent, requirePythonClient, startBrokerProcess, startLoki, tempDir } from "@aixcl/testkit";
import type { BusHandle } from "@aixcl/bus-harness";
import { startBus, startShippedConsumer } from "@aixcl/bus-harness";

const loki = requireComponent("loki");
const python = loki.skip === undefined ? requirePythonClient() : { skip: loki.skip };
if (python.skip) console.warn(`[skipped] test/clients/python.test.ts: ${python.skip}`);
printComponentLogsOnFailure();

describe.skipIf(python.skip !== undefined)("Python client (pytest) against the real broker, consumer and Loki", () => {
  let lokiHandle: LokiHandle;
  let bus: BusHandle;
  let lateConsumer: RunningConsumer;
  let noDrop: BrokerProcess;
  let curve: BrokerProcess;
  const env: Record<string, string> = {};

  beforeAll(async () => {
    lokiHandle = await startLoki();
    bus = await startBus({ lokiUrl: lokiHandle.url });
    // A consumer waiting on ports where no broker runs yet; the test starts the broker's main.js there.
    const [latePub, lateSub, lateMetrics] = [await freePort(), await freePort(), await freePort()];
    lateConsumer = await startShippedConsumer(`tcp://127.0.0.1:${lateSub}`, lokiHandle.url);
    // Brokers of their own (processes: one test process holds only two), with no_drop and tiny queues, and with CURVE.
    noDrop = await startBrokerProcess({ MESSAGE_BUS_NO_DROP: "true", MESSAGE_BUS_SEND_HWM: "10", MESSAGE_BUS_RECV_HWM: "10" });
    const root = tempDir("python-keys");
    generateKeys(root, ["python-app", "python-sub"]);
    curve = await startBrokerProcess({ MESSAGE_BUS_KEYS_DIR: stackKeyDirs(root).broker });
    // One folder in the layout the clients read, holding both test clients' pairs (the stack gives each its own).
    const keys = stackKeyDirs(root).client("python-app");
    cpSync(join(stackKeyDirs(root).client("python-sub"), "clients"), join(keys, "clients"), { recursive: true });
    Object.assign(env, {
      AIXCL_TEST_REPO: repoRoot,
      AIXCL_TEST_LOKI_URL: lokiHandle.url,
      AIXCL_TEST_PUB_ENDPOINT: bus.pubEndpoint,
      AIXCL_TEST_SUB_ENDPOINT: bus.broker.subEndpoint,
      AIXCL_TEST_LATE_PUB_ENDPOINT: `tcp://127.0.0.1:${latePub}`,
      AIXCL_TEST_LATE_BROKER_COMMAND: JSON.stringify([process.execPath, `${repoRoot}services/broker/dist/main.js`]),
      AIXCL_TEST_LATE_BROKER_ENV: JSON.stringify({
        MESSAGE_BUS_CONFIG: `${repoRoot}config/message_bus.yaml`,
        MESSAGE_BUS_HOST: "127.0.0.1",
        MESSAGE_BUS_PUB_PORT: String(latePub),
        MESSAGE_BUS_SUB_PORT: String(lateSub),
        MESSAGE_BUS_METRICS_PORT: String(lateMetrics),
        MESSAGE_BUS_KEYS_DIR: "",
      }),
      AIXCL_TEST_NODROP_PUB_ENDPOINT: noDrop.pubEndpoint,
      AIXCL_TEST_NODROP_SUB_ENDPOINT: noDrop.subEndpoint,
      AIXCL_TEST_CURVE_PUB_ENDPOINT: curve.pubEndpoint,
      AIXCL_TEST_CURVE_SUB_ENDPOINT: curve.subEndpoint,
      AIXCL_TEST_KEYS_DIR: keys,
    });
  });
  afterAll(async () => {
    await curve?.stop();
    await noDrop?.stop();
    await lateConsumer?.stop();
    await bus?.stop();
    await lokiHandle?.stop();
  });

  it("pytest clients/python/tests passes", async () => {
    const { status, output } = await new Promise<{ status: number | null; output: string }>((resolve) => {
      const child = spawn(python.python as string, ["-m", "pytest", "-v", "-p", "no:cacheprovider", "clients/python/tests"], {
        cwd: repoRoot,
        env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: "1" },
      });
      let text = "";
      child.stdout.on("data", (d: Buffer) => (text += d));
      child.stderr.on("data", (d: Buffer) => (text += d));
      child.on("close", (code) => resolve({ status: code, output: text }));
    });
    console.log(output);
    // Every stack test ran: none of them skipped for want of an endpoint.
    expect(output).not.toMatch(/SKIPPED/);
    expect(status, "pytest exit status").toBe(0);
  }, 300_000);
});
