import { Subscriber } from "zeromq";
import type { OpsServer, ServiceLog } from "@aixcl/shared";
import { serviceLog, startOpsServer, tcpEndpoint } from "@aixcl/shared";
import type { ConsumerConfig } from "./config.js";
import { LokiClient } from "./loki-client.js";
import { EntryMapper } from "./mapping.js";
import type { ConsumerMetrics } from "./metrics.js";
import { DROP_REASONS, createMetrics } from "./metrics.js";
import { Pipeline } from "./pipeline.js";
import { MemoryQueue } from "./queue.js";
import { RetryPolicy } from "./retry.js";
import type { DrainResult } from "./sender.js";
import { Sender } from "./sender.js";

export interface ConsumerOptions {
  /** Where the consumer's own log goes. Default: JSON lines on stdout (never the bus). */
  log?: ServiceLog;
  /** Jitter source for retry backoff (tests make it deterministic). */
  random?: () => number;
}

/** flushed: everything buffered was delivered (or refused by Loki) before the deadline. */
export type ShutdownSummary = DrainResult;

export interface RunningConsumer {
  /** Base URL of /healthz, /readyz and /metrics. */
  readonly opsUrl: string;
  readonly metrics: ConsumerMetrics;
  /** Stops receiving, flushes within shutdown.flush_deadline, then closes everything. Idempotent. */
  stop(): Promise<ShutdownSummary>;
}

/**
 * Starts the log consumer: SUB on the bus, pipeline into a bounded buffer, sender pushing to Loki, and the ops
 * HTTP server. Resolves once the ops server listens; Loki and the bus may still be unreachable (both are retried).
 */
export async function startConsumer(config: ConsumerConfig, options: ConsumerOptions = {}): Promise<RunningConsumer> {
  const log = options.log ?? serviceLog("log-consumer", config.log_level);
  // The gauges read the pipeline and sender at scrape time; both exist before the ops server starts.
  const metrics = createMetrics({
    bufferEntries: () => pipeline.bufferedEntries,
    bufferBytes: () => pipeline.bufferedBytes,
    pushesInFlight: () => sender.pushesInFlight,
  });
  metrics.bufferLimitBytes.set(config.buffer.max_bytes);

  const queue = new MemoryQueue();
  const loki = new LokiClient({
    url: config.loki.url,
    tenantId: config.loki.tenant_id,
    timeoutMs: config.loki.timeout,
    connections: config.loki.max_in_flight,
  });
  const policy = new RetryPolicy(
    { minBackoffMs: config.retry.min_backoff, maxBackoffMs: config.retry.max_backoff, maxRetries: config.retry.max_retries },
    options.random,
  );
  const sender = new Sender(queue, loki, policy, metrics, log, { maxInFlight: config.loki.max_in_flight });

  let ageTimer: NodeJS.Timeout | undefined;
  const pipeline = new Pipeline(new EntryMapper(config.labels.static), queue, metrics, log, {
    maxBatchBytes: config.batch.max_bytes,
    maxBatchWaitMs: config.batch.max_wait,
    maxBufferBytes: config.buffer.max_bytes,
    encoding: config.loki.encoding,
    onBatch: () => sender.kick(),
  });
  // The age timer is armed only while a batch is open, so an idle consumer does no work.
  const armAgeTimer = () => {
    const due = pipeline.dueAtMs;
    if (ageTimer || due === undefined) return;
    ageTimer = setTimeout(() => {
      ageTimer = undefined;
      pipeline.tick(Date.now());
      armAgeTimer();
    }, Math.max(0, due - Date.now()));
  };

  const subscriber = new Subscriber({ receiveHighWaterMark: config.bus.receive_hwm, linger: 0 });
  const endpoint = tcpEndpoint(config.bus.host, config.bus.sub_port);
  let busConnected = false;
  void (async () => {
    try {
      for await (const event of subscriber.events) {
        if (event.type === "connect") {
          busConnected = true;
          log.info("connected to the bus", { endpoint });
        } else if (event.type === "disconnect") {
          busConnected = false;
          log.warn("disconnected from the bus; ZeroMQ reconnects by itself", { endpoint });
        }
      }
    } catch {
      // The observer ends with the socket.
    }
  })();
  subscriber.connect(endpoint);
  for (const topic of config.bus.topics) subscriber.subscribe(topic);

  let receiveLoopAlive = true;
  const receiving = (async () => {
    try {
      for await (const frames of subscriber) {
        try {
          pipeline.accept(frames, Date.now());
        } catch (error) {
          // A bug must cost one message, not the receive loop.
          metrics.dropped.labels(DROP_REASONS.internalError).inc();
          log.error("could not process a message", { error: (error as Error).stack });
        }
        armAgeTimer();
      }
    } catch (error) {
      if (!subscriber.closed) log.error("receive loop failed", { error: (error as Error).message });
    } finally {
      // Ending while the socket is open means the loop failed; /healthz then asks for a restart.
      receiveLoopAlive = subscriber.closed;
    }
  })();

  let ops: OpsServer;
  try {
    ops = await startOpsServer({
      host: config.ops.host,
      port: config.ops.port,
      registry: metrics.registry,
      health: () => ({ receive_loop: receiveLoopAlive }),
      ready: async () => ({ bus_connected: busConnected, loki_ready: await loki.ready(config.loki.ready_timeout) }),
    });
  } catch (error) {
    subscriber.close();
    await loki.close();
    throw new Error(`cannot serve /healthz, /readyz and /metrics on ops.host ${config.ops.host}, ops.port ${config.ops.port}: ${(error as Error).message}`);
  }
  log.info("log consumer started", {
    bus: endpoint,
    topics: config.bus.topics,
    loki: config.loki.url,
    encoding: config.loki.encoding,
    ops: ops.url,
  });

  let stopping: Promise<ShutdownSummary> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info("stopping: no longer receiving, flushing the buffer", {
        buffered_entries: pipeline.bufferedEntries,
        deadline_ms: config.shutdown.flush_deadline,
      });
      subscriber.close();
      await receiving;
      clearTimeout(ageTimer);
      pipeline.flush();
      const result = await sender.drain(config.shutdown.flush_deadline);
      if (result.flushed) log.info("flushed everything before stopping");
      else log.error("flush deadline passed: entries not delivered", { undelivered_entries: result.undeliveredEntries });
      await Promise.all([ops.close(), loki.close()]);
      return result;
    })());

  return { opsUrl: ops.url, metrics, stop };
}
