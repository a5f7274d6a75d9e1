import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBroker } from "@aixcl/broker";
import type { RunningConsumer } from "@aixcl/log-consumer";
import type { ServiceLog } from "@aixcl/service-runtime";
import type { LokiHandle } from "@aixcl/testkit";
import { busEntry, freePort, requireComponent, startLoki } from "@aixcl/testkit";
import { startShippedConsumer, startTestBroker } from "@aixcl/bus-harness";
import { BUS_TEST_MODULE, BUS_TEST_SUBSYSTEM } from "../src/index.js";
import { runCli } from "./helpers.js";

const loki = requireComponent("loki");
if (loki.skip) console.warn(`SKIPPED packages/cli/test/bus-test.test.ts: ${loki.skip}`);

const silent: ServiceLog = { debug() {}, info() {}, warn() {}, error() {} };

/** The real consumer from the shipped config file, subscribed to `b` and pushing to `lokiUrl`. */
function consumer(b: RunningBroker, lokiUrl: string): Promise<RunningConsumer> {
  return startShippedConsumer(b.subEndpoint, lokiUrl, silent);
}

describe.skipIf(loki.skip !== undefined)("bus test through the real broker, log-consumer and Loki", () => {
  let handle: LokiHandle;
  let bus: RunningBroker;

  beforeAll(async () => {
    handle = await startLoki();
    bus = await startTestBroker({}, silent);
  });
  afterAll(async () => {
    await bus?.close();
    await handle?.stop();
  });

  it("exits 0 once the tagged entry is queryable in Loki, and the entry is really there", async () => {
    const c = await consumer(bus, handle.url);
    try {
      const r = await runCli(["bus", "test", "--bus", bus.pubEndpoint, "--broker-metrics", bus.ops.url, "--loki", handle.url, "--timeout", "30s"]);
      expect(r.stderr).not.toContain("FAIL");
      expect(r.code).toBe(0);
      const tag = /OK: (bus-test-[0-9a-f-]{36}) went producer -> broker/.exec(r.stdout)?.[1];
      expect(tag).toBeDefined();
      const streams = await handle.queryRange(`{service="${BUS_TEST_SUBSYSTEM}"} |= "${tag}"`);
      expect(streams).toHaveLength(1);
      expect(streams[0]?.stream).toMatchObject({ service: BUS_TEST_SUBSYSTEM, level: "info" });
      const entry = busEntry(streams[0]?.values[0]?.[1] ?? "", streams[0]?.values[0]?.[2]);
      expect(entry.message).toBe(`aixcl bus test ${tag}`);
      expect(entry.fields).toMatchObject({ module: BUS_TEST_MODULE, extra_bus_test_id: tag });
    } finally {
      await c.stop();
    }
  });

  it("two runs use different tags, so a run never passes on an earlier run's entry", async () => {
    const c = await consumer(bus, handle.url);
    try {
      const tags = [];
      for (let i = 0; i < 2; i++) {
        const r = await runCli(["bus", "test", "--bus", bus.pubEndpoint, "--loki", handle.url]);
        expect(r.code).toBe(0);
        tags.push(/OK: (\S+)/.exec(r.stdout)?.[1]);
      }
      expect(tags[0]).not.toBe(tags[1]);
    } finally {
      await c.stop();
    }
  });

  it("fails naming the log-consumer when nobody subscribes (the broker holds what it gets)", async () => {
    const r = await runCli(["bus", "test", "--bus", bus.pubEndpoint, "--broker-metrics", bus.ops.url, "--loki", handle.url, "--timeout", "2s"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAIL: the broker at tcp:\/\/127\.0\.0\.1:\d+ holds log messages: nobody subscribes to logs\. .*Is the log-consumer running\?/);
  });

  it("fails naming Loki when the consumer cannot deliver", async () => {
    const deadLoki = `http://127.0.0.1:${await freePort()}`;
    const c = await consumer(bus, deadLoki);
    try {
      const r = await runCli(["bus", "test", "--bus", bus.pubEndpoint, "--broker-metrics", bus.ops.url, "--loki", handle.url, "--timeout", "3s"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("the entry reached the broker, but Loki did not return it within");
      expect(r.stderr).toContain("./aixcl logs log-consumer");
    } finally {
      await c.stop();
    }
  });

  it("fails naming the broker when nothing listens on the bus endpoint", async () => {
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const r = await runCli(["bus", "test", "--bus", endpoint, "--loki", handle.url, "--timeout", "2s"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`FAIL: the broker is not reachable at ${endpoint} (ECONNREFUSED). Check: ./aixcl status`);
  });

  it("fails naming Loki when Loki is not ready", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await runCli(["bus", "test", "--bus", bus.pubEndpoint, "--loki", url, "--timeout", "2s"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`FAIL: Loki at ${url} is not ready (GET /ready)`);
  });
});
