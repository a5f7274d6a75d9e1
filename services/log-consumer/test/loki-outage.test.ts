/**
 * The issue's long fault, in its own file so it runs beside the others: 5000 lines/s flow from an application
 * (shared logger) through the broker and the consumer (both real processes) while the real Loki is stopped for
 * 60 s. The consumer spools what Loki cannot take; once Loki is back, LogQL must count every sequence number,
 * exactly once. Prints the spool's figures (size, write and replay rates, memory).
 */
import { printComponentLogsOnFailure, requireComponent } from "@aixcl/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { BrokerProcess, ConsumerProcess, RestartableLoki, SteadyLogger, brokerPorts, countSeqs, missing, requireBuilt, runCleanups, sleep } from "./processes.js";
import { writeConsumerConfig } from "./support.js";

const loki = requireComponent("loki");
if (loki.skip) console.warn(`skipping the Loki outage test: ${loki.skip}`);

const RATE = 5000;
const OUTAGE_MS = Number(process.env.OUTAGE_MS ?? 60_000);
const SERVICE = "outage";
const MiB = 1024 * 1024;

describe.skipIf(loki.skip !== undefined)("a 60 s Loki outage at 5000 lines/s", () => {
  printComponentLogsOnFailure();
  let lokiServer: RestartableLoki | undefined;
  afterAll(async () => {
    await runCleanups();
    await lokiServer?.down();
  });

  it("loses nothing: the spool holds the outage and is delivered once Loki is back", { timeout: 300_000 }, async () => {
    requireBuilt();
    lokiServer = await RestartableLoki.start();
    const server = lokiServer;
    const ports = await brokerPorts();
    await BrokerProcess.start(ports);
    // Shipped defaults (1 MiB batches, 1 GiB spool) except: 16 MiB of memory instead of 64, so the outage does not
    // fit in memory and most of it is read back from disk; and a longest backoff of 5 s instead of 5 min, which
    // could keep the pushes in flight asleep for minutes after Loki is back.
    const config = writeConsumerConfig({
      bus: { host: "127.0.0.1", sub_port: ports.sub },
      loki: { url: server.url },
      retry: { max_backoff: "5s", max_retries: 1000 },
      buffer: { max_bytes: "16MiB" },
      ops: { port: 0 },
    });
    const consumer = await ConsumerProcess.start(config);
    const app = new SteadyLogger(`tcp://127.0.0.1:${ports.pub}`, SERVICE, RATE);

    const peaks = { spoolBytes: 0, spoolEntries: 0, bufferBytes: 0, rss: 0 };
    const sampler = setInterval(() => {
      void consumer.scrape().then((m) => {
        peaks.spoolBytes = Math.max(peaks.spoolBytes, m.get("aixcl_log_consumer_spool_bytes") ?? 0);
        peaks.spoolEntries = Math.max(peaks.spoolEntries, m.get("aixcl_log_consumer_spool_entries") ?? 0);
        peaks.bufferBytes = Math.max(peaks.bufferBytes, m.get("aixcl_log_consumer_buffer_bytes") ?? 0);
        peaks.rss = Math.max(peaks.rss, m.get("process_resident_memory_bytes") ?? 0);
      }, () => undefined);
    }, 500);

    try {
      await sleep(5000);
      const writtenBefore = await consumer.metric("aixcl_log_consumer_spool_written_bytes_total");
      const downAt = Date.now();
      const seqAtDown = app.next;
      await server.down();
      await sleep(OUTAGE_MS);
      const spooledAtEnd = await consumer.metric("aixcl_log_consumer_spool_entries");
      await server.up();
      const upAt = Date.now();
      const writtenDuringOutage = (await consumer.metric("aixcl_log_consumer_spool_written_bytes_total")) - writtenBefore;
      await sleep(5000);
      const total = await app.stop();

      // LogQL: lines per thousand sequence numbers (blk), which must be exactly 1000 each (the last one: the rest).
      const expectedBlocks = new Map<string, number>();
      for (let blk = 0; blk * 1000 < total; blk++) expectedBlocks.set(String(blk), Math.min(1000, total - blk * 1000));
      const logql = `sum by (blk) (count_over_time({service="${SERVICE}"} | regexp "blk=(?P<blk>[0-9]+) " [1h]))`;
      let blocks = new Map<string, number>();
      const deadline = Date.now() + 180_000;
      let drainedAt = 0;
      while (Date.now() < deadline) {
        blocks = new Map((await server.instant(logql)).map((s) => [s.metric.blk ?? "", s.value]));
        if ([...expectedBlocks].every(([blk, n]) => blocks.get(blk) === n)) {
          drainedAt = Date.now();
          break;
        }
        await sleep(2000);
      }
      const consumerMetrics = await consumer.scrape();
      const dropped = [...consumerMetrics].filter(([k]) => k.startsWith("aixcl_log_consumer_dropped_entries_total"));
      const replayed = consumerMetrics.get("aixcl_log_consumer_spool_replayed_entries_total") ?? 0;
      const spilled = consumerMetrics.get("aixcl_log_consumer_spool_spilled_batches_total") ?? 0;

      console.log(
        [
          `Loki outage: ${total} lines at ${RATE}/s; Loki stopped at seq ${seqAtDown} for ${OUTAGE_MS / 1000} s, answering again ${((upAt - downAt) / 1000).toFixed(1)} s after the stop`,
          `  spool at the end of the outage: ${spooledAtEnd} entries; peak ${peaks.spoolEntries} entries, ${(peaks.spoolBytes / MiB).toFixed(1)} MiB on disk`,
          `  spool writes during the outage: ${(writtenDuringOutage / MiB).toFixed(1)} MiB (${(writtenDuringOutage / MiB / ((upAt - downAt) / 1000)).toFixed(2)} MiB/s, ${(writtenDuringOutage / (RATE * ((upAt - downAt) / 1000))).toFixed(0)} bytes/line compressed)`,
          `  memory full: ${spilled} batches left memory and waited on disk only; ${replayed} entries read back; everything in Loki ${drainedAt ? ((drainedAt - upAt) / 1000).toFixed(1) : "never"} s after Loki was back`,
          `  memory: buffer peak ${(peaks.bufferBytes / MiB).toFixed(1)} MiB (limit 16), consumer RSS peak ${(peaks.rss / MiB).toFixed(0)} MiB`,
          `  dropped: ${dropped.length ? dropped.map(([k, v]) => `${k} ${v}`).join(", ") : "none"}`,
        ].join("\n"),
      );

      if (!drainedAt) {
        const counts = countSeqs(await server.all(`{service="${SERVICE}"}`));
        throw new Error(`not every line reached Loki: ${missing(counts, total).length} of ${total} missing`);
      }
      expect(dropped.every(([, v]) => v === 0)).toBe(true);
      expect(spooledAtEnd).toBeGreaterThan(RATE * (OUTAGE_MS / 1000) * 0.8);
      expect(replayed).toBeGreaterThan(0);
      expect(peaks.bufferBytes).toBeLessThanOrEqual(16 * MiB);
      expect(peaks.spoolBytes).toBeLessThanOrEqual(1024 * MiB);
    } finally {
      clearInterval(sampler);
    }
  });
});
