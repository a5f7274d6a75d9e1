/**
 * No Docker engine here, so the images are never built in tests. This test does the next best thing: it
 * assembles each Dockerfile's final stage on disk from the Dockerfile's own instructions (the manifests stage's
 * COPY lines and the deps stage's `npm ci --omit=dev` command, run for real; the final stage's COPY lines,
 * with --from=build mapped to this checkout's tsc output), then starts the image's CMD from that directory.
 * A file the service reads at run time but the Dockerfile forgets to copy, or a dependency that only a dev
 * install provides, fails here.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { freePort, tempDir } from "@aixcl/testkit";

const root = fileURLToPath(new URL("../../", import.meta.url));
const distBuilt = ["packages/wire", "packages/client-logger", "packages/service-runtime", "packages/cli", "services/broker", "services/log-consumer", "services/bus"].every((p) => existsSync(join(root, p, "dist")));
if (!distBuilt && process.env.CI === "true") throw new Error("CI=true and the workspaces are not built: npm test runs tsc -b first");
if (!distBuilt) console.warn("SKIPPED test/stack/dockerfile-runtime.test.ts: run `npm run build` first (the final stages copy tsc output)");

interface Stage {
  name: string;
  lines: string[];
}

function stages(dockerfile: string): Stage[] {
  const text = readFileSync(join(root, dockerfile), "utf8").replace(/\\\n\s*/g, " ");
  const out: Stage[] = [];
  for (const line of text.split("\n").map((l) => l.trim())) {
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) out.push({ name: from[1] ?? "final", lines: [] });
    else if (line && !line.startsWith("#")) out.at(-1)?.lines.push(line);
  }
  return out;
}

function stage(all: Stage[], name: string): Stage {
  const s = all.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
}

function copy(from: string, to: string) {
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, { recursive: true, verbatimSymlinks: true });
}

/** Builds the final stage of `dockerfile` into a temp dir; returns the dir and the CMD. */
function assemble(dockerfile: string): { app: string; cmd: string[] } {
  const all = stages(dockerfile);
  const work = tempDir("image");
  const manifests = join(work, "src");
  for (const line of stage(all, "manifests").lines) {
    const m = /^COPY\s+(\S+(?:\s+\S+)*)\s+(\S+)$/.exec(line);
    if (!m) continue;
    for (const src of (m[1] as string).split(/\s+/)) copy(join(root, src), join(manifests, (m[2] as string).endsWith("/") ? join(m[2] as string, src.split("/").at(-1) as string) : (m[2] as string)));
  }
  const install = stage(all, "deps").lines.find((l) => l.startsWith("RUN npm ci"));
  expect(install).toBeDefined();
  const npmCi = (install as string).slice(4).split("&&")[0]?.trim().split(/\s+/) ?? [];
  execFileSync("npm", [...npmCi.slice(1), "--prefer-offline"], { cwd: manifests, stdio: "pipe", timeout: 240_000 });

  const app = join(work, "app");
  const final = stage(all, "final");
  for (const line of final.lines) {
    const m = /^COPY\s+(?:--from=(\S+)\s+)?(.+)\s+(\S+)$/.exec(line);
    if (!m) continue;
    const [, fromStage, sources, dest] = m as unknown as [string, string | undefined, string, string];
    for (const src of sources.split(/\s+/)) {
      const target = dest.endsWith("/") ? join(app, dest, src.split("/").at(-1) as string) : join(app, dest);
      if (fromStage === "deps") copy(join(manifests, src.replace(/^\/src\//, "")), target);
      // The build stage's output is this checkout's own tsc output.
      else if (fromStage === "build") copy(join(root, src.replace(/^\/src\//, "")), target);
      else copy(join(root, src), target);
    }
  }
  const cmdLine = final.lines.find((l) => l.startsWith("CMD "));
  return { app, cmd: JSON.parse((cmdLine as string).slice(4)) as string[] };
}

function start(cmd: string[], cwd: string, env: Record<string, string>) {
  const child = spawn(cmd[0] === "node" ? process.execPath : (cmd[0] as string), cmd.slice(1), {
    cwd,
    env: { PATH: process.env.PATH ?? "", NODE_ENV: "production", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, exited, output: () => output };
}

async function waitHttp(url: string, timeoutMs: number, proc: { child: { exitCode: number | null }; output(): string }): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (proc.child.exitCode !== null) throw new Error(`exited with status ${proc.child.exitCode} before ${url} answered; output:\n${proc.output()}`);
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms; output:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(!distBuilt)("the images' final stages contain what the services need", () => {
  it("broker: starts from services/broker/Dockerfile's runtime files and answers /readyz", { timeout: 300_000 }, async () => {
    const { app, cmd } = assemble("services/broker/Dockerfile");
    expect(cmd).toEqual(["node", "--max-semi-space-size=1", "services/broker/dist/main.js"]);
    const metrics = await freePort();
    const broker = start(cmd, app, {
      MESSAGE_BUS_HOST: "127.0.0.1",
      MESSAGE_BUS_PUB_PORT: String(await freePort()),
      MESSAGE_BUS_SUB_PORT: String(await freePort()),
      MESSAGE_BUS_METRICS_PORT: String(metrics),
    });
    try {
      await waitHttp(`http://127.0.0.1:${metrics}/readyz`, 20_000, broker);
    } finally {
      broker.child.kill("SIGTERM");
    }
    expect(await broker.exited).toBe(0);
    // Production dependencies only: no compiler, no test runner.
    for (const dev of ["typescript", "vitest", "protobufjs"]) expect(existsSync(join(app, "node_modules", dev)), dev).toBe(false);
  });

  it("log-consumer, cli and bus: all start from services/log-consumer/Dockerfile's runtime files", { timeout: 300_000 }, async () => {
    const { app, cmd } = assemble("services/log-consumer/Dockerfile");
    expect(cmd).toEqual(["node", "--max-old-space-size=128", "--max-semi-space-size=4", "services/log-consumer/dist/main.js"]);
    const ops = await freePort();
    const consumer = start(cmd, app, {
      MESSAGE_BUS_HOST: "127.0.0.1",
      MESSAGE_BUS_SUB_PORT: String(await freePort()),
      LOKI_URL: `http://127.0.0.1:${await freePort()}`,
      LOG_CONSUMER_OPS_PORT: String(ops),
      LOG_CONSUMER_FLUSH_DEADLINE: "1s",
    });
    try {
      // Liveness only: there is no Loki, so /readyz rightly stays 503.
      await waitHttp(`http://127.0.0.1:${ops}/healthz`, 20_000, consumer);
    } finally {
      consumer.child.kill("SIGTERM");
    }
    expect(await consumer.exited).toBe(0);

    // The compose `cli` service's entrypoint, from the same files.
    const help = start(["node", "packages/cli/dist/main.js", "help"], app, {});
    expect(await help.exited).toBe(0);
    expect(help.output()).toContain("bus test");
    const busTest = start(["node", "packages/cli/dist/main.js", "bus", "test", "--loki", `http://127.0.0.1:${await freePort()}`, "--timeout", "1s"], app, {});
    // Loading it loads zeromq and undici from the image's node_modules; then it fails for the right reason.
    expect(await busTest.exited).toBe(1);
    expect(busTest.output()).toContain("is not ready (GET /ready)");

    // The compose `bus` service's command (the broker and the consumer in one process), from the same files.
    const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true }) as { services: Record<string, { command?: string[] }> };
    const busCmd = compose.services.bus?.command ?? [];
    expect(busCmd.at(-1)).toBe("services/bus/dist/main.js");
    const [brokerMetrics, busOps] = [await freePort(), await freePort()];
    const bus = start(busCmd, app, {
      MESSAGE_BUS_HOST: "127.0.0.1",
      MESSAGE_BUS_PUB_PORT: String(await freePort()),
      MESSAGE_BUS_SUB_PORT: String(await freePort()),
      MESSAGE_BUS_METRICS_PORT: String(brokerMetrics),
      LOKI_URL: `http://127.0.0.1:${await freePort()}`,
      LOG_CONSUMER_OPS_PORT: String(busOps),
      LOG_CONSUMER_FLUSH_DEADLINE: "1s",
    });
    try {
      await waitHttp(`http://127.0.0.1:${brokerMetrics}/readyz`, 20_000, bus);
      await waitHttp(`http://127.0.0.1:${busOps}/healthz`, 20_000, bus);
    } finally {
      bus.child.kill("SIGTERM");
    }
    expect(await bus.exited, bus.output()).toBe(0);
    for (const dev of ["typescript", "vitest", "protobufjs"]) expect(existsSync(join(app, "node_modules", dev)), dev).toBe(false);
  });
});
