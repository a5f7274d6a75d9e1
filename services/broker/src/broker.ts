import { randomUUID } from "node:crypto";
import { Proxy, Subscriber, XPublisher, XSubscriber } from "zeromq";
import type { MessageBusConfig, OpsServer, ServiceLog } from "@aixcl/shared";
import { HOLD_TOPIC, bindAddress, curveEnabled, loadBrokerKeys, receiveEach, serviceLog, startOpsServer, tcpEndpoint, untilQuiet } from "@aixcl/shared";
import { BrokerMetrics } from "./metrics.js";
import { SubscriptionSet } from "./subscriptions.js";
import { authenticate } from "./zap.js";

export interface RunningBroker {
  /** Where publishers connect (XSUB). */
  readonly pubEndpoint: string;
  /** Where subscribers connect (XPUB). */
  readonly subEndpoint: string;
  readonly ops: OpsServer;
  readonly metrics: BrokerMetrics;
  /**
   * Asks publishers to hold (HOLD_TOPIC) and forwards what they sent until then, then stops forwarding and closes
   * the sockets and the HTTP server. Loggers made by createLogger keep their entries for the next broker.
   */
  close(): Promise<void>;
}

function bindSpec(host: string, port: number): string {
  // ZeroMQ spells "any free port" as *, not 0.
  return port === 0 ? `tcp://${bindAddress(host)}:*` : tcpEndpoint(bindAddress(host), port);
}

/**
 * Counts TCP peers and refused handshakes from the socket's monitor events; must be attached before the
 * proxy owns the socket.
 */
function observePeers(socket: XSubscriber | XPublisher, side: "publishers" | "subscribers", metrics: BrokerMetrics): void {
  const peers = metrics.peers.labels(side);
  socket.events.on("accept", () => peers.inc());
  socket.events.on("disconnect", () => peers.dec());
  socket.events.on("handshake:error:auth", () => metrics.handshakeFailures.labels(side, "auth").inc());
  socket.events.on("handshake:error:protocol", () => metrics.handshakeFailures.labels(side, "protocol").inc());
  socket.events.on("handshake:error:other", () => metrics.handshakeFailures.labels(side, "other").inc());
}

interface Stage {
  run: Promise<void>;
  terminate(): void;
}

function runProxy(frontend: XSubscriber, backend: XPublisher, log: ServiceLog): Stage {
  const proxy = new Proxy(frontend, backend);
  const run = proxy.run().catch((error: Error) => log.error("proxy stopped", { error: error.message }));
  return { run, terminate: () => proxy.terminate() };
}

/**
 * Starts the message bus: XSUB bound on pub_port (publishers connect), XPUB bound on sub_port (subscribers
 * connect), forwarded by libzmq's own proxy on worker threads. JavaScript only observes, through sockets that
 * never change what publishers are asked for:
 * - a probe (an XPUB connected where the subscribers' subscriptions arrive) sees each distinct subscription;
 * - with count_messages, the bus runs as two proxies joined over inproc, and a tap on the joint subscribes to
 *   exactly the prefixes the probe saw, so it counts what is forwarded without widening any subscription.
 *   A catch-all tap would make every publisher believe someone listens, defeating the logger's
 *   hold-until-subscribed guarantee.
 */
export async function startBroker(config: MessageBusConfig, log: ServiceLog = serviceLog("broker")): Promise<RunningBroker> {
  const { broker } = config;
  const metrics = new BrokerMetrics();
  const id = randomUUID();
  const hwm = { receiveHighWaterMark: broker.recv_hwm, sendHighWaterMark: broker.send_hwm, linger: 0 };
  const publisherSide = { ...hwm, noDrop: broker.no_drop };

  const keys = curveEnabled(config.keys_dir) ? loadBrokerKeys(config.keys_dir) : undefined;
  const zapDomain = `aixcl-${id}`;
  const security = keys ? { curveServer: true, curveSecretKey: keys.secretKey, zapDomain } : {};
  metrics.curve.set(keys ? 1 : 0);
  if (config.keys_dir !== "" && !keys) log.warn("no broker.secret in keys_dir: the bus runs plaintext; create keys with `./aixcl keys`", { keysDir: config.keys_dir });
  const withdraw = keys
    ? await authenticate(zapDomain, {
        allowed: keys.allowed,
        onDecision: (outcome) =>
          outcome.allowed
            ? metrics.authDecisions.labels("allowed", "listed").inc()
            : metrics.authDecisions.labels("denied", outcome.reason).inc(),
      })
    : async () => undefined;

  // Where the broker subscribes to HOLD_TOPIC itself at a stop; inproc, so it needs no CURVE key.
  const holdInproc = `inproc://aixcl-broker-${id}-hold`;
  const frontend = new XSubscriber({ ...hwm, ...security, maxMessageSize: broker.max_message_bytes });
  const backend = new XPublisher({ ...publisherSide, ...security });
  observePeers(frontend, "publishers", metrics);
  observePeers(backend, "subscribers", metrics);
  let pubEndpoint: string;
  let subEndpoint: string;
  try {
    await frontend.bind(bindSpec(config.host, config.pub_port));
    pubEndpoint = frontend.lastEndpoint ?? "";
    await backend.bind(bindSpec(config.host, config.sub_port));
    subEndpoint = backend.lastEndpoint ?? "";
    await backend.bind(holdInproc);
  } catch (error) {
    frontend.close();
    backend.close();
    await withdraw();
    throw new Error(
      `cannot bind the message bus on ${config.host} ports ${config.pub_port}/${config.sub_port}: ${(error as Error).message}. ` +
        "Is another broker running? Change pub_port/sub_port in config/message_bus.yaml or MESSAGE_BUS_PUB_PORT/MESSAGE_BUS_SUB_PORT.",
    );
  }

  // The XSUB that receives the subscribers' subscriptions: the frontend itself, or the second stage's.
  const subscriptionsInproc = `inproc://aixcl-broker-${id}-subscriptions`;
  const stages: Stage[] = [];
  const observers: { socket: XPublisher | Subscriber; loop: Promise<void> }[] = [];
  let tap: Subscriber | undefined;
  if (broker.count_messages) {
    const jointInproc = `inproc://aixcl-broker-${id}-joint`;
    const joint = new XPublisher(publisherSide);
    const jointIn = new XSubscriber(hwm);
    await joint.bind(jointInproc);
    jointIn.connect(jointInproc);
    await jointIn.bind(subscriptionsInproc);
    tap = new Subscriber({ receiveHighWaterMark: broker.send_hwm, linger: 0 });
    tap.connect(jointInproc);
    const counted = tap;
    observers.push({ socket: counted, loop: receiveEach(counted, (frames) => metrics.countMessage(frames)).catch(() => undefined) });
    stages.push(runProxy(frontend, joint, log), runProxy(jointIn, backend, log));
  } else {
    await frontend.bind(subscriptionsInproc);
    stages.push(runProxy(frontend, backend, log));
  }

  const subscriptions = new SubscriptionSet();
  const probe = new XPublisher({ linger: 0 });
  probe.connect(subscriptionsInproc);
  observers.push({ socket: probe, loop: (async () => {
    for await (const [frame] of probe) {
      if (!frame || !subscriptions.apply(frame)) continue;
      metrics.subscriptions.set(subscriptions.size);
      const prefix = frame.subarray(1);
      if (frame[0] === 1) tap?.subscribe(prefix);
      else tap?.unsubscribe(prefix);
    }
  })().catch(() => undefined) });

  const stop = async () => {
    for (const stage of stages) stage.terminate();
    await Promise.all(stages.map((stage) => stage.run));
    for (const observer of observers) observer.socket.close();
    await Promise.all(observers.map((observer) => observer.loop));
    await withdraw();
  };

  let ops: OpsServer;
  try {
    ops = await startOpsServer({
      host: broker.metrics_host,
      port: broker.metrics_port,
      registry: metrics.registry,
      health: () => ({ proxy: !frontend.closed && !backend.closed }),
    });
  } catch (error) {
    await stop();
    throw new Error(`cannot serve metrics on ${broker.metrics_host}:${broker.metrics_port}: ${(error as Error).message}`);
  }
  log.info("broker started", { pubEndpoint, subEndpoint, metrics: `${ops.url}/metrics`, countMessages: broker.count_messages, curve: keys ? `${keys.allowed.length} allowed client keys` : "off" });

  // Subscribed like any leaving subscriber, the hold reaches every publisher. The holder also subscribes to what
  // the subscribers want (no subscription widens), so it sees when the last of what was sent has gone through.
  const holdPublishers = async () => {
    const holder = new Subscriber({ linger: 0 });
    holder.connect(holdInproc);
    holder.subscribe(HOLD_TOPIC, ...subscriptions.values());
    let lastMessageAtMs = 0;
    let forwarded = 0;
    const reading = receiveEach(holder, () => {
      lastMessageAtMs = Date.now();
      forwarded++;
    }).catch(() => undefined);
    const { quiet, ms } = await untilQuiet(() => lastMessageAtMs);
    log[quiet ? "info" : "warn"]("stopping: publishers asked to hold, forwarded what they had sent", { messages: forwarded, ms, quiet });
    // Closed only after the proxies: its going would lift the hold while the subscribers' topics are still wanted.
    return async () => {
      holder.close();
      await reading;
    };
  };

  let closed: Promise<void> | undefined;
  const close = async () => {
    const release = await holdPublishers();
    await stop();
    await release();
    await ops.close();
    log.info("broker stopped");
  };
  return {
    pubEndpoint,
    subEndpoint,
    ops,
    metrics,
    close: () => (closed ??= close()),
  };
}
