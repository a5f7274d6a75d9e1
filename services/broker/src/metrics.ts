import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import { LANE_PREFIXES, laneOf } from "./lanes.js";

/** Topic families: log traffic is what this stack is for; anything else on the bus is counted apart. */
export type TopicFamily = "logs" | "other";

export function topicFamily(topic: Uint8Array): TopicFamily {
  // "logs" followed by "." or "/" (both topic styles); compared on bytes to avoid decoding every topic.
  return laneOf(topic) === -1 ? "other" : "logs";
}

/** Why the broker lost a message (aixcl_broker_dropped_messages_total{reason}). */
export const DROP_REASONS = {
  /** A non-log message a subscriber could not take: its queue was send_hwm messages deep (no_drop: false). */
  subscriberFull: "subscriber_full",
  /** The backlog reached broker.backlog.max_bytes: its oldest held messages were deleted. */
  backlogFull: "backlog_full",
  /** A backlog file could not be read back or failed its checksum. */
  backlogCorrupt: "backlog_corrupt",
  /** Held in memory (no broker.backlog.dir) when the broker stopped. */
  stopped: "stopped",
} as const;

/** What the forwarding loop counts in plain numbers; the counters below read them when scraped. */
export interface Tally {
  /** By family: index 0 logs, 1 other. */
  messages: [number, number];
  bytes: [number, number];
  /** Log messages that went into the backlog. */
  held: number;
  /** Held log messages forwarded. */
  forwarded: number;
}

/** Where /metrics reads the backlog's state. */
export interface BacklogView {
  readonly messages: number;
  readonly bytes: number;
  readonly oldestHeldAtMs: number | undefined;
}

const FAMILIES: readonly TopicFamily[] = ["logs", "other"];

export class BrokerMetrics {
  readonly registry = new Registry();
  /** Incremented by the forwarding loop without touching prom-client; index 0 logs, 1 other. */
  readonly tally: Tally = { messages: [0, 0], bytes: [0, 0], held: 0, forwarded: 0 };
  private backlogView: BacklogView | undefined;
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
  readonly allowListReloads = new Counter({
    name: "aixcl_broker_allow_list_reloads_total",
    help: "Reloads of the CURVE allow list (SIGHUP, sent by ./aixcl keys), by result; a failed one keeps the list before it.",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly handshakeFailures = new Counter({
    name: "aixcl_broker_handshake_failures_total",
    help: "Connections refused during the handshake, by side and kind (auth: key not allowed; protocol: e.g. a plaintext peer on a CURVE port).",
    labelNames: ["side", "kind"],
    registers: [this.registry],
  });
  readonly dropped = new Counter({
    name: "aixcl_broker_dropped_messages_total",
    help: "Messages the broker lost, by topic family and reason (subscriber_full, backlog_full, backlog_corrupt, stopped).",
    labelNames: ["family", "reason"],
    registers: [this.registry],
  });
  readonly logSubscribed = new Gauge({
    name: "aixcl_broker_log_subscribed",
    help: "1 while a subscriber (a consumer) takes every log message of the topic style and none asks publishers to hold; 0 while the broker holds them.",
    labelNames: ["topics"],
    registers: [this.registry],
  });
  readonly backlogLimit = new Gauge({
    name: "aixcl_broker_backlog_limit_bytes",
    help: "Configured broker.backlog.max_bytes.",
    registers: [this.registry],
  });

  constructor() {
    const registers = [this.registry];
    const tally = this.tally;
    // Counters that catch up with the loop's plain numbers when scraped: no prom-client call per message.
    const byFamily = (name: string, help: string, field: "messages" | "bytes") => {
      const seen = [0, 0];
      return new Counter({
        name,
        help,
        labelNames: ["family"],
        registers,
        collect() {
          FAMILIES.forEach((family, i) => {
            const now = tally[field][i] as number;
            this.labels(family).inc(now - (seen[i] as number));
            seen[i] = now;
          });
        },
      });
    };
    byFamily("aixcl_broker_messages_total", "Messages that passed through the broker, by topic family (logs = logs.* and logs/*).", "messages");
    byFamily("aixcl_broker_bytes_total", "Bytes (all frames) that passed through the broker, by topic family.", "bytes");
    const total = (name: string, help: string, field: "held" | "forwarded") => {
      let seen = 0;
      return new Counter({
        name,
        help,
        registers,
        collect() {
          this.inc(tally[field] - seen);
          seen = tally[field];
        },
      });
    };
    total("aixcl_broker_backlog_held_messages_total", "Log messages the broker kept because no subscriber took their topic style, or one could not take them yet.", "held");
    total("aixcl_broker_backlog_forwarded_messages_total", "Held log messages forwarded once a subscriber took them.", "forwarded");
    const view = () => this.backlogView;
    new Gauge({
      name: "aixcl_broker_backlog_messages",
      help: "Log messages held for a subscriber (in memory, or on disk with broker.backlog.dir).",
      registers,
      collect() {
        this.set(view()?.messages ?? 0);
      },
    });
    new Gauge({
      name: "aixcl_broker_backlog_bytes",
      help: "Bytes held, as broker.backlog.max_bytes counts them (on disk: 4 KiB blocks).",
      registers,
      collect() {
        this.set(view()?.bytes ?? 0);
      },
    });
    new Gauge({
      name: "aixcl_broker_backlog_oldest_age_seconds",
      help: "How long the oldest held message has been held; 0 when nothing is held.",
      registers,
      collect() {
        const at = view()?.oldestHeldAtMs;
        this.set(at === undefined ? 0 : Math.max(0, (Date.now() - at) / 1000));
      },
    });
    collectDefaultMetrics({ register: this.registry });
    this.peers.labels("publishers").set(0);
    this.peers.labels("subscribers").set(0);
    this.subscriptions.set(0);
    for (const prefix of LANE_PREFIXES) this.logSubscribed.labels(prefix).set(0);
    // Every drop that can happen shows as 0 before it does, so rates and alerts see its first increase.
    for (const reason of [DROP_REASONS.backlogFull, DROP_REASONS.backlogCorrupt, DROP_REASONS.stopped]) this.dropped.labels("logs", reason).inc(0);
    this.dropped.labels("other", DROP_REASONS.subscriberFull).inc(0);
  }

  /** Where the backlog gauges read from. */
  watch(backlog: BacklogView): void {
    this.backlogView = backlog;
  }
}
