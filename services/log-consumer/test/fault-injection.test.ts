/**
 * Fault injection: the consumer, fed through a real ZeroMQ socket, pushing to a FAULT-INJECTING RECEIVER
 * (test/fault-receiver.ts) that plays a misbehaving Loki. Each test checks the delivery policy: what must arrive
 * exactly once, what may arrive twice (only entries of a push the client gave up on), what is dropped and how
 * it is counted, and that memory stays within buffer.max_bytes.
 */
import { busEntry, freePort } from "@aixcl/testkit";
import { afterEach, describe, expect, it } from "vitest";
import type { RunningConsumer } from "../src/index.js";
import { startConsumer } from "../src/index.js";
import type { ReceivedEntry } from "./fault-receiver.js";
import { FaultInjectingReceiver, lokiGroupedErrors } from "./fault-receiver.js";
import { total, valuesBy } from "./helpers.js";
import type { TestBus } from "./support.js";
import { captureLog, consumerConfig, publishNumbered, seqOf, settledEntries, startTestBus, until } from "./support.js";

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  bus: TestBus;
  receiver: FaultInjectingReceiver | undefined;
  consumer: RunningConsumer;
  logLines: Record<string, unknown>[];
}

/** Small batches and short backoffs so faults play out in seconds. */
async function setup(settings: Record<string, Record<string, unknown>> = {}, options: { receiverPort?: number; startReceiver?: boolean } = {}): Promise<Setup> {
  const bus = await startTestBus();
  cleanups.push(() => bus.close());
  let receiver: FaultInjectingReceiver | undefined;
  if (options.startReceiver !== false) {
    receiver = await FaultInjectingReceiver.start();
    const r = receiver;
    cleanups.push(() => r.stop());
  }
  const url = receiver?.url ?? `http://127.0.0.1:${options.receiverPort}`;
  const config = consumerConfig({
    bus: { host: "127.0.0.1", sub_port: bus.port },
    loki: { url, timeout: "2s", max_in_flight: 2, ...settings.loki },
    batch: { max_bytes: "16KiB", max_wait: "50ms", ...settings.batch },
    retry: { min_backoff: "20ms", max_backoff: "200ms", max_retries: 10, ...settings.retry },
    buffer: { max_bytes: "1MiB", ...settings.buffer },
    shutdown: { flush_deadline: "3s", ...settings.shutdown },
    ops: { port: 0 },
    ...(settings.spool && { spool: settings.spool }),
  });
  const { log, lines } = captureLog();
  const subscribed = bus.waitForSubscriber();
  const consumer = await startConsumer(config, { log });
  cleanups.push(() => consumer.stop());
  await subscribed;
  return { bus, receiver, consumer, logLines: lines };
}

function seqs(entries: readonly ReceivedEntry[]): number[] {
  return entries.map((e) => seqOf(e.line)).sort((a, b) => a - b);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function readyz(consumer: RunningConsumer): Promise<{ status: number; checks: Record<string, boolean> }> {
  const res = await fetch(`${consumer.opsUrl}/readyz`);
  return { status: res.status, checks: ((await res.json()) as { checks: Record<string, boolean> }).checks };
}

describe("log consumer against a fault-injecting receiver", () => {
  it("429 then success: every entry written exactly once, with labels and metadata", async () => {
    const { bus, receiver, consumer } = await setup();
    if (!receiver) throw new Error("receiver");
    receiver.script = (push) => (push.number <= 3 ? { status: 429, body: "Ingestion rate limit exceeded" } : { status: 204 });
    await publishNumbered(bus, 500);
    await until("500 entries settled", async () => (await settledEntries(consumer)) === 500);
    expect(seqs(receiver.written)).toEqual(range(500));
    expect(await valuesBy(consumer.metrics.retries)).toEqual({ rate_limited: 3 });
    expect(await total(consumer.metrics.dropped)).toBe(0);
    expect(await total(consumer.metrics.pushedEntries)).toBe(500);
    const first = receiver.written[0];
    expect(first?.labels).toBe('{level="warning", service="api_gateway"}');
    expect(busEntry(first?.line ?? "", first?.metadata).fields).toMatchObject({ module: "auth", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736", meta_request_id: "r-42" });
    expect((await consumer.metrics.lastSuccess.get()).values[0]?.value).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it("500s: retried with backoff until accepted, nothing lost or duplicated", async () => {
    const { bus, receiver, consumer } = await setup();
    if (!receiver) throw new Error("receiver");
    const errors = [500, 502, 503, 500, 504, 500];
    receiver.script = (push) => ({ status: errors[push.number - 1] ?? 204 });
    await publishNumbered(bus, 400);
    await until("400 entries settled", async () => (await settledEntries(consumer)) === 400);
    expect(seqs(receiver.written)).toEqual(range(400));
    expect(await valuesBy(consumer.metrics.retries)).toEqual({ server_error: 6 });
    const attempts = (await consumer.metrics.pushDuration.get()).values.filter((v) => v.metricName?.endsWith("_count"));
    const byStatus = Object.fromEntries(attempts.map((v) => [v.labels.status_code, v.value]));
    expect(byStatus).toMatchObject({ "500": 3, "502": 1, "503": 1, "504": 1 });
  });

  it("slow responses are waited for; timed-out pushes are retried and only their entries may arrive twice", async () => {
    const { bus, receiver, consumer } = await setup({ loki: { timeout: "1s" } });
    if (!receiver) throw new Error("receiver");
    // Requests 2 and 5 outlast the 1 s timeout (Loki wrote them, the answer came too late); the rest are slow.
    receiver.script = (push) => ({ status: 204, delayMs: push.number === 2 || push.number === 5 ? 1600 : 150 });
    await publishNumbered(bus, 400);
    await until("400 entries settled", async () => (await settledEntries(consumer)) === 400);
    await until("the stalled requests to finish", () => receiver.abandoned.length === 2, 5000);
    const abandonedSeqs = seqs(receiver.abandoned.flatMap((p) => p.entries));
    expect([...new Set(seqs(receiver.written))]).toEqual(range(400));
    const duplicates = seqs(receiver.written).filter((s, i, all) => all[i - 1] === s);
    expect(duplicates).toEqual(abandonedSeqs);
    expect(await valuesBy(consumer.metrics.retries)).toEqual({ timeout: 2 });
    expect(await total(consumer.metrics.pushedEntries)).toBe(400);
  });

  it("a 400 naming some entries: only those are lost, counted by reason; the rest is written and not sent again", async () => {
    const { bus, receiver, consumer } = await setup();
    if (!receiver) throw new Error("receiver");
    const reasonOf = (e: ReceivedEntry) => (e.line.includes("#old") ? "old" : e.line.includes("#long") ? "long" : undefined);
    receiver.script = (push) => {
      const bad = push.entries.filter((e) => reasonOf(e) !== undefined);
      if (bad.length === 0) return { status: 204 };
      const messages = bad.map((e) =>
        reasonOf(e) === "old"
          ? `entry for stream '${e.labels}' has timestamp too old: ${e.timestampNs}, oldest acceptable timestamp is: 2025-01-01T00:00:00Z`
          : `Max entry size '262144' bytes exceeded for stream '${e.labels}' while adding an entry with length '${e.line.length}' bytes`,
      );
      return { status: 400, body: lokiGroupedErrors(messages), write: push.entries.filter((e) => reasonOf(e) === undefined) };
    };
    const tag = (n: number) => (n % 7 === 3 ? "#old" : n % 11 === 5 ? "#long" : "");
    const entries = await publishNumbered(bus, 300, { extra: (n) => (tag(n) ? { message: `seq=${n} ${tag(n)}` } : {}) });
    const old = entries.filter((e) => e.message.includes("#old")).length;
    const long = entries.filter((e) => e.message.includes("#long")).length;
    await until("300 entries settled", async () => (await settledEntries(consumer)) === 300);
    expect(seqs(receiver.written)).toEqual(range(300).filter((n) => tag(n) === ""));
    expect(seqs(receiver.pushes.flatMap((p) => p.entries))).toEqual(range(300)); // nothing was pushed twice
    expect(await valuesBy(consumer.metrics.dropped)).toEqual({ greater_than_max_sample_age: old, line_too_long: long });
    expect(await total(consumer.metrics.pushedEntries)).toBe(300 - old - long);
    expect(await total(consumer.metrics.retries)).toBe(0);
  });

  it("Loki down at start: not ready, retries connection errors, delivers everything once Loki is up", async () => {
    const port = await freePort();
    const { bus, consumer } = await setup({ retry: { max_retries: 1000 } }, { startReceiver: false, receiverPort: port });
    await publishNumbered(bus, 200);
    await until("connection errors to be retried", async () => ((await valuesBy(consumer.metrics.retries)).connection_error ?? 0) >= 2);
    expect(await readyz(consumer)).toEqual({ status: 503, checks: { bus_connected: true, loki_ready: false, loki_credentials_accepted: true } });
    expect(await total(consumer.metrics.pushedEntries)).toBe(0);

    const receiver = await FaultInjectingReceiver.start(port);
    cleanups.push(() => receiver.stop());
    await until("200 entries settled", async () => (await settledEntries(consumer)) === 200);
    expect(seqs(receiver.written)).toEqual(range(200));
    expect(await total(consumer.metrics.dropped)).toBe(0);
    expect(await readyz(consumer)).toEqual({ status: 200, checks: { bus_connected: true, loki_ready: true, loki_credentials_accepted: true } });
  });

  /**
   * Samples the buffer gauge (memory held) every 5 ms and whenever `sample` is called; `peak` gives the peak so far.
   * The gauge reads the buffer when asked (prom-client calls collect before its first await), so a sample taken in
   * the receiver's script sees the buffer as the push left it.
   */
  function peakBuffer(consumer: RunningConsumer): { peak: () => number; sample: () => void } {
    let peak = 0;
    const sample = () => void consumer.metrics.bufferBytes.get().then((m) => (peak = Math.max(peak, m.values[0]?.value ?? 0)));
    const sampler = setInterval(sample, 5);
    cleanups.push(() => clearInterval(sampler));
    return { peak: () => peak, sample };
  }

  const buffered = async (consumer: RunningConsumer) => (await consumer.metrics.bufferEntries.get()).values[0]?.value ?? 0;

  it("without a spool, memory stays within buffer.max_bytes while Loki refuses; drops are counted and the rest delivered", async () => {
    const maxBytes = 96 * 1024;
    const { bus, receiver, consumer } = await setup({ buffer: { max_bytes: maxBytes }, retry: { max_retries: 1000 }, spool: { dir: "" } });
    if (!receiver) throw new Error("receiver");
    let down = true;
    receiver.script = () => (down ? { status: 503 } : { status: 204 });
    const { peak } = peakBuffer(consumer);

    await publishNumbered(bus, 3000);
    await until("3000 entries decoded", async () => (await total(consumer.metrics.decoded)) === 3000);
    const droppedWhileDown = await valuesBy(consumer.metrics.dropped);
    expect(Object.keys(droppedWhileDown)).toEqual(["buffer_full"]);
    expect((droppedWhileDown.buffer_full ?? 0) + (await buffered(consumer))).toBe(3000);
    expect(receiver.written).toHaveLength(0);

    down = false;
    await until("the buffer to drain", async () => (await buffered(consumer)) === 0);
    expect(peak()).toBeGreaterThan(maxBytes / 2);
    expect(peak()).toBeLessThanOrEqual(maxBytes);
    const pushed = await total(consumer.metrics.pushedEntries);
    expect(pushed + (droppedWhileDown.buffer_full ?? 0)).toBe(3000);
    const written = seqs(receiver.written);
    expect(new Set(written).size).toBe(written.length);
    expect(written).toHaveLength(pushed);
    // The newest entries survive: drops take the oldest queued batches.
    expect(written.at(-1)).toBe(2999);
  });

  it("with the spool, memory stays within buffer.max_bytes while Loki refuses, the rest waits on disk, nothing is lost", async () => {
    const maxBytes = 96 * 1024;
    const { bus, receiver, consumer } = await setup({ buffer: { max_bytes: maxBytes }, retry: { max_retries: 1000 } });
    if (!receiver) throw new Error("receiver");
    const spool = consumer.spoolMetrics;
    if (!spool) throw new Error("no spool");
    let down = true;
    const { peak, sample } = peakBuffer(consumer);
    // Each push samples the buffer as it is with the pushed batch in flight: read back from disk if it had to be.
    receiver.script = () => {
      sample();
      return down ? { status: 503 } : { status: 204 };
    };

    // First two batches of one entry each, which take both push slots: when they are delivered, a full batch read
    // back from disk takes the place of each, so memory would grow by the difference if reading back ignored it.
    for (const first of [0, 1]) {
      await publishNumbered(bus, 1, { first });
      await until(`batch ${first + 1} in flight`, () => receiver.pushes.length > first);
    }
    await publishNumbered(bus, 3000, { first: 2 });
    await until("3002 entries decoded", async () => (await total(consumer.metrics.decoded)) === 3002);
    await until("the last batch to close", async () => (await total(spool.entries)) === 3002);
    expect(await total(consumer.metrics.dropped)).toBe(0);
    expect(await total(spool.spilled)).toBeGreaterThan(0);
    expect(await buffered(consumer)).toBeLessThan(3000);

    down = false;
    await until("3002 entries settled", async () => (await settledEntries(consumer)) === 3002);
    expect(peak()).toBeGreaterThan(maxBytes / 2);
    expect(peak()).toBeLessThanOrEqual(maxBytes);
    expect(seqs(receiver.written)).toEqual(range(3002));
    expect(await total(consumer.metrics.dropped)).toBe(0);
    expect(await total(spool.replayedBatches)).toBe(await total(spool.spilled));
    expect([await total(spool.entries), await total(spool.batches), await total(spool.bytes)]).toEqual([0, 0, 0]);
  });

  it.each([
    ["a 429 storm", 429, "rate_limited"],
    ["a run of 503s", 503, "server_error"],
  ] as const)("%s: exponential backoff with jitter, a bounded request rate and bounded memory, then everything once", async (_, status, reason) => {
    const [minMs, maxMs, stormMs, maxInFlight] = [50, 800, 4000, 2];
    const maxBytes = 96 * 1024;
    const { bus, receiver, consumer, logLines } = await setup({
      loki: { max_in_flight: maxInFlight },
      retry: { min_backoff: `${minMs}ms`, max_backoff: `${maxMs}ms`, max_retries: 1000 },
      buffer: { max_bytes: maxBytes },
    });
    if (!receiver) throw new Error("receiver");
    const stormStarted = Date.now();
    const storm = () => Date.now() - stormStarted < stormMs;
    /** Arrival times of each batch's attempts, keyed by its first sequence number. */
    const attempts = new Map<number, number[]>();
    const { peak, sample } = peakBuffer(consumer);
    receiver.script = (push) => {
      sample();
      const first = seqOf(push.entries[0]?.line ?? "");
      attempts.set(first, [...(attempts.get(first) ?? []), Date.now()]);
      return storm() ? { status, body: status === 429 ? "Ingestion rate limit exceeded" : "" } : { status: 204 };
    };
    // Entries keep coming during the storm.
    let published = 0;
    while (storm() && published < 2400) {
      await publishNumbered(bus, 200, { first: published });
      published += 200;
      await new Promise((r) => setTimeout(r, 250));
    }
    const requestsInStorm = receiver.pushes.length;
    await until(`${published} entries settled`, async () => (await settledEntries(consumer)) === published, 20_000);

    // No retry storm: each slot's n-th wait is at least min*2^(n-1) (capped), so the attempts that fit in the
    // storm are bounded; an immediate retry would make thousands.
    const lowerBounds = Array.from({ length: 64 }, (_, n) => Math.min(minMs * 2 ** n, maxMs));
    let perSlot = 1;
    for (let elapsed = 0, n = 0; elapsed + (lowerBounds[n] as number) <= stormMs; elapsed += lowerBounds[n] as number, n++) perSlot++;
    expect(requestsInStorm).toBeLessThanOrEqual(maxInFlight * perSlot + maxInFlight);
    expect(requestsInStorm).toBeGreaterThanOrEqual(maxInFlight * 4);
    // No attempt comes early: the gap before the n-th retry is at least its lower bound.
    for (const times of attempts.values()) {
      times.slice(1).forEach((t, i) => expect(t - (times[i] as number), `retry ${i + 1}`).toBeGreaterThanOrEqual((lowerBounds[i] as number) - 5));
    }
    // The planned waits (from the consumer's log, free of scheduling delays) are in [min*2^(n-1), min*2^n), capped,
    // and jittered: spread over that interval rather than all at the same point.
    const planned = logLines.filter((l) => l.msg === "push failed, will retry").map((l) => ({ retry: Number(l.retry), ms: Number(l.delay_ms) }));
    expect(planned.length).toBeGreaterThanOrEqual(maxInFlight * 4);
    for (const { retry, ms } of planned) {
      expect(ms, `retry ${retry}`).toBeGreaterThanOrEqual(Math.min(minMs * 2 ** (retry - 1), maxMs));
      expect(ms, `retry ${retry}`).toBeLessThanOrEqual(Math.min(minMs * 2 ** retry, maxMs));
    }
    const positions = planned
      .filter(({ retry }) => minMs * 2 ** retry <= maxMs)
      .map(({ retry, ms }) => (ms - minMs * 2 ** (retry - 1)) / (minMs * 2 ** (retry - 1)));
    expect(new Set(positions.map((p) => p.toFixed(2))).size).toBeGreaterThan(positions.length / 2);
    expect((await valuesBy(consumer.metrics.retries))[reason]).toBeGreaterThan(0);

    expect(peak()).toBeLessThanOrEqual(maxBytes);
    expect(seqs(receiver.written)).toEqual(range(published));
    expect(await total(consumer.metrics.dropped)).toBe(0);
  });

  it("retries run out: the batch is dropped and counted after max_retries + 1 attempts", async () => {
    const { bus, receiver, consumer, logLines } = await setup({ retry: { max_retries: 2 } });
    if (!receiver) throw new Error("receiver");
    receiver.script = () => ({ status: 500 });
    await publishNumbered(bus, 100);
    await until("100 entries settled", async () => (await settledEntries(consumer)) === 100);
    expect(await valuesBy(consumer.metrics.dropped)).toEqual({ retries_exhausted: 100 });
    const attempts = new Map<number, number>();
    for (const push of receiver.pushes) for (const e of push.entries) attempts.set(seqOf(e.line), (attempts.get(seqOf(e.line)) ?? 0) + 1);
    expect(new Set(attempts.values())).toEqual(new Set([3]));
    expect(logLines.some((l) => l.msg === "giving up on a batch: retries exhausted")).toBe(true);
  });

  it("several pushes in flight while the receive loop keeps draining the socket", async () => {
    const { bus, receiver, consumer } = await setup({ loki: { max_in_flight: 4, timeout: "5s" }, batch: { max_bytes: "64KiB" } });
    if (!receiver) throw new Error("receiver");
    receiver.script = () => ({ status: 204, delayMs: 1000 });
    await publishNumbered(bus, 2000);
    await until("2000 entries decoded", async () => (await total(consumer.metrics.decoded)) === 2000);
    // All received while the pushes were waiting for their slow answers (one round of 4 at most done).
    expect(await total(consumer.metrics.pushedEntries)).toBeLessThan(1000);
    await until("2000 entries settled", async () => (await settledEntries(consumer)) === 2000, 30_000);
    expect(receiver.maxConcurrent).toBe(4);
    expect(seqs(receiver.written)).toEqual(range(2000));
  });

  it("JSON encoding when configured", async () => {
    const { bus, receiver, consumer } = await setup({ loki: { encoding: "json" } });
    if (!receiver) throw new Error("receiver");
    await publishNumbered(bus, 50);
    await until("50 entries settled", async () => (await settledEntries(consumer)) === 50);
    expect(new Set(receiver.pushes.map((p) => p.contentType))).toEqual(new Set(["application/json"]));
    expect(seqs(receiver.written)).toEqual(range(50));
    const first = receiver.written[0];
    expect(busEntry(first?.line ?? "", first?.metadata).fields).toMatchObject({ function: "verify_token", extra_path: "/v1/login" });
  });
});

describe("shutdown", () => {
  it("flushes the batch still being filled and everything queued", async () => {
    const { bus, receiver, consumer } = await setup({ batch: { max_wait: "1m" } });
    if (!receiver) throw new Error("receiver");
    await publishNumbered(bus, 250);
    await until("250 entries decoded", async () => (await total(consumer.metrics.decoded)) === 250);
    expect(await consumer.stop()).toEqual({ flushed: true, undeliveredEntries: 0, spooledEntries: 0 });
    expect(seqs(receiver.written)).toEqual(range(250));
  });

  it("at the flush deadline what is left stays in the spool, and the next start delivers it", async () => {
    const { bus, receiver, consumer, logLines } = await setup({ shutdown: { flush_deadline: "300ms" }, retry: { max_retries: 1000 } });
    if (!receiver) throw new Error("receiver");
    receiver.script = () => ({ status: 503 });
    await publishNumbered(bus, 250);
    await until("250 entries decoded", async () => (await total(consumer.metrics.decoded)) === 250);
    const started = Date.now();
    expect(await consumer.stop()).toEqual({ flushed: false, undeliveredEntries: 0, spooledEntries: 250 });
    expect(Date.now() - started).toBeLessThan(2500);
    expect(await total(consumer.metrics.dropped)).toBe(0);
    expect(logLines.find((l) => l.msg === "flush deadline passed: undelivered entries stay in the spool for the next start")).toMatchObject({ spooled_entries: 250 });

    receiver.script = () => ({ status: 204 });
    const { dir } = logLines.find((l) => l.msg === "log consumer started")?.spool as { dir: string };
    const next = await setup({ spool: { dir } });
    if (!next.receiver) throw new Error("receiver");
    await until("250 entries settled", async () => (await settledEntries(next.consumer)) === 250);
    expect(seqs(next.receiver.written)).toEqual(range(250));
    expect(next.logLines.find((l) => l.msg === "spool: delivering batches left by the previous run")).toMatchObject({ entries: 250 });
  });

  it("without a spool, gives up at the flush deadline, counting and logging what was not delivered", async () => {
    const { bus, receiver, consumer, logLines } = await setup({ shutdown: { flush_deadline: "300ms" }, retry: { max_retries: 1000 }, spool: { dir: "" } });
    if (!receiver) throw new Error("receiver");
    receiver.script = () => ({ status: 503 });
    await publishNumbered(bus, 250);
    await until("250 entries decoded", async () => (await total(consumer.metrics.decoded)) === 250);
    const started = Date.now();
    expect(await consumer.stop()).toEqual({ flushed: false, undeliveredEntries: 250, spooledEntries: 0 });
    expect(Date.now() - started).toBeLessThan(2500);
    expect(await valuesBy(consumer.metrics.dropped)).toEqual({ shutdown: 250 });
    expect(logLines.find((l) => l.msg === "flush deadline passed: entries not delivered")).toMatchObject({ undelivered_entries: 250 });
  });
});
