import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "@aixcl/testkit";

const entry = new URL("../dist/main.js", import.meta.url).pathname;
const dir = tempDir("broker-main");

interface Run {
  code: number | null;
  output: string;
}

/** Runs the built entry point (what `npm run broker` and the image run) with a config file. */
function runBroker(config: string, untilOutput?: RegExp, signal: NodeJS.Signals = "SIGTERM"): Promise<Run> {
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` (npm test builds first)`);
  const file = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, config);
  const child = spawn(process.execPath, [entry], { env: { ...process.env, MESSAGE_BUS_CONFIG: file }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let signalled = false;
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      // Once: a second signal means "exit now" to the service.
      if (!signalled && untilOutput?.test(output)) {
        signalled = true;
        child.kill(signal);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => resolve({ code, output }));
  });
}

describe("broker entry point (built dist/main.js)", () => {
  const ports = "host: 127.0.0.1\npub_port: 0\nsub_port: 0\nbroker:\n  metrics_port: 0\n";
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`starts, then exits 0 on ${signal}`, async () => {
      const run = await runBroker(ports, /broker started/, signal);
      expect(run.output).toMatch(/"msg":"stopping"/);
      expect(run.output).toMatch(/"msg":"broker stopped"/);
      expect(run.code).toBe(0);
    });
  }

  // `docker logs` gone, a closed pipe: the stop's own log line fails with EPIPE. That must not keep the broker
  // (and its ZeroMQ threads) alive past SIGTERM.
  it("exits 0 on SIGTERM after its stdout was closed", { timeout: 20_000 }, async () => {
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\``);
    const file = join(dir, "stdout-closed.yaml");
    writeFileSync(file, ports);
    const child = spawn(process.execPath, [entry], { env: { ...process.env, MESSAGE_BUS_CONFIG: file }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve) => child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("broker started") && resolve()));
    child.stdout.destroy();
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    const code = await Promise.race([exited, new Promise<"still running">((r) => setTimeout(() => r("still running"), 10_000))]);
    if (code === "still running") child.kill("SIGKILL");
    expect(code, stderr).toBe(0);
  });

  it("refuses a bad config file at start, naming the key and the reason", async () => {
    const run = await runBroker("host: 127.0.0.1\npub_prot: 5555\n");
    expect(run.code).toBe(78);
    expect(run.output).toMatch(/bad configuration, not starting/);
    expect(run.output).toMatch(/pub_prot: unknown key/);
  });

  it("says what to do when the port is taken", async () => {
    const blocker = await runBrokerHoldingPorts();
    try {
      const run = await runBroker(`host: 127.0.0.1\npub_port: ${blocker.pub}\nsub_port: 0\nbroker:\n  metrics_port: 0\n`);
      expect(run.code).toBe(1);
      expect(run.output).toMatch(/cannot bind the message bus.*Is another broker running\?/);
    } finally {
      await blocker.close();
    }
  });
});

async function runBrokerHoldingPorts(): Promise<{ pub: number; close(): Promise<void> }> {
  const { testBroker, portOf } = await import("./bus.js");
  const b = await testBroker();
  return { pub: portOf(b.pubEndpoint), close: () => b.close() };
}
