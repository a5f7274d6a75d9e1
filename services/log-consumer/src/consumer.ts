import type { Registry } from "prom-client";
import { Counter } from "prom-client";
import { Subscriber } from "zeromq";
import { HOLD_TOPIC, receiveEach, tcpEndpoint, untilQuiet } from "@aixcl/wire";
import { LogThrottle, curveClientOptions } from "@aixcl/client-logger";
import type { OpsServer, ServiceLog } from "@aixcl/service-runtime";
import { serviceLog, startOpsServer } from "@aixcl/service-runtime";
import type { ConsumerConfig } from "./config.js";
import { consumerCurveKeys, consumerLokiCa, consumerLokiCredentials } from "./config.js";
import { redactUrls } from "./loki-auth.js";
import { LokiClient } from "./loki-client.js";
import { EntryMapper } from "./mapping.js";
import type { ConsumerMetrics } from "./metrics.js";
import { DROP_REASONS, createMetrics } from "./metrics.js";
import { Pipeline } from "./pipeline.js";
import type { BatchQueue } from "./queue.js";
import { MemoryQueue } from "./queue.js";
import { RetryPolicy } from "./retry.js";
import type { DrainResult } from "./sender.js";
import { Sender } from "./sender.js";
import type { SpoolMetrics } from "./spool.js";
import { Spool, createSpoolMetrics } from "./spool.js";

/** ZeroMQ retries a lost connection after 100 ms; no attempt within this long means it will not. */
const RECONNECT_CHECK_MS = 1_000;
/**
 * How long the receive loop lets messages gather once the queue ran empty (receiveEach's default is 5 ms, kept by
 * the broker, where other topics than logs pass). An entry waits up to a second in the open batch anyway; at
 * 10,000 lines/s, 20 ms instead of 5 cut the consumer's CPU per line by a tenth (bench loki-paced).
 */
const RECEIVE_COALESCE_MS = 20;

function createBusMetrics(registry: Registry) {
  const opts = { registers: [registry] };
  return {
    disconnects: new Counter({
      name: "aixcl_log_consumer_bus_disconnects_total",
      help: "Connections to the broker lost (broker restart, or a message above bus.max_message_bytes); ZeroMQ reconnects.",
      ...opts,
    }),
    handshakeFailures: new Counter({
      name: "aixcl_log_consumer_bus_handshake_failures_total",
      help: "Handshakes with the broker that failed, by kind: auth (CURVE key refused), protocol (CURVE on one side only), other.",
      labelNames: ["kind"],
      ...opts,
    }),
  };
}

export interface ConsumerOptions {
  /** Where the consumer's own log goes. Default: JSON lines on stdout (never the bus). */
  log?: ServiceLog;
  /** Jitter source for retry backoff (tests make it deterministic). */
  random?: () => number;
  /**
   * Subscribe here instead of bus.host:sub_port: the one-process bus (services/bus) passes its broker's inproc://
   * endpoint, which carries messages between the two sockets without TCP and without a handshake (and so without
   * CURVE: nothing leaves the process).
   */
  busEndpoint?: string;
}

/** flushed: everything buffered was delivered (or refused by Loki) before the deadline. */
export type ShutdownSummary = DrainResult;

export interface RunningConsumer {
  /** Base URL of /healthz, /readyz and /metrics. */
  readonly opsUrl: string;
  readonly metrics: ConsumerMetrics;
  /** The spool's metrics; undefined when spool.dir is empty (memory only). */
  readonly spoolMetrics: SpoolMetrics | undefined;
  readonly busMetrics: ReturnType<typeof createBusMetrics>;
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
  const busMetrics = createBusMetrics(metrics.registry);
  const curve = consumerCurveKeys(config);
  const credentials = consumerLokiCredentials(config);
  const ca = consumerLokiCa(config);
  if (credentials.scheme !== "none" && credentials.url.startsWith("http:")) {
    log.warn("Loki credentials go over plain http, readable by anyone on the way; use an https:// loki.url", { loki: credentials.url });
  }

  let spool: Spool | undefined;
  let spoolMetrics: SpoolMetrics | undefined;
  if (config.spool.dir !== "") {
    spoolMetrics = createSpoolMetrics(metrics.registry);
    // The spool's share of buffer.max_bytes leaves room for the batch being filled, so reading a batch back from
    // disk keeps the whole buffer within its bound (the pipeline keeps it when entries arrive).
    const maxMemoryBytes = config.buffer.max_bytes - config.batch.max_bytes;
    spool = new Spool(
      { dir: config.spool.dir, maxBytes: config.spool.max_bytes, fsync: config.spool.fsync, maxMemoryBytes, leaseMs: config.spool.lease },
      spoolMetrics,
      metrics.dropped,
      log,
    );
  }
  const queue: BatchQueue = spool ?? new MemoryQueue();
  const loki = new LokiClient({
    url: credentials.url,
    credentials,
    ca,
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
  const pipeline = new Pipeline(new EntryMapper(config.labels.static, config.fields), queue, metrics, log, {
    maxBatchBytes: config.batch.max_bytes,
    maxBatchWaitMs: config.batch.max_wait,
    maxBufferBytes: config.buffer.max_bytes,
    encoding: config.loki.encoding,
    compress: config.loki.compress,
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

  const subscriber = new Subscriber({
    receiveHighWaterMark: config.bus.receive_hwm,
    linger: 0,
    // A larger message makes ZeroMQ drop the connection while it arrives, before any of it is buffered.
    maxMessageSize: config.bus.max_message_bytes,
    ...(curve ? curveClientOptions(curve) : {}),
  });
  const endpoint = options.busEndpoint ?? tcpEndpoint(config.bus.host, config.bus.sub_port);
  // inproc:// has no handshake to wait for (and no monitor events): connected once connect() returns.
  const inproc = endpoint.startsWith("inproc://");
  let busConnected = false;
  // ZeroMQ reconnects after a lost connection, but not after a protocol error such as a message above
  // maxMessageSize: then the connection is simply gone. No reconnect attempt soon after a disconnect means that.
  let reconnectCheck: NodeJS.Timeout | undefined;
  const reconnectIfAbandoned = () => {
    if (busConnected || subscriber.closed) return;
    log.warn("ZeroMQ gave up the connection (a message above bus.max_message_bytes?); connecting again", { endpoint, max_message_bytes: config.bus.max_message_bytes });
    try {
      subscriber.disconnect(endpoint);
    } catch {
      // Not connected any more: nothing to undo.
    }
    subscriber.connect(endpoint);
  };
  // ZeroMQ retries a refused handshake every 100 ms; the counter has every one.
  const refusalLog = new LogThrottle();
  void (async () => {
    try {
      for await (const event of subscriber.events) {
        if (event.type === "handshake") {
          busConnected = true;
          log.info("connected to the bus", { endpoint, curve: curve !== undefined });
        } else if (event.type === "disconnect") {
          const wasConnected = busConnected;
          busConnected = false;
          busMetrics.disconnects.inc();
          log.warn("disconnected from the bus; ZeroMQ reconnects by itself", { endpoint });
          clearTimeout(reconnectCheck);
          if (wasConnected) reconnectCheck = setTimeout(reconnectIfAbandoned, RECONNECT_CHECK_MS).unref();
        } else if (event.type === "connect:retry" || event.type === "connect") {
          clearTimeout(reconnectCheck);
        } else if (event.type.startsWith("handshake:error:")) {
          const kind = event.type.slice("handshake:error:".length);
          busMetrics.handshakeFailures.labels(kind).inc();
          const since = refusalLog.note(Date.now());
          if (!since) continue;
          log.error("the broker refused the connection", {
            endpoint,
            kind,
            attempts: since.times,
            hint: curve
              ? `is this consumer's key (${config.bus.client_name}) in the broker's allowed_clients, and the broker's public key current?`
              : "the broker requires CURVE: set bus.keys_dir (MESSAGE_BUS_KEYS_DIR) to the keys directory",
          });
        }
      }
    } catch {
      // The observer ends with the socket.
    }
  })();
  subscriber.connect(endpoint);
  busConnected = inproc;
  for (const topic of config.bus.topics) subscriber.subscribe(topic);

  let receiveLoopAlive = true;
  let lastMessageAtMs = 0;
  let messagesReceived = 0;
  const receiving = (async () => {
    try {
      await receiveEach(subscriber, (frames) => {
        lastMessageAtMs = Date.now();
        messagesReceived++;
        try {
          pipeline.accept(frames, lastMessageAtMs);
        } catch (error) {
          // A bug must cost one message, not the receive loop.
          metrics.dropped.labels(DROP_REASONS.internalError).inc();
          log.error("could not process a message", { error: (error as Error).stack });
        }
        armAgeTimer();
      }, { coalesceMs: RECEIVE_COALESCE_MS });
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
      // A lost spool lock means another consumer may send the same files: a restart takes the lock again or stops.
      health: () => ({ receive_loop: receiveLoopAlive, ...(spool && { spool_lock: spool.lockLost === undefined }) }),
      ready: async () => ({
        bus_connected: busConnected,
        loki_ready: await loki.ready(config.loki.ready_timeout),
        loki_credentials_accepted: !sender.credentialsRefused,
      }),
    });
  } catch (error) {
    subscriber.close();
    await loki.close();
    spool?.close();
    throw new Error(`cannot serve /healthz, /readyz and /metrics on ops.host ${config.ops.host}, ops.port ${config.ops.port}: ${(error as Error).message}`);
  }
  log.info("log consumer started", {
    bus: endpoint,
    topics: config.bus.topics,
    loki: redactUrls(config.loki.url),
    loki_auth: credentials.scheme,
    encoding: config.loki.encoding,
    compress: config.loki.compress,
    ops: ops.url,
    curve: curve !== undefined,
    spool: spool ? { dir: config.spool.dir, max_bytes: config.spool.max_bytes, fsync: config.spool.fsync } : "off (memory only)",
  });
  // Batches left in the spool by the previous run go first.
  sender.kick();

  let stopping: Promise<ShutdownSummary> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info("stopping: asking publishers to hold, reading what is on its way, then flushing", {
        buffered_entries: pipeline.bufferedEntries,
        deadline_ms: config.shutdown.flush_deadline,
      });
      const readUntilQuiet = async (step: string) => {
        const before = messagesReceived;
        const { quiet, ms } = await untilQuiet(() => lastMessageAtMs, { pending: () => !subscriber.closed && subscriber.readable });
        log[quiet ? "info" : "warn"](`stopping: ${step}`, { messages_read: messagesReceived - before, ms, quiet });
      };
      // Unsubscribing straight away would lose what publishers send before they hear of it: the broker drops it
      // as soon as it forgets our subscription. So publishers using the shared logger are first asked to hold
      // (they keep entries until a consumer subscribes again), and what they sent until then is read here.
      subscriber.subscribe(HOLD_TOPIC);
      await readUntilQuiet("publishers asked to hold, read what they had sent");
      // Our topics go before the hold does (closing the socket ends it), so no publisher sees our topics
      // still wanted after the hold; the wait lets that message leave and reads what others sent meanwhile.
      for (const topic of config.bus.topics) subscriber.unsubscribe(topic);
      await readUntilQuiet("unsubscribed");
      clearTimeout(reconnectCheck);
      subscriber.close();
      await receiving;
      clearTimeout(ageTimer);
      pipeline.flush();
      const result = await sender.drain(config.shutdown.flush_deadline);
      if (result.flushed) log.info("flushed everything before stopping");
      else if (result.undeliveredEntries > 0) log.error("flush deadline passed: entries not delivered", { undelivered_entries: result.undeliveredEntries });
      if (result.spooledEntries > 0) {
        log.warn("flush deadline passed: undelivered entries stay in the spool for the next start", { spooled_entries: result.spooledEntries, dir: config.spool.dir });
      }
      spool?.close();
      await Promise.all([ops.close(), loki.close()]);
      return result;
    })());

  return { opsUrl: ops.url, metrics, spoolMetrics, busMetrics, stop };
}
