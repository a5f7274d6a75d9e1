import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";

/** Topic families: log traffic is what this stack is for; anything else on the bus is counted apart. */
export type TopicFamily = "logs" | "other";

export function topicFamily(topic: Uint8Array): TopicFamily {
  // "logs" followed by "." or "/" (both topic styles); compared on bytes to avoid decoding every topic.
  return topic.length > 4 && topic[0] === 0x6c && topic[1] === 0x6f && topic[2] === 0x67 && topic[3] === 0x73 &&
    (topic[4] === 0x2e || topic[4] === 0x2f)
    ? "logs"
    : "other";
}

export class BrokerMetrics {
  readonly registry = new Registry();
  private readonly messages = new Counter({
    name: "aixcl_broker_messages_total",
    help: "Messages that passed through the broker, by topic family (logs = logs.* and logs/*).",
    labelNames: ["family"],
    registers: [this.registry],
  });
  private readonly bytes = new Counter({
    name: "aixcl_broker_bytes_total",
    help: "Bytes (all frames) that passed through the broker, by topic family.",
    labelNames: ["family"],
    registers: [this.registry],
  });
  readonly subscriptions = new Gauge({
    name: "aixcl_broker_subscriptions",
    help: "Distinct topic prefixes subscribed to by at least one subscriber.",
    registers: [this.registry],
  });
  readonly peers = new Gauge({
    name: "aixcl_broker_connected_peers",
    help: "TCP peers connected, by side (publishers on the XSUB port, subscribers on the XPUB port).",
    labelNames: ["side"],
    registers: [this.registry],
  });
  readonly curve = new Gauge({
    name: "aixcl_broker_curve_enabled",
    help: "1 when the bus requires CurveZMQ with an allow-list of client keys, 0 when it runs plaintext.",
    registers: [this.registry],
  });
  readonly authDecisions = new Counter({
    name: "aixcl_broker_auth_decisions_total",
    help: "CURVE client authentication decisions (ZAP), by result and reason.",
    labelNames: ["result", "reason"],
    registers: [this.registry],
  });
  readonly handshakeFailures = new Counter({
    name: "aixcl_broker_handshake_failures_total",
    help: "Connections refused during the handshake, by side and kind (auth: key not allowed; protocol: e.g. a plaintext peer on a CURVE port).",
    labelNames: ["side", "kind"],
    registers: [this.registry],
  });
  private readonly byFamily = {
    logs: { messages: this.messages.labels("logs"), bytes: this.bytes.labels("logs") },
    other: { messages: this.messages.labels("other"), bytes: this.bytes.labels("other") },
  };

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.peers.labels("publishers").set(0);
    this.peers.labels("subscribers").set(0);
    this.subscriptions.set(0);
  }

  countMessage(frames: readonly Uint8Array[]): void {
    const [topic] = frames;
    if (!topic) return;
    let size = 0;
    for (const frame of frames) size += frame.length;
    const family = this.byFamily[topicFamily(topic)];
    family.messages.inc();
    family.bytes.inc(size);
  }
}
