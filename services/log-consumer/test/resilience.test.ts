/**
 * Faults with real processes: an application logging numbered lines through the shared logger, the broker and the
 * consumer as their built entry points, the real Loki. Each test stops or kills a part mid-stream and then asks Loki
 * for every sequence number.
 *
 * Measured bounds (services/log-consumer/README.md, "Delivery policy"): SIGTERM loses nothing and sends nothing twice; SIGKILL loses at most
 * the batch being filled (batch.max_wait of lines) and what was on its way to the consumer, and sends at most the
 * batches in flight again; a broker stopped with SIGTERM loses nothing, a killed one at most what was inside it.
 */
import { freePort, printComponentLogsOnFailure, requireComponent } from "@aixcl/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { BrokerPorts } from "./processes.js";
import { BrokerProcess, ConsumerProcess, RestartableLoki, SteadyLogger, brokerPorts, missing, ranges, requireBuilt, runCleanups, settledSeqs, sleep } from "./processes.js";
import { until, writeConsumerConfig } from "./support.js";

const loki = requireComponent("loki");
if (loki.skip) console.warn(`skipping the fault tests with real processes: ${loki.skip}`);

const RATE = 2000;

describe.skipIf(loki.skip !== undefined)("faults with real processes and the real Loki", () => {
  let lokiServer: RestartableLoki;
  printComponentLogsOnFailure();

  beforeAll(async () => {
    requireBuilt();
    lokiServer = await RestartableLoki.start();
  });
  // Each test's processes go after it; Loki serves the whole file.
  afterEach(runCleanups);
  afterAll(() => lokiServer?.down());

  async function stack(service: string, env: NodeJS.ProcessEnv = {}, rate = RATE) {
    const ports: BrokerPorts = await brokerPorts();
    const broker = await BrokerProcess.start(ports);
    const config = writeConsumerConfig({
      bus: { host: "127.0.0.1", sub_port: ports.sub },
      loki: { url: lokiServer.url },
      retry: { max_backoff: "2s", max_retries: 100 },
      ops: { port: 0 },
    });
    const consumer = await ConsumerProcess.start(config, env);
    const app = new SteadyLogger(`tcp://127.0.0.1:${ports.pub}`, service, rate);
    return { ports, broker, config, consumer, app };
  }

  const settled = (service: string, expected: number) => settledSeqs(lokiServer, service, expected);

  it("consumer SIGTERM mid-stream, three times, each followed by a new start: nothing lost, nothing sent twice", async () => {
    const receivedBefore = await lokiServer.lokiMetric("loki_distributor_lines_received_total");
    // A high rate makes the gap a stop could lose into (a few milliseconds) hold many lines.
    const { config, consumer: first, app } = await stack("sigterm", {}, 5 * RATE);
    let consumer = first;
    const stops: number[] = [];
    const drains: string[] = [];
    for (let round = 0; round < 3; round++) {
      await sleep(2000);
      consumer.kill("SIGTERM");
      stops.push(app.next);
      expect(await consumer.exited).toBe(0);
      expect(consumer.lines.map((l) => l.msg)).toContain("flushed everything before stopping");
      drains.push(consumer.lines.filter((l) => String(l.msg).startsWith("stopping: ") && "ms" in l).map((l) => `${l.messages_read} in ${l.ms} ms`).join(", then "));
      await sleep(500);
      consumer = await ConsumerProcess.start(config);
    }
    await sleep(2000);
    const total = await app.stop();

    const counts = await settled("sigterm", total);
    const lost = missing(counts, total);
    const received = (await lokiServer.lokiMetric("loki_distributor_lines_received_total")) - receivedBefore;
    console.log(`SIGTERM: ${total} lines logged, stops at seq ${stops.join(" and ")}, ${lost.length} missing (${ranges(lost)}), Loki received ${received} lines for ${counts.size} distinct; read at each stop: ${drains.join("; ")}`);
    // The stop asks publishers to hold (HOLD_TOPIC) and reads what they sent until then before it unsubscribes.
    expect(lost).toEqual([]);
    expect(received).toBe(total);
  });

  it("consumer SIGKILL with Loki unreachable, and again while delivering: the spool is sent after each restart; loss and duplicates stay within the documented bound", async () => {
    const receivedBefore = await lokiServer.lokiMetric("loki_distributor_lines_received_total");
    const { config, consumer: first, app } = await stack("sigkill", { LOKI_URL: `http://127.0.0.1:${await freePort()}` });
    // 1: Loki unreachable, batches pile up in the spool; then the kill.
    await until("batches in the spool", async () => (await first.metric("aixcl_log_consumer_spool_entries")) >= RATE * 2);
    const spooled = await first.metric("aixcl_log_consumer_spool_entries");
    first.kill("SIGKILL");
    const firstKill = app.next;
    await first.exited;
    // 2: a start with Loki reachable sends the spool, then is killed while delivering.
    const second = await ConsumerProcess.start(config);
    await second.line("spool: delivering batches left by the previous run");
    await second.line("spool: the previous run's batches are delivered");
    const replayed = await second.metric("aixcl_log_consumer_spool_replayed_entries_total");
    await sleep(1500);
    second.kill("SIGKILL");
    const secondKill = app.next;
    await second.exited;
    // 3: a last start, then the application stops.
    await ConsumerProcess.start(config);
    await sleep(1500);
    const total = await app.stop();

    const counts = await settled("sigkill", total);
    const lost = missing(counts, total);
    const received = (await lokiServer.lokiMetric("loki_distributor_lines_received_total")) - receivedBefore;
    console.log(
      `SIGKILL: ${total} lines logged; first kill at seq ${firstKill} with ${spooled} lines spooled, ${replayed} replayed by the next start; ` +
        `second kill at seq ${secondKill}; ${lost.length} missing (${ranges(lost)}); Loki received ${received} lines for ${counts.size} distinct (${received - counts.size} sent twice)`,
    );
    expect(replayed).toBeGreaterThanOrEqual(spooled);
    // Lost: at each kill, the batch being filled (batch.max_wait = 1 s of lines) and what was on its way.
    expect(lost.length).toBeLessThanOrEqual(2 * RATE * 1.5);
    for (const seq of lost) {
      const nearKill = [firstKill, secondKill].some((kill) => seq >= kill - RATE * 1.5 && seq <= kill + RATE * 0.5);
      expect(nearKill, `seq ${seq} was lost but logged far from both kills`).toBe(true);
    }
    // Sent twice: at most the batches in flight at the second kill (loki.max_in_flight = 4, each at most 1 s of lines).
    expect(received - counts.size).toBeLessThanOrEqual(4 * RATE * 1.5);
    // Loki stores an exact duplicate, but its log queries return it once (metric queries count both).
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });

  /** Stops the broker with `signal` mid-stream, starts it again a second later, and returns what Loki has. */
  async function restartBroker(service: string, signal: NodeJS.Signals) {
    const { ports, broker, consumer, app } = await stack(service);
    await sleep(2000);
    broker.kill(signal);
    const atDown = app.next;
    await broker.exited;
    await sleep(1000);
    await BrokerProcess.start(ports);
    const atUp = app.next;
    const reconnectStarted = Date.now();
    while (!app.logger.connected) {
      if (Date.now() - reconnectStarted > 15_000) throw new Error("the logger did not see the new broker's subscription");
      await sleep(20);
    }
    const reconnectMs = Date.now() - reconnectStarted;
    await sleep(2000);
    const total = await app.stop();

    const counts = await settled(service, total);
    const lost = missing(counts, total);
    console.log(
      `broker ${signal} and restart: ${total} lines logged, broker down from seq ${atDown} to ${atUp} (${atUp - atDown} lines logged meanwhile), ` +
        `${lost.length} missing (${ranges(lost)}); subscription back ${reconnectMs} ms after the restart`,
    );
    expect(await consumer.metric("aixcl_log_consumer_bus_disconnects_total")).toBeGreaterThanOrEqual(1);
    return { atDown, atUp, lost };
  }

  it("broker SIGKILL and restart: the logger and the consumer reconnect by themselves; loss only while the broker was down", async () => {
    const { atDown, atUp, lost } = await restartBroker("broker_kill", "SIGKILL");
    // Lines logged while the broker was down waited in the logger; only those inside the broker at the kill can be lost.
    for (const seq of lost) expect(seq).toBeGreaterThanOrEqual(atDown - RATE);
    for (const seq of lost) expect(seq).toBeLessThanOrEqual(atDown + RATE * 0.5);
    // Everything after the restart arrived.
    expect(lost.filter((n) => n >= atUp)).toEqual([]);
  });

  it("broker SIGTERM and restart (docker compose restart): nothing lost", async () => {
    const { lost } = await restartBroker("broker_term", "SIGTERM");
    // The stopping broker asks publishers to hold and forwards what they sent until then (HOLD_TOPIC).
    expect(lost).toEqual([]);
  });
});
