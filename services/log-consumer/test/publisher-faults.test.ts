/**
 * Faults with real processes and the real Loki, for every kind of publisher at once: a plain ZeroMQ PUB socket in
 * our wire format, one in AICO's (`logs/<subsystem>/<module>/v1`, AicoMessage envelope), and the shared logger, each
 * at 2,000 lines/s. The broker holds what no consumer takes, so a consumer restart, a late consumer or a broker
 * restart with the disk backlog loses nothing of what reached the broker; LogQL counts every sequence number.
 *
 * Each test prints, per publisher, the lines sent and the lines missing in Loki: the figures of the closing note.
 */
import { printComponentLogsOnFailure, requireComponent, tempDir } from "@aixcl/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { BrokerOptions, BrokerPorts, SteadySource } from "./processes.js";
import { BrokerProcess, ConsumerProcess, RestartableLoki, SteadyLogger, SteadyPublisher, brokerPorts, missing, ranges, requireBuilt, runCleanups, settledSeqs, sleep } from "./processes.js";
import { writeConsumerConfig } from "./support.js";

const loki = requireComponent("loki");
if (loki.skip) console.warn(`skipping the publisher fault tests: ${loki.skip}`);

const RATE = 2000;

describe.skipIf(loki.skip !== undefined)("every publisher through consumer and broker faults (real processes, real Loki)", () => {
  let lokiServer: RestartableLoki;
  printComponentLogsOnFailure();

  beforeAll(async () => {
    requireBuilt();
    lokiServer = await RestartableLoki.start();
  });
  afterEach(runCleanups);
  afterAll(() => lokiServer?.down());

  /** A broker and, unless `consumer` is false, a consumer; no publishers yet. */
  async function stack(broker: BrokerOptions = {}, consumer = true) {
    const ports: BrokerPorts = await brokerPorts();
    const brokerProcess = await BrokerProcess.start(ports, broker);
    const config = writeConsumerConfig({
      bus: { host: "127.0.0.1", sub_port: ports.sub },
      loki: { url: lokiServer.url },
      retry: { max_backoff: "2s", max_retries: 100 },
      ops: { port: 0 },
    });
    return { ports, broker: brokerProcess, config, consumer: consumer ? await ConsumerProcess.start(config) : undefined };
  }

  /** A plain PUB in each wire format and the shared logger, each at RATE lines/s, each its own Loki service. */
  function publishers(ports: BrokerPorts, name: string): SteadySource[] {
    const endpoint = `tcp://127.0.0.1:${ports.pub}`;
    return [
      new SteadyPublisher(endpoint, `${name}_pub`, RATE, "aixcl"),
      new SteadyPublisher(endpoint, `${name}_aico`, RATE, "aico"),
      new SteadyLogger(endpoint, `${name}_logger`, RATE),
    ];
  }

  /** Stops the sources and returns, per source, what Loki is missing of what it sent. */
  async function outcome(fault: string, sources: SteadySource[]): Promise<Map<string, number[]>> {
    const sent = new Map<string, number>();
    for (const s of sources) sent.set(s.service, await s.stop());
    const lost = new Map<string, number[]>();
    for (const s of sources) {
      const total = sent.get(s.service) as number;
      const gone = missing(await settledSeqs(lokiServer, s.service, total), total);
      lost.set(s.service, gone);
      console.log(`${fault}: ${s.service} sent ${total}, ${gone.length} missing in Loki (${ranges(gone)})`);
    }
    return lost;
  }

  it("consumer SIGTERM, a new start 3 s later: nothing lost, nothing sent twice", { timeout: 180_000 }, async () => {
    const receivedBefore = await lokiServer.lokiMetric("loki_distributor_lines_received_total");
    const { ports, config, consumer } = await stack();
    const sources = publishers(ports, "term");
    await sleep(6000);
    consumer?.kill("SIGTERM");
    expect(await consumer?.exited).toBe(0);
    await sleep(3000);
    await ConsumerProcess.start(config);
    await sleep(11_000);
    const lost = await outcome("consumer SIGTERM", sources);
    for (const [service, gone] of lost) expect(gone, service).toEqual([]);
    const sent = sources.reduce((n, s) => n + s.next, 0);
    expect((await lokiServer.lokiMetric("loki_distributor_lines_received_total")) - receivedBefore).toBe(sent);
  });

  it("consumer SIGKILL, a new start 3 s later: only what the dead consumer had received is lost (the documented bound)", { timeout: 180_000 }, async () => {
    const { ports, config, consumer } = await stack();
    const sources = publishers(ports, "kill");
    await sleep(6000);
    consumer?.kill("SIGKILL");
    const killedAt = new Map(sources.map((s) => [s.service, s.next]));
    await consumer?.exited;
    await sleep(3000);
    await ConsumerProcess.start(config);
    await sleep(11_000);
    const lost = await outcome("consumer SIGKILL", sources);
    for (const [service, gone] of lost) {
      // The batch being filled (batch.max_wait, 1 s of lines) and what was queued towards the consumer, at the kill.
      expect(gone.length, service).toBeLessThanOrEqual(RATE * 1.5);
      const kill = killedAt.get(service) as number;
      for (const seq of gone) expect(seq >= kill - RATE * 1.5 && seq <= kill + RATE * 0.5, `${service}: seq ${seq} lost far from the kill at ${kill}`).toBe(true);
    }
  });

  it("publishers start 10 s before any consumer exists: nothing they sent is lost", { timeout: 180_000 }, async () => {
    const { ports, config } = await stack({}, false);
    const sources = publishers(ports, "early");
    await sleep(10_000);
    await ConsumerProcess.start(config);
    await sleep(5000);
    const lost = await outcome("10 s before any consumer", sources);
    for (const [service, gone] of lost) expect(gone, service).toEqual([]);
  });

  it("broker SIGTERM and restart with the disk backlog while the consumer is down: what the broker held is all delivered", { timeout: 180_000 }, async () => {
    const backlog = { dir: tempDir("broker-backlog") };
    const { ports, broker, config, consumer } = await stack({ backlog });
    const sources = publishers(ports, "restart");
    await sleep(3000);
    consumer?.kill("SIGTERM");
    await consumer?.exited;
    // The consumer is away: the broker holds everything, then stops with it.
    await sleep(3000);
    const held = await broker.metric("aixcl_broker_backlog_messages");
    broker.kill("SIGTERM");
    const down = new Map(sources.map((s) => [s.service, s.next]));
    expect(await broker.exited).toBe(0);
    expect(broker.lines.map((l) => l.msg)).toContain("backlog: held messages stay on disk for the next start");
    await sleep(1000);
    const next = await BrokerProcess.start(ports, { backlog });
    const up = new Map(sources.map((s) => [s.service, s.next]));
    expect(await next.metric("aixcl_broker_backlog_messages")).toBeGreaterThanOrEqual(held);
    await sleep(3000);
    await ConsumerProcess.start(config);
    await sleep(5000);
    const lost = await outcome("broker restart with the disk backlog", sources);
    console.log(`broker restart: ${held} messages held at the stop`);
    for (const [service, gone] of lost) {
      // The shared logger holds while no broker runs; a plain PUB socket drops what it sends then, before any broker sees it.
      if (service.endsWith("_logger")) expect(gone, service).toEqual([]);
      for (const seq of gone) expect(seq >= (down.get(service) as number) && seq <= (up.get(service) as number) + RATE, `${service}: seq ${seq} lost while a broker ran`).toBe(true);
    }
  });

  it("the bound: a consumer away long enough to overflow the backlog loses exactly the oldest, as counted", { timeout: 180_000 }, async () => {
    const { ports, broker, config, consumer } = await stack({ backlog: { dir: tempDir("broker-backlog"), max_bytes: "2MiB" } });
    const sources = publishers(ports, "bound");
    await sleep(2000);
    consumer?.kill("SIGTERM");
    await consumer?.exited;
    const away = new Map(sources.map((s) => [s.service, s.next]));
    await sleep(8000);
    await ConsumerProcess.start(config);
    const back = new Map(sources.map((s) => [s.service, s.next]));
    await sleep(4000);
    const lost = await outcome("backlog overflow", sources);
    const dropped = await broker.metric('aixcl_broker_dropped_messages_total{family="logs",reason="backlog_full"}');
    console.log(`backlog overflow: the broker counted ${dropped} dropped (backlog_full)`);
    expect(dropped).toBeGreaterThan(0);
    expect([...lost.values()].reduce((n, gone) => n + gone.length, 0)).toBe(dropped);
    for (const [service, gone] of lost) {
      // The oldest held went first: one run of lines from when the consumer went away. When the bound overflowed
      // while the returning consumer was being sent the oldest chunk, that chunk (at most a second of lines: the
      // backlog seals a chunk within one) went on and the chunk after it went instead, so between runs of lost
      // lines lies at most a second of kept ones.
      for (let i = 1; i < gone.length; i++) {
        const kept = (gone[i] as number) - (gone[i - 1] as number) - 1;
        expect(kept, `${service}: ${ranges(gone)}`).toBeLessThanOrEqual(RATE);
      }
      // ...and the first lost line is one of the first held.
      expect(gone[0], service).toBeGreaterThanOrEqual((away.get(service) as number) - RATE);
      expect(gone[0], service).toBeLessThanOrEqual((away.get(service) as number) + RATE);
      expect(gone.at(-1), service).toBeLessThanOrEqual(back.get(service) as number);
    }
  });
});
