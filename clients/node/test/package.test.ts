/**
 * The package as a user gets it: `npm pack` output installed into a scratch project outside the repository,
 * imported (ESM) and required (CommonJS) there, sending through the real broker, consumer and Loki with the
 * logger, the pino transport (by package name, in pino's worker thread) and the winston transport.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BusHandle, LokiHandle, NodeClientProject } from "@aixcl/testkit";
import { installNodeClient, printComponentLogsOnFailure, repoRoot, requireComponent, startBus, startLoki } from "@aixcl/testkit";

const need = requireComponent("loki");
if (need.skip) console.warn(`[skipped] clients/node package: ${need.skip}`);
printComponentLogsOnFailure();

const ESM_APP = `
import { createLogger } from "@aixcl/logging";
import pino from "pino";
import winston from "winston";
import { AixclTransport } from "@aixcl/logging/winston";

const id = process.argv[2] ?? process.env.RUN_ID;
const log = createLogger({ subsystem: "packaged", module: "esm" });
log.info("logger " + id, { via: "createLogger" });
console.log(JSON.stringify(await log.close()));

const transport = pino.transport({ target: "@aixcl/logging/pino", options: { subsystem: "packaged", module: "pino" } });
pino(transport).warn({ via: "pino" }, "pino " + id);

const winstonTransport = new AixclTransport({ subsystem: "packaged", module: "winston" });
const w = winston.createLogger({ transports: [winstonTransport] });
w.error("winston " + id, { via: "winston" });
w.close();
console.log(JSON.stringify(await winstonTransport.close()));
// pino's transport flushes and closes at exit (pino waits for its worker).
`;

const CJS_APP = `
const { createLogger } = require("@aixcl/logging");
const { AixclTransport } = require("@aixcl/logging/winston");
if (typeof AixclTransport !== "function") throw new Error("no AixclTransport");
const log = createLogger({ subsystem: "packaged", module: "cjs" });
log.info("require " + process.env.RUN_ID);
log.close().then((stats) => console.log(JSON.stringify(stats)));
`;

const TS_APP = `
import { createLogger, type LoggerStats } from "@aixcl/logging";
import aixclTransport, { type PinoTransportOptions } from "@aixcl/logging/pino";
import { AixclTransport } from "@aixcl/logging/winston";
const options: PinoTransportOptions = { subsystem: "a", module: "b", closeTimeoutMs: 10, format: "aico" };
void aixclTransport;
const t: AixclTransport = new AixclTransport({ subsystem: "a", module: "b", level: "info", wireFormat: "aico" });
const stats: Promise<LoggerStats> = createLogger(options).close();
void t;
void stats;
`;

describe.skipIf(need.skip !== undefined)("@aixcl/logging from npm pack, in a project outside the repository", () => {
  let project: NodeClientProject;
  let loki: LokiHandle;
  let bus: BusHandle;
  let env: Record<string, string>;

  beforeAll(async () => {
    project = await installNodeClient();
    loki = await startLoki();
    bus = await startBus({ lokiUrl: loki.url });
    const port = bus.pubEndpoint.slice(bus.pubEndpoint.lastIndexOf(":") + 1);
    env = { MESSAGE_BUS_HOST: "127.0.0.1", MESSAGE_BUS_PUB_PORT: port };
  }, 600_000);
  afterAll(async () => {
    await bus?.stop();
    await loki?.stop();
  });

  it("ships the bundle and its declarations only, and depends on nothing from the repository", () => {
    expect(project.files.sort()).toEqual(["README.md", "dist/index.d.ts", "dist/index.js", "dist/pino.d.ts", "dist/pino.js", "dist/winston.d.ts", "dist/winston.js", "package.json", ...project.files.filter((f) => /^dist\/chunk-[A-Z0-9]+\.js$/.test(f))].sort());
  });

  it("imported as ESM: the logger, the pino transport by name and the winston transport reach Loki", async () => {
    writeFileSync(join(project.dir, "app.mjs"), ESM_APP);
    const id = `esm-${Date.now()}`;
    const result = await project.node("app.mjs", { ...env, RUN_ID: id });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe("");
    const streams = await loki.waitFor(`{service="packaged"} |= "${id}"`, 3, 15_000);
    const got = streams.flatMap((s) => s.values.map((v) => [v[1], s.stream.level, v[2]?.module, v[2]?.extra_via]));
    expect(got.sort()).toEqual([
      [`logger ${id}`, "info", "esm", "createLogger"],
      [`pino ${id}`, "warning", "pino", "pino"],
      [`winston ${id}`, "error", "winston", "winston"],
    ]);
  });

  it("required from CommonJS", async () => {
    writeFileSync(join(project.dir, "app.cjs"), CJS_APP);
    const id = `cjs-${Date.now()}`;
    const result = await project.node("app.cjs", { ...env, RUN_ID: id });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ published: 1, dropped: { closed: 0, buffer_full: 0 } });
    await loki.waitFor(`{service="packaged"} | module="cjs" |= "${id}"`, 1, 15_000);
  });

  it("type-checks a TypeScript user of every entry point against the shipped declarations", async () => {
    writeFileSync(join(project.dir, "app.ts"), TS_APP);
    writeFileSync(
      join(project.dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: "NodeNext", moduleResolution: "NodeNext", target: "ES2023", types: ["node"], typeRoots: [`${repoRoot}node_modules/@types`] }, files: ["app.ts"] }),
    );
    const result = await project.node(`${repoRoot}node_modules/typescript/bin/tsc`, {});
    expect(result.stdout + result.stderr).toBe("");
    expect(result.status).toBe(0);
  });
});
