/**
 * The package as a user gets it: `npm pack` output installed into a scratch project outside the repository,
 * imported (ESM) and required (CommonJS) there, sending through the real broker, consumer and Loki with the
 * logger, the pino transport (by package name, in pino's worker thread) and the winston transport; and the
 * applications people run with them: a fastify app (its logger is pino) and an express app logging with winston,
 * each with one transport for the whole app and a module per component.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LokiHandle, NodeClientProject } from "@aixcl/testkit";
import { busEntry, installNodeClient, printComponentLogsOnFailure, repoRoot, requireComponent, startLoki } from "@aixcl/testkit";
import type { BusHandle } from "@aixcl/bus-harness";
import { startBus } from "@aixcl/bus-harness";

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

/** The applications' versions, pinned: what the scratch project installs beside pino and winston. */
const APPS = ["fastify@5.12.8", "express@5.3.0"];

/**
 * fastify with the transport as its logger's target, no module: fastify's own request lines go as "main", the
 * routes' lines through child loggers of the request's logger as "billing" and "users". Two requests by inject().
 */
const FASTIFY_APP = `
import Fastify from "fastify";

const app = Fastify({ logger: { level: "info", transport: { target: "@aixcl/logging/pino", options: { subsystem: "fastify_app" } } } });
app.get("/pay/:order", async (request) => {
  request.log.child({ module: "billing" }).info({ order: request.params.order }, "paid");
  return { paid: true };
});
app.get("/users/:name", async (request, reply) => {
  request.log.child({ module: "users" }).warn("locked out " + request.params.name);
  return reply.code(423).send({ locked: true });
});
const statuses = [];
for (const url of ["/pay/7", "/users/ann"]) statuses.push((await app.inject({ url })).statusCode);
await app.close();
console.log(JSON.stringify(statuses));
// pino's transport flushes and closes at exit.
`;

/**
 * express serving real HTTP on a free port, logging through one winston AixclTransport: an access line per request
 * from a child logger for "http", the routes' lines from one for "orders", and the app's own as "main".
 */
const EXPRESS_APP = `
import { once } from "node:events";
import express from "express";
import winston from "winston";
import { AixclTransport } from "@aixcl/logging/winston";

const transport = new AixclTransport({ subsystem: "express_app" });
const logger = winston.createLogger({ format: winston.format.errors({ stack: true }), transports: [transport] });
const http = logger.child({ module: "http" });
const orders = logger.child({ module: "orders" });

const app = express();
app.use((req, res, next) => {
  res.on("finish", () => http.info(req.method + " " + req.path + " " + res.statusCode));
  next();
});
app.get("/orders/:id", (req, res) => {
  orders.info("order shown", { order_id: req.params.id });
  res.json({ id: req.params.id });
});
app.get("/fail", (req, res) => {
  orders.error(new Error("out of stock"));
  res.status(500).end();
});
const server = app.listen(0, "127.0.0.1");
await once(server, "listening");
const base = "http://127.0.0.1:" + server.address().port;
const statuses = [];
for (const path of ["/orders/7", "/fail"]) statuses.push((await fetch(base + path)).status);
await new Promise((resolve) => server.close(resolve));
logger.info("stopped");
logger.close();
console.log(JSON.stringify({ statuses, stats: await transport.close() }));
`;

const TS_APP = `
import { createLogger, type LoggerStats } from "@aixcl/logging";
import aixclTransport, { type PinoTransportOptions } from "@aixcl/logging/pino";
import { AixclTransport } from "@aixcl/logging/winston";
const options: PinoTransportOptions = { subsystem: "a", module: "b", closeTimeoutMs: 10, format: "aico" };
void aixclTransport;
const t: AixclTransport = new AixclTransport({ subsystem: "a", module: "b", level: "info", wireFormat: "aico" });
// One transport for a whole application: no module, each record's from a field.
const wholeApp: PinoTransportOptions = { subsystem: "a", moduleKey: "component" };
const wholeAppWinston = new AixclTransport({ subsystem: "a" });
createLogger({ subsystem: "a" }).info("m", {}, { module: "billing" });
void wholeApp;
void wholeAppWinston;
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
    project = await installNodeClient(["pino", "winston", ...APPS]);
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
    expect(project.files.sort()).toEqual(["CHANGELOG.md", "LICENSE", "README.md", "dist/index.d.ts", "dist/index.js", "dist/pino.d.ts", "dist/pino.js", "dist/winston.d.ts", "dist/winston.js", "package.json", ...project.files.filter((f) => /^dist\/chunk-[A-Z0-9]+\.js$/.test(f))].sort());
  });

  it("carries the metadata a registry shows: licence, repository, homepage, issues, keywords, engines", () => {
    const installed = JSON.parse(readFileSync(join(project.dir, "node_modules/@aixcl/logging/package.json"), "utf8")) as Record<string, unknown>;
    expect(installed).toMatchObject({
      license: "Apache-2.0",
      repository: { type: "git", url: expect.stringMatching(/^git\+https:\/\/github\.com\//) as unknown, directory: "clients/node" },
      homepage: expect.stringMatching(/^https:\/\//) as unknown,
      bugs: { url: expect.stringMatching(/^https:\/\//) as unknown },
      engines: { node: expect.any(String) as unknown },
    });
    expect((installed.keywords as string[]).length).toBeGreaterThan(0);
    expect(readFileSync(join(project.dir, "node_modules/@aixcl/logging/LICENSE"), "utf8")).toContain("Apache License");
  });

  it("imported as ESM: the logger, the pino transport by name and the winston transport reach Loki", async () => {
    writeFileSync(join(project.dir, "app.mjs"), ESM_APP);
    const id = `esm-${Date.now()}`;
    const result = await project.node("app.mjs", { ...env, RUN_ID: id });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe("");
    const streams = await loki.waitFor(`{service="packaged"} |= "${id}"`, 3, 15_000);
    const got = streams.flatMap((s) => s.values.map((v) => [busEntry(v[1]).message, s.stream.level, v[2]?.module, busEntry(v[1], v[2]).fields.extra_via]));
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

  /** One service's entries: [first line of the message, level, module, structured metadata], sorted. */
  async function service(name: string, count: number): Promise<[string, string, string, Record<string, string>][]> {
    const streams = await loki.waitFor(`{service="${name}"}`, count, 15_000);
    return streams
      .flatMap((s) => s.values.map((v) => [busEntry(v[1]).message.split("\n")[0] as string, s.stream.level ?? "", v[2]?.module ?? "", busEntry(v[1], v[2]).fields] as [string, string, string, Record<string, string>]))
      .sort();
  }

  it("a fastify app with the pino transport as its logger's target: fastify's lines as main, child loggers' modules", async () => {
    writeFileSync(join(project.dir, "fastify-app.mjs"), FASTIFY_APP);
    const result = await project.node("fastify-app.mjs", env);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual([200, 423]);
    const got = await service("fastify_app", 6);
    expect(got.map(([line, level, module]) => [line, level, module])).toEqual([
      ["incoming request", "info", "main"],
      ["incoming request", "info", "main"],
      ["locked out ann", "warning", "users"],
      ["paid", "info", "billing"],
      ["request completed", "info", "main"],
      ["request completed", "info", "main"],
    ]);
    // The child's bindings beside module (fastify's request id) stay fields; module itself is not one.
    const paid = got.find(([line]) => line === "paid")?.[3];
    expect(paid).toMatchObject({ extra_order: "7", extra_reqId: expect.stringMatching(/^req-/) });
    expect(paid).not.toHaveProperty("extra_module");
  });

  it("an express app with one winston AixclTransport and logger.child({ module }) per component, over real HTTP", async () => {
    writeFileSync(join(project.dir, "express-app.mjs"), EXPRESS_APP);
    const result = await project.node("express-app.mjs", env);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toMatchObject({ statuses: [200, 500], stats: { published: 5, dropped: { buffer_full: 0, closed: 0, too_large: 0 } } });
    const got = await service("express_app", 5);
    expect(got.map(([line, level, module]) => [line, level, module])).toEqual([
      ["Error: out of stock", "error", "orders"],
      ["GET /fail 500", "info", "http"],
      ["GET /orders/7 200", "info", "http"],
      ["order shown", "info", "orders"],
      ["stopped", "info", "main"],
    ]);
    expect(got.find(([line]) => line === "order shown")?.[3]).toMatchObject({ extra_order_id: "7", topic: "logs.express_app.orders" });
    expect(got.every(([, , , meta]) => !("extra_module" in meta))).toBe(true);
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
