import { randomUUID } from "node:crypto";
import { XPublisher, XSubscriber } from "zeromq";
import { HOLD_TOPIC, tcpEndpoint, untilQuiet } from "@aixcl/wire";
import type { MessageBusConfig, OpsServer, ServiceLog, SpoolMetrics } from "@aixcl/service-runtime";
import { bindAddress, createSpoolMetrics, curveEnabled, loadBrokerKeys, serviceLog, startOpsServer } from "@aixcl/service-runtime";
import { Backlog } from "./backlog.js";
import { Forwarder } from "./forwarder.js";
import type { Lane } from "./lanes.js";
import { ALWAYS_TAKEN, LANE_PREFIXES } from "./lanes.js";
import { BrokerMetrics, DROP_REASONS } from "./metrics.js";
import { SubscriptionSet } from "./subscriptions.js";
import { watchSubscriptions } from "./watcher.js";
import { authenticate, type ZapPolicy } from "./zap.js";

export interface RunningBroker {
  /** Where publishers connect (XSUB). */
  readonly pubEndpoint: string;
  /** Where subscribers connect (XPUB). */
  readonly subEndpoint: string;
  readonly ops: OpsServer;
  readonly metrics: BrokerMetrics;
  /**
   * Asks publishers to hold (HOLD_TOPIC) and forwards what they sent until then, then stops forwarding, keeps the
   * backlog on disk (with broker.backlog.dir) and closes the sockets and the HTTP server. Loggers made by
   * createLogger keep their entries for the next broker.
   */
  close(): Promise<void>;
  /**
   * Reads the allow list (`allowed_clients` in keys_dir) again and admits by it from the next handshake on; a client
   * already connected stays connected (ZeroMQ authenticates at the handshake only), so a revocation restarts the
   * broker instead. Returns how many keys are allowed now; on an unreadable list the old one stays, and it throws.
   * Undefined when the bus runs without CURVE.
   */
  reloadAllowList(): number | undefined;
}

/** How long queued messages may still leave for subscribers once the broker has closed its port. */
const BACKEND_LINGER_MS = 1000;
/** Largest chunk of the backlog (one file on disk); smaller when the bound is small, so it holds several. */
const CHUNK_BYTES = 256 * 1024;
/** Held messages are queued as a chunk (with broker.backlog.dir: written) within this long: what a crash can lose. */
const SEAL_AFTER_MS = 1000;

function bindSpec(host: string, port: number): string {
  // ZeroMQ spells "any free port" as *, not 0.
  return port === 0 ? `tcp://${bindAddress(host)}:*` : tcpEndpoint(bindAddress(host), port);
}

/** A subscription message as XSUB sends it upstream: 0x01 + prefix. */
function subscribeFrame(prefix: string): Buffer {
  return Buffer.concat([Buffer.of(1), Buffer.from(prefix)]);
}

/** Counts TCP peers and refused handshakes from the socket's monitor events. */
function observePeers(socket: XSubscriber | XPublisher, side: "publishers" | "subscribers", metrics: BrokerMetrics): void {
  const peers = metrics.peers.labels(side);
  socket.events.on("accept", () => peers.inc());
  socket.events.on("disconnect", () => peers.dec());
  socket.events.on("handshake:error:auth", () => metrics.handshakeFailures.labels(side, "auth").inc());
  socket.events.on("handshake:error:protocol", () => metrics.handshakeFailures.labels(side, "protocol").inc());
  socket.events.on("handshake:error:other", () => metrics.handshakeFailures.labels(side, "other").inc());
}

/**
 * Starts the message bus: XSUB bound on pub_port (publishers connect), XPUB bound on sub_port (subscribers
 * connect), and between them the Forwarder, which holds log messages no subscriber takes (see forwarder.ts and
 * backlog.ts). The broker subscribes upstream to both log topic styles itself, for good: publishers filter on
 * the subscriptions they see, so without it a plain ZeroMQ PUB publisher would drop its logs at the source while
 * no consumer is connected. Subscribers' subscriptions travel upstream as through libzmq's own proxy.
 */
export interface BrokerOptions {
  /**
   * Also bind the subscriber side here (inproc://name): a consumer in the same process (services/bus) subscribes
   * without TCP, so a message crosses from one socket to the other without syscalls or libzmq's I/O thread.
   */
  inprocSubEndpoint?: string;
}

export async function startBroker(config: MessageBusConfig, log: ServiceLog = serviceLog("broker"), options: BrokerOptions = {}): Promise<RunningBroker> {
  const { broker } = config;
  const metrics = new BrokerMetrics();
  const id = randomUUID();

  const keys = curveEnabled(config.keys_dir) ? loadBrokerKeys(config.keys_dir) : undefined;
  const zapDomain = `aixcl-${id}`;
  const security = keys ? { curveServer: true, curveSecretKey: keys.secretKey, zapDomain } : {};
  metrics.curve.set(keys ? 1 : 0);
  if (config.keys_dir !== "" && !keys) log.warn("no broker.secret in keys_dir: the bus runs plaintext; create keys with `./aixcl keys`", { keysDir: config.keys_dir });
  const policy: ZapPolicy = {
    allowed: keys?.allowed ?? [],
    onDecision: (outcome) =>
      outcome.allowed ? metrics.authDecisions.labels("allowed", "listed").inc() : metrics.authDecisions.labels("denied", outcome.reason).inc(),
  };
  const withdraw = keys ? await authenticate(zapDomain, policy) : async () => undefined;

  const frontend = new XSubscriber({ receiveHighWaterMark: broker.recv_hwm, linger: 0, maxMessageSize: broker.max_message_bytes, ...security });
  // NODROP: a full subscriber queue answers EAGAIN instead of losing the message unseen, so the Forwarder decides
  // and counts. Send timeout 0: a send completes (or fails) at once, never waiting on the event loop.
  const backend = new XPublisher({ sendHighWaterMark: broker.send_hwm, noDrop: true, sendTimeout: 0, linger: BACKEND_LINGER_MS, ...security });
  observePeers(frontend, "publishers", metrics);
  observePeers(backend, "subscribers", metrics);
  let pubEndpoint: string;
  let subEndpoint: string;
  let backlog: Backlog;
  try {
    try {
      await frontend.bind(bindSpec(config.host, config.pub_port));
      pubEndpoint = frontend.lastEndpoint ?? "";
      await backend.bind(bindSpec(config.host, config.sub_port));
      subEndpoint = backend.lastEndpoint ?? "";
      if (options.inprocSubEndpoint) await backend.bind(options.inprocSubEndpoint);
    } catch (error) {
      throw new Error(
        `cannot bind the message bus on ${config.host} ports ${config.pub_port}/${config.sub_port}: ${(error as Error).message}. ` +
          "Is another broker running? Change pub_port/sub_port in config/message_bus.yaml or MESSAGE_BUS_PUB_PORT/MESSAGE_BUS_SUB_PORT.",
      );
    }
    const { backlog: settings } = broker;
    let spoolMetrics: SpoolMetrics | undefined;
    if (settings.dir !== "") spoolMetrics = createSpoolMetrics(metrics.registry, "aixcl_broker_backlog_");
    backlog = new Backlog(
      { maxBytes: settings.max_bytes, dir: settings.dir, fsync: settings.fsync, chunkBytes: Math.min(CHUNK_BYTES, Math.floor(settings.max_bytes / 8)), sealAfterMs: SEAL_AFTER_MS },
      { log, spoolMetrics, onDropped: (reason, messages) => metrics.dropped.labels("logs", reason).inc(messages) },
    );
  } catch (error) {
    frontend.close();
    backend.close();
    await withdraw();
    throw error;
  }
  metrics.watch(backlog);
  metrics.backlogLimit.set(broker.backlog.max_bytes);

  const subscriptions = new SubscriptionSet();
  let forwarding = true;
  let subscribing = true;
  const forwarder = new Forwarder(frontend, backend, subscriptions, backlog, metrics, {
    noDrop: broker.no_drop,
    countMessages: broker.count_messages,
    onFailure: (error) => {
      forwarding = false;
      log.error("forwarding held messages stopped", { error: error.message });
    },
  });
  const forwardLoop = forwarder.run().catch((error: Error) => {
    forwarding = false;
    log.error("forwarding stopped", { error: error.message });
  });

  for (const lane of ALWAYS_TAKEN) await frontend.send(subscribeFrame(LANE_PREFIXES[lane]));
  // The subscribers' subscriptions, as the XPUB reports them (first to take a prefix, last to leave it): applied
  // here first, so a lane nobody takes any more is held before publishers hear of it; then sent upstream.
  const subscriptionLoop = watchSubscriptions(backend, () => forwarder.received, async (frame) => {
    if (subscriptions.apply(frame)) {
      metrics.subscriptions.set(subscriptions.size);
      LANE_PREFIXES.forEach((prefix, lane) => metrics.logSubscribed.labels(prefix).set(subscriptions.delivers(lane as Lane) ? 1 : 0));
      forwarder.subscriptionsChanged();
    }
    if (!frontend.closed) await frontend.send(frame);
  }).catch((error: Error) => {
    subscribing = false;
    log.error("subscription forwarding stopped", { error: error.message });
  });

  const stop = async () => {
    await forwarder.stop();
    await forwardLoop;
    const lost = backlog.close();
    if (lost > 0) {
      metrics.dropped.labels("logs", DROP_REASONS.stopped).inc(lost);
      log.warn("held log messages are lost: no broker.backlog.dir to keep them in", { messages: lost });
    }
    backend.close();
    await subscriptionLoop;
    await withdraw();
  };

  let ops: OpsServer;
  try {
    ops = await startOpsServer({
      host: broker.metrics_host,
      port: broker.metrics_port,
      registry: metrics.registry,
      // Holding messages is normal (no consumer yet), not a reason to be unready.
      health: () => ({ forwarding: forwarding && !frontend.closed && !backend.closed, subscriptions: subscribing }),
    });
  } catch (error) {
    await stop();
    throw new Error(`cannot serve metrics on ${broker.metrics_host}:${broker.metrics_port}: ${(error as Error).message}`);
  }
  log.info("broker started", {
    pubEndpoint,
    subEndpoint,
    metrics: `${ops.url}/metrics`,
    countMessages: broker.count_messages,
    curve: keys ? `${keys.allowed.length} allowed client keys` : "off",
    backlog: { max_bytes: broker.backlog.max_bytes, dir: broker.backlog.dir || "(memory only)", held: backlog.messages },
  });

  // Subscribed upstream like any leaving subscriber's, the hold reaches every publisher; what they sent before
  // they heard of it is still forwarded, or held.
  const holdPublishers = async () => {
    const before = forwarder.received;
    let seen = before;
    let lastMessageAtMs = 0;
    await frontend.send(subscribeFrame(HOLD_TOPIC));
    const { quiet, ms } = await untilQuiet(() => {
      if (forwarder.received !== seen) {
        seen = forwarder.received;
        lastMessageAtMs = Date.now();
      }
      return lastMessageAtMs;
    }, { pending: () => !frontend.closed && frontend.readable });
    log[quiet ? "info" : "warn"]("stopping: publishers asked to hold, forwarded what they had sent", { messages: forwarder.received - before, ms, quiet });
  };

  let closed: Promise<void> | undefined;
  const close = async () => {
    await holdPublishers();
    const held = backlog.messages;
    await stop();
    if (backlog.durable && held > 0) log.info("backlog: held messages stay on disk for the next start", { dir: broker.backlog.dir });
    await ops.close();
    log.info("broker stopped");
  };
  const reloadAllowList = () => {
    if (!keys) return undefined;
    try {
      policy.allowed = loadBrokerKeys(config.keys_dir).allowed;
    } catch (error) {
      metrics.allowListReloads.labels("failed").inc();
      throw error;
    }
    metrics.allowListReloads.labels("ok").inc();
    log.info("allow list reloaded", { allowedClients: policy.allowed.length });
    return policy.allowed.length;
  };
  return {
    reloadAllowList,
    pubEndpoint,
    subEndpoint,
    ops,
    metrics,
    close: () => (closed ??= close()),
  };
}
