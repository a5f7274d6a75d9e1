/**
 * One logger for a whole application: created without a module, each entry names its own (LogContext.module), on
 * one socket. Against a ZeroMQ XSUB standing where the broker's is.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Upstream } from "@aixcl/testkit";
import { startUpstream, until } from "@aixcl/testkit";
import type { Logger, LoggerOptions } from "../src/index.js";
import { createLogger, DEFAULT_MODULE } from "../src/index.js";

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

async function setup(subscriptions: string[], options: Partial<LoggerOptions> = {}): Promise<{ u: Upstream; logger: Logger }> {
  const u = await startUpstream();
  open.push(u);
  for (const prefix of subscriptions) await u.subscribe(prefix);
  const logger = createLogger({ subsystem: "shop", endpoint: u.endpoint, ...options });
  open.push({ close: () => logger.close() });
  return { u, logger };
}

const sent = (u: Upstream) => u.messages.flatMap((m) => m.entries.map((e) => [m.topic, e.module, e.topic, e.message]));

describe("a logger without a module: each entry's own", () => {
  it("sends each entry on its module's topic, sanitized, DEFAULT_MODULE when it names none", async () => {
    const { u, logger } = await setup(["logs."]);
    await until("the subscription", () => logger.connected);
    logger.info("paid", {}, { module: "billing" });
    logger.info("signed in", {}, { module: "Users API" });
    logger.info("started");
    await until("3 entries", () => sent(u).length === 3);
    expect(DEFAULT_MODULE).toBe("main");
    expect(sent(u)).toEqual([
      ["logs.shop.billing", "billing", "logs.shop.billing", "paid"],
      ["logs.shop.users_api", "users_api", "logs.shop.users_api", "signed in"],
      ["logs.shop.main", "main", "logs.shop.main", "started"],
    ]);
  });

  it("batches only entries of one module together, as a batch's topic names one module; order is kept", async () => {
    const { u, logger } = await setup(["logs.", "aixcl.batch."], { batchWindowMs: 50 });
    await until("the subscriptions", () => logger.connected);
    for (const [i, module] of ["a", "a", "b", "b", "b", "a"].entries()) logger.info(`line ${i}`, {}, { module });
    await until("6 entries", () => sent(u).length === 6);
    expect(u.messages.map((m) => [m.topic, m.entries.map((e) => e.message)])).toEqual([
      ["aixcl.batch.shop.a", ["line 0", "line 1"]],
      ["aixcl.batch.shop.b", ["line 2", "line 3", "line 4"]],
      ["logs.shop.a", ["line 5"]],
    ]);
    expect(u.messages.flatMap((m) => m.entries.map((e) => e.module))).toEqual(["a", "a", "b", "b", "b", "a"]);
  });

  it("names that sanitize to one module go in one batch", async () => {
    const { u, logger } = await setup(["logs.", "aixcl.batch."], { batchWindowMs: 50 });
    await until("the subscriptions", () => logger.connected);
    for (const module of ["Billing", "billing", "BILLING"]) logger.info(module, {}, { module });
    await until("3 entries", () => sent(u).length === 3);
    expect(u.messages.map((m) => [m.topic, m.entries.length])).toEqual([["aixcl.batch.shop.billing", 3]]);
  });

  it("in AICO's format: each entry on its module's logs/<subsystem>/<module>/v1", async () => {
    const { u, logger } = await setup(["logs/"], { format: "aico" });
    await until("the subscription", () => logger.connected);
    logger.info("paid", {}, { module: "billing" });
    logger.info("started");
    await until("2 entries", () => sent(u).length === 2);
    expect(sent(u).map(([topic, module]) => [topic, module])).toEqual([
      ["logs/shop/billing/v1", "billing"],
      ["logs/shop/main/v1", "main"],
    ]);
  });

  it("holds entries while the only subscription covers one module's topic, not every module of the subsystem", async () => {
    const { u, logger } = await setup(["logs.shop.billing"]);
    logger.info("paid", {}, { module: "billing" });
    await new Promise((r) => setTimeout(r, 200));
    expect([logger.connected, logger.stats().buffered, u.messages.length]).toEqual([false, 1, 0]);
    await u.subscribe("logs.shop.");
    await until("the entry", () => sent(u).length === 1);
    expect(logger.stats()).toMatchObject({ published: 1, buffered: 0 });
  });

  it("with LoggerOptions.module every entry keeps that module, whatever its context says", async () => {
    const { u, logger } = await setup(["logs.shop.cart"], { module: "cart" });
    await until("the subscription", () => logger.connected);
    logger.info("added", {}, { module: "billing" });
    await until("the entry", () => sent(u).length === 1);
    expect(sent(u)).toEqual([["logs.shop.cart", "cart", "logs.shop.cart", "added"]]);
  });
});
