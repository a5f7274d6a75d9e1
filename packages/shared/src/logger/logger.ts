import { randomUUID } from "node:crypto";
import { XPublisher } from "zeromq";
import { tcpEndpoint } from "../config/endpoint.js";
import type { ClientKeys } from "../curve/keys.js";
import { clientKeysFromEnv, curveClientOptions } from "../curve/keys.js";
import type { LogEntry } from "../wire/entry.js";
import { nowNs } from "../wire/entry.js";
import { encodeAicoMessage, encodeLogBatch, encodeLogEntry } from "../wire/encode.js";
import type { LogLevelName } from "../wire/level.js";
import { batchTopic, HOLD_TOPIC, sanitizeName } from "../wire/topic.js";
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
   * While a subscriber takes batches (the log consumer does), how long an entry may wait for others to go with it
   * in one message. Default 100 ms: a service logging 250 lines/s sends batches of about 25 instead of 25
   * messages, which is what the broker and the consumer pay for (100 instead of 50 ms: 1 µs a line less for the
   * consumer at 10,000 lines/s, 40 ms more at p99 into Loki, where the consumer's own batches wait up to 1 s).
   * 0: send at once, batching only what piles up.
   */
  batchWindowMs?: number;
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

/**
 * A batch (aixcl.batch.<subsystem>.<module>) holds at most this many entries and bytes of them: big enough that the
 * per-message costs of the bus vanish per entry, small enough to stay far below the broker's and the consumer's
 * max_message_bytes (1 MiB by default) and that ZeroMQ's queues, counted in messages, stay small in bytes. The Python client and the benchmark use the same.
 */
export const BATCH_LIMITS = { maxEntries: 1000, maxBytes: 32 * 1024, windowMs: 100 } as const;

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
  const batchWindowMs = options.batchWindowMs ?? BATCH_LIMITS.windowMs;
  const queue = new BoundedQueue<Frames>(options.maxBuffered ?? 10_000);
  const stats: LoggerStats = { published: 0, buffered: 0, dropped: { buffer_full: 0, closed: 0 } };

  // NODROP makes a full send queue wait instead of discarding, so every loss is ours and counted. IMMEDIATE
  // drops the pipe (and with it the subscriptions) while the broker is away, so entries wait in our bounded
  // queue rather than in a pipe to nowhere.
  const curve = options.curve ?? clientKeysFromEnv(process.env);
  const socket = new XPublisher({ noDrop: true, immediate: true, linger: closeTimeoutMs, ...(curve ? curveClientOptions(curve) : {}) });
  socket.connect(options.endpoint ?? defaultEndpoint(process.env));

  // Batches only in our own wire format: AICO's consumers know nothing of them.
  const batchTopicText = format === "aico" ? undefined : batchTopic(subsystem, module);
  const batchTopicFrame = batchTopicText === undefined ? undefined : Buffer.from(batchTopicText);
  const prefixes = new Set<string>();
  /** Someone takes our single entries (topic). */
  let wanted = false;
  /** Someone takes our batches (batchTopicText): the log consumer subscribes to them. */
  let batching = false;
  let pumping = false;
  let windowTimer: NodeJS.Timeout | undefined;
  let closing = false;
  let drained: (() => void) | undefined;

  /** The oldest entries as one batch: as many as are waiting, up to the batch limits (at least one). */
  const nextBatch = (): { frames: Frames; entries: Frames[] } => {
    const entries: Frames[] = [];
    let bytes = 0;
    for (let entry = queue.at(0); entry && entries.length < BATCH_LIMITS.maxEntries; entry = queue.at(entries.length)) {
      if (entries.length > 0 && bytes + entry[1].length > BATCH_LIMITS.maxBytes) break;
      entries.push(entry);
      bytes += entry[1].length;
    }
    return { frames: [batchTopicFrame as Buffer, encodeLogBatch(entries.map((e) => e[1]))], entries };
  };

  /**
   * Sends what waits: at once for single entries; for batches once the oldest waited batchWindowMs for company, or
   * a full batch is there. A pump under way takes what arrives meanwhile by itself.
   */
  const schedule = () => {
    if (pumping || !(wanted || batching)) return;
    if (!batching || closing || batchWindowMs === 0 || queue.size >= BATCH_LIMITS.maxEntries) {
      clearTimeout(windowTimer);
      windowTimer = undefined;
      void pump();
    } else {
      windowTimer ??= setTimeout(() => {
        windowTimer = undefined;
        void pump();
      }, batchWindowMs);
    }
  };

  const pump = async () => {
    if (pumping) return;
    pumping = true;
    try {
      while ((wanted || batching) && !socket.closed) {
        const oldest = queue.peek();
        if (!oldest) break;
        // One entry waiting goes as it is, unless only batches are taken; more than one go as a batch.
        const { frames, entries } = batching && (queue.size > 1 || !wanted) ? nextBatch() : { frames: oldest, entries: [oldest] };
        if (!(await sendOrWait(socket, frames))) continue;
        // While the send was under way, a full queue may have evicted some of these very entries.
        for (const entry of entries) if (queue.peek() === entry) queue.shift();
        stats.published += entries.length;
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
        const hold = prefixes.has(HOLD_TOPIC);
        wanted = !hold && [...prefixes].some((p) => topic.startsWith(p));
        batching = !hold && batchTopicText !== undefined && [...prefixes].some((p) => batchTopicText.startsWith(p));
        schedule();
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
    schedule();
  };

  return {
    debug: (m, e, c) => log("debug", m, e, c),
    info: (m, e, c) => log("info", m, e, c),
    warning: (m, e, c) => log("warning", m, e, c),
    error: (m, e, c) => log("error", m, e, c),
    critical: (m, e, c) => log("critical", m, e, c),
    log,
    get connected() {
      return wanted || batching;
    },
    stats: () => ({ ...stats, buffered: queue.size, dropped: { ...stats.dropped } }),
    async close() {
      closing = true;
      schedule();
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
