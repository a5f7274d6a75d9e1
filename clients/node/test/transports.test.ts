/**
 * pino and winston through the real bus into the real Loki: pino runs the transport the way applications do, in
 * a worker thread (`pino.transport({ target })`), winston runs AixclTransport in process. Each test finds its lines
 * by LogQL and checks level, fields and time. (test/package.test.ts does the same from the packed package.)
 */
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import pino from "pino";
import winston from "winston";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningConsumer } from "@aixcl/log-consumer";
import type { BrokerProcess, LokiHandle } from "@aixcl/testkit";
import { busEntry, printComponentLogsOnFailure, requireComponent, startBrokerProcess, startLoki } from "@aixcl/testkit";
import { startShippedConsumer } from "@aixcl/bus-harness";
import { AixclTransport } from "../src/winston.js";

/**
 * The test process runs with `--conditions aixcl-source` (vitest.config.ts), which resolves workspace packages to
 * their TypeScript sources; pino's worker thread runs plain Node, so it gets tsc's output (`tsc -b` first), by
 * path, and none of the test process' node flags.
 */
const PINO_TARGET = fileURLToPath(new URL("../dist/pino.js", import.meta.url));
const PLAIN_WORKER = { execArgv: [] };

const need = requireComponent("loki");
if (need.skip) console.warn(`[skipped] clients/node transports: ${need.skip}`);
printComponentLogsOnFailure();

describe.skipIf(need.skip !== undefined)("transports into the real bus and Loki", () => {
  let loki: LokiHandle;
  let broker: BrokerProcess;
  let consumer: RunningConsumer;

  // The broker in a process of its own, as in a deployment: pino's transport.end() waits synchronously for its
  // worker, and a broker in this process could not take the worker's connection meanwhile.
  beforeAll(async () => {
    loki = await startLoki();
    broker = await startBrokerProcess();
    consumer = await startShippedConsumer(broker.subEndpoint, loki.url);
  });
  afterAll(async () => {
    await consumer?.stop();
    await broker?.stop();
    await loki?.stop();
  });

  /** The entries of one service in time order: [line, level label, structured metadata]. */
  /** Each entry's message, level and fields (structured metadata and those the consumer put in the line). */
  async function entries(service: string, count: number): Promise<[string, string, Record<string, string>][]> {
    const streams = await loki.waitFor(`{service="${service}"}`, count, 15_000);
    return streams
      .flatMap((s) => s.values.map((v) => [v[0], busEntry(v[1], v[2]), s.stream.level ?? ""] as const))
      .sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1))
      .map(([, { message, fields }, level]) => [message, level, fields]);
  }

  it("pino.transport({ target }): levels, fields, errors and pino's own time", async () => {
    const transport = pino.transport({ target: PINO_TARGET, options: { subsystem: "pino_app", module: "checkout", endpoint: broker.pubEndpoint }, worker: PLAIN_WORKER });
    // A time a minute back: what Loki stores must be pino's time, not when the worker got to the line.
    const time = Date.now() - 60_000;
    const log = pino({ level: "trace", timestamp: () => `,"time":${time}` }, transport);
    const child = log.child({ request_id: "r-1" });
    log.trace("t");
    log.debug("d");
    child.info({ cart: { items: 2 }, trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" }, "paid");
    log.warn("w");
    log.error(new Error("disk full"), "save failed");
    log.fatal("f");
    transport.end();
    await once(transport, "close");

    const got = await entries("pino_app", 6);
    // Entries logged in the same millisecond have no order in Loki: compare line -> level.
    expect(Object.fromEntries(got.map(([line, level]) => [line.split("\n")[0], level]))).toEqual({
      t: "debug",
      d: "debug",
      paid: "info",
      w: "warning",
      "save failed": "error",
      f: "critical",
    });
    const paid = got.find(([line]) => line === "paid")?.[2];
    expect(paid).toMatchObject({ module: "checkout", extra_request_id: "r-1", extra_cart: '{"items":2}', trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" });
    expect(paid?.extra_pid).toBe(String(process.pid));
    expect(got.find(([line]) => line.startsWith("save failed"))?.[0]).toMatch(/^save failed\nError: disk full\n\s+at /);
    const streams = await loki.queryRange('{service="pino_app"}');
    expect(new Set(streams.flatMap((st) => st.values.map((v) => v[0])))).toEqual(new Set([String(BigInt(time) * 1_000_000n)]));
  });

  it("winston AixclTransport: npm levels, meta, format.errors stacks, timestamps; close() resolves with the stats", async () => {
    const transport = new AixclTransport({ subsystem: "winston_app", module: "jobs", endpoint: broker.pubEndpoint });
    const log = winston.createLogger({
      level: "silly",
      format: winston.format.combine(winston.format.errors({ stack: true }), winston.format.timestamp()),
      defaultMeta: { worker: "w1" },
      transports: [transport],
    });
    log.silly("s");
    log.verbose("v");
    log.http("h");
    log.info("job done", { job_id: 17, session_id: "sess-3" });
    log.warn("w");
    log.error(new Error("boom"));

    const got = await entries("winston_app", 6);
    // Entries logged in the same millisecond have no order in Loki: compare line -> level.
    expect(Object.fromEntries(got.map(([line, level]) => [line.split("\n")[0], level]))).toEqual({
      s: "debug",
      v: "debug",
      h: "info",
      "job done": "info",
      w: "warning",
      "Error: boom": "error",
    });
    const done = got.find(([line]) => line === "job done")?.[2];
    expect(done).toMatchObject({ module: "jobs", extra_job_id: "17", extra_worker: "w1", session_id: "sess-3", topic: "logs.winston_app.jobs" });
    expect(done).not.toHaveProperty("extra_timestamp");
    expect(got.find(([line]) => line.startsWith("Error: boom"))?.[0]).toMatch(/^Error: boom\n\s+at /);

    log.close();
    expect(await transport.close()).toMatchObject({ published: 6, dropped: { buffer_full: 0, closed: 0 } });
  });

  it("one pino transport for a whole app: each record's module from its child logger's `module` binding, else main", async () => {
    const transport = pino.transport({ target: PINO_TARGET, options: { subsystem: "pino_whole_app", endpoint: broker.pubEndpoint }, worker: PLAIN_WORKER });
    const log = pino(transport);
    log.child({ module: "billing" }).info({ order: 7 }, "paid");
    log.child({ module: "Users API" }).warn("locked out");
    log.info("started");
    transport.end();
    await once(transport, "close");

    const got = await entries("pino_whole_app", 3);
    expect(got.map(([line, level, meta]) => [line, level, meta.module, meta.topic, "extra_module" in meta]).sort()).toEqual([
      ["locked out", "warning", "users_api", "logs.pino_whole_app.users_api", false],
      ["paid", "info", "billing", "logs.pino_whole_app.billing", false],
      ["started", "info", "main", "logs.pino_whole_app.main", false],
    ]);
  });

  it("pino with moduleKey: the field the app chose, the innermost child's binding; `module` is then a field", async () => {
    const options = { subsystem: "pino_module_key", moduleKey: "component", endpoint: broker.pubEndpoint };
    const transport = pino.transport({ target: PINO_TARGET, options, worker: PLAIN_WORKER });
    const log = pino(transport);
    log.child({ component: "search" }).child({ component: "index", module: "kept" }).info("reindexed");
    transport.end();
    await once(transport, "close");
    const [entry] = await entries("pino_module_key", 1);
    expect(entry?.[2]).toMatchObject({ module: "index", extra_module: "kept" });
    expect(entry?.[2]).not.toHaveProperty("extra_component");
  });

  it("one winston transport for a whole app: `logger.child({ module })` gives each record its module, else main", async () => {
    const transport = new AixclTransport({ subsystem: "winston_whole_app", endpoint: broker.pubEndpoint });
    const log = winston.createLogger({ transports: [transport] });
    log.child({ module: "billing" }).info("paid", { order: 7 });
    log.child({ module: "jobs" }).error("failed");
    log.info("started");
    const got = await entries("winston_whole_app", 3);
    expect(got.map(([line, level, meta]) => [line, level, meta.module, meta.extra_order, "extra_module" in meta]).sort()).toEqual([
      ["failed", "error", "jobs", undefined, false],
      ["paid", "info", "billing", "7", false],
      ["started", "info", "main", undefined, false],
    ]);
    log.close();
    expect(await transport.close()).toMatchObject({ published: 3, dropped: { buffer_full: 0, closed: 0 } });
  });

  it("winston with wireFormat 'aico' sends AICO's topic and envelope (winston keeps `format` for its own)", async () => {
    const transport = new AixclTransport({ subsystem: "winston_aico", module: "jobs", endpoint: broker.pubEndpoint, wireFormat: "aico", format: winston.format.simple() });
    winston.createLogger({ transports: [transport] }).info("enveloped");
    await transport.close();
    const [entry] = await entries("winston_aico", 1);
    expect(entry?.[2]).toMatchObject({ topic: "logs/winston_aico/jobs/v1", module: "jobs" });
  });
});
