import { randomUUID } from "node:crypto";
import { XPublisher } from "zeromq";
import { tcpEndpoint } from "../config/endpoint.js";
import type { ClientKeys } from "../curve/keys.js";
import { clientKeysFromEnv, curveClientOptions } from "../curve/keys.js";
import type { LogEntry } from "../wire/entry.js";
import { nowNs } from "../wire/entry.js";
import { encodeAicoMessage, encodeLogEntry } from "../wire/encode.js";
import type { LogLevelName } from "../wire/level.js";
import { HOLD_TOPIC, sanitizeName } from "../wire/topic.js";
import { BoundedQueue } from "./queue.js";

export interface LoggerOptions {
  subsystem: string;
  module: string;
  /** The broker's publisher endpoint. Default: tcp://$MESSAGE_BUS_HOST:$MESSAGE_BUS_PUB_PORT, else tcp://127.0.0.1:5555. */
  endpoint?: string;
  /** Entries held while nobody on the bus subscribes to them (broker down, restarting or not yet connected; a subscriber stopping). Default 10000; the oldest go first. */
  maxBuffered?: number;
  /** How long close() waits for held entries to reach the bus. Default 2000 ms. */
  closeTimeoutMs?: number;
  /**
   * Wire format. "aixcl" (default): topic logs.<subsystem>.<module>, bare LogEntry. "aico": topic
   * logs/<subsystem>/<module>/v1 and an AicoMessage envelope, as real AICO producers send.
   */
  format?: "aixcl" | "aico";
  /**
   * CurveZMQ keys for a broker that requires them. Default: from MESSAGE_BUS_KEYS_DIR and
   * MESSAGE_BUS_CLIENT_NAME (see clientKeysFromEnv); plaintext when those name no keys.
   */
  curve?: ClientKeys;
}

/** Fields of a LogEntry that only the caller knows; all optional. */
export interface LogContext {
  /** When it happened, in nanoseconds since the Unix epoch. Default: now (transports pass their logger's time). */
  timestampNs?: bigint;
  function?: string;
  filePath?: string;
  lineNumber?: number;
  traceId?: string;
  sessionId?: string;
  userUuid?: string;
  metadata?: Record<string, string>;
}

export type Extra = Record<string, unknown>;

export interface LoggerStats {
  /** Entries handed to the socket. */
  published: number;
  /** Entries waiting for a subscriber. */
  buffered: number;
  /** Entries lost, by reason: "buffer_full" (oldest dropped while the bus was unreachable), "closed" (logged after close, or still held when close timed out). */
  dropped: { buffer_full: number; closed: number };
}

export interface Logger {
  debug(message: string, extra?: Extra, context?: LogContext): void;
  info(message: string, extra?: Extra, context?: LogContext): void;
  warning(message: string, extra?: Extra, context?: LogContext): void;
  error(message: string, extra?: Extra, context?: LogContext): void;
  critical(message: string, extra?: Extra, context?: LogContext): void;
  log(level: LogLevelName, message: string, extra?: Extra, context?: LogContext): void;
  /**
   * True while entries are being delivered: the bus has a subscriber for this logger's topic and no subscriber
   * is leaving (one that is subscribes to HOLD_TOPIC while it reads what is still on its way).
   */
  readonly connected: boolean;
  stats(): LoggerStats;
  /** Waits up to closeTimeoutMs for held entries to reach the bus, then closes the socket. */
  close(): Promise<LoggerStats>;
}

function defaultEndpoint(env: NodeJS.ProcessEnv): string {
  return tcpEndpoint(env.MESSAGE_BUS_HOST || "127.0.0.1", Number(env.MESSAGE_BUS_PUB_PORT || 5555));
}

function stringify(extra: Extra | undefined): Record<string, string> {
  if (!extra) return {};
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(extra)) out[key] = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return out;
}

type Frames = [Buffer, Uint8Array];

/** How long the pump waits before retrying when the socket's send queue is full. */
const FULL_QUEUE_RETRY_MS = 2;

/**
 * Sends, or returns false after a short wait when the send queue is at its high-water mark: with NODROP an
 * XPUB answers EAGAIN there (zeromq.js does not wait for it), and the entry must stay queued, not be lost.
 */
async function sendOrWait(socket: XPublisher, frames: Frames): Promise<boolean> {
  try {
    await socket.send(frames);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code !== "EAGAIN") throw error;
    await new Promise((resolve) => setTimeout(resolve, FULL_QUEUE_RETRY_MS));
    return false;
  }
}

/**
 * Creates an application logger that publishes LogEntry messages to the broker. Logging never blocks: entries
 * are encoded and queued, and a background pump hands them to the socket. The socket is an XPUB, so the
 * logger sees the bus' subscriptions: while no subscriber wants its topic (broker down, consumer not yet
 * connected) or a subscriber is leaving (HOLD_TOPIC), it holds entries in a bounded queue instead of letting
 * ZeroMQ drop them unseen.
 */
export function createLogger(options: LoggerOptions): Logger {
  const subsystem = sanitizeName(options.subsystem);
  const module = sanitizeName(options.module);
  const format = options.format ?? "aixcl";
  const topic = format === "aico" ? `logs/${subsystem}/${module}/v1` : `logs.${subsystem}.${module}`;
  const topicFrame = Buffer.from(topic);
  const closeTimeoutMs = options.closeTimeoutMs ?? 2000;
  const queue = new BoundedQueue<Frames>(options.maxBuffered ?? 10_000);
  const stats: LoggerStats = { published: 0, buffered: 0, dropped: { buffer_full: 0, closed: 0 } };

  // NODROP makes a full send queue wait instead of discarding, so every loss is ours and counted. IMMEDIATE
  // drops the pipe (and with it the subscriptions) while the broker is away, so entries wait in our bounded
  // queue rather than in a pipe to nowhere.
  const curve = options.curve ?? clientKeysFromEnv(process.env);
  const socket = new XPublisher({ noDrop: true, immediate: true, linger: closeTimeoutMs, ...(curve ? curveClientOptions(curve) : {}) });
  socket.connect(options.endpoint ?? defaultEndpoint(process.env));

  const prefixes = new Set<string>();
  let wanted = false;
  let pumping = false;
  let closing = false;
  let drained: (() => void) | undefined;

  const pump = async () => {
    if (pumping) return;
    pumping = true;
    try {
      while (wanted && !socket.closed) {
        const frames = queue.peek();
        if (!frames) break;
        if (!(await sendOrWait(socket, frames))) continue;
        // While the send was under way, a full queue may have evicted this very entry.
        if (queue.peek() === frames) queue.shift();
        stats.published++;
      }
    } catch {
      // The socket was closed under us by close(); what is left is counted there.
    } finally {
      pumping = false;
      if (queue.size === 0) drained?.();
    }
  };

  void (async () => {
    try {
      for await (const [frame] of socket) {
        if (!frame || frame.length === 0) continue;
        const prefix = frame.subarray(1).toString();
        if (frame[0] === 1) prefixes.add(prefix);
        else prefixes.delete(prefix);
        // Changes that arrive together are applied together: a broker going away removes all its subscriptions
        // at once, and resuming between the hold's removal and our topic's would send into a pipe that is gone.
        if (socket.readable) continue;
        wanted = !prefixes.has(HOLD_TOPIC) && [...prefixes].some((p) => topic.startsWith(p));
        if (wanted) void pump();
      }
    } catch {
      // Ends when the socket closes.
    }
  })();

  const log = (level: LogLevelName, message: string, extra?: Extra, context: LogContext = {}) => {
    if (closing) {
      stats.dropped.closed++;
      return;
    }
    const entry: LogEntry = {
      timestampNs: context.timestampNs ?? nowNs(),
      level,
      subsystem,
      module,
      function: context.function ?? "",
      message,
      topic,
      metadata: context.metadata ?? {},
      filePath: context.filePath ?? "",
      lineNumber: context.lineNumber ?? 0,
      userUuid: context.userUuid ?? "",
      sessionId: context.sessionId ?? "",
      traceId: context.traceId ?? "",
      extra: stringify(extra),
    };
    const payload =
      format === "aico"
        ? encodeAicoMessage(entry, { messageId: randomUUID(), timestampNs: entry.timestampNs, source: subsystem })
        : encodeLogEntry(entry);
    if (queue.push([topicFrame, payload])) stats.dropped.buffer_full++;
    if (wanted) void pump();
  };

  return {
    debug: (m, e, c) => log("debug", m, e, c),
    info: (m, e, c) => log("info", m, e, c),
    warning: (m, e, c) => log("warning", m, e, c),
    error: (m, e, c) => log("error", m, e, c),
    critical: (m, e, c) => log("critical", m, e, c),
    log,
    get connected() {
      return wanted;
    },
    stats: () => ({ ...stats, buffered: queue.size, dropped: { ...stats.dropped } }),
    async close() {
      closing = true;
      if (queue.size > 0 || pumping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, closeTimeoutMs);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      stats.dropped.closed += queue.size;
      queue.clear();
      socket.close();
      return { ...stats, buffered: 0, dropped: { ...stats.dropped } };
    },
  };
}
