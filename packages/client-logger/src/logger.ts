import { randomUUID } from "node:crypto";
import { XPublisher } from "zeromq";
import type { LogEntry, LogLevelName } from "@aixcl/wire";
import { aicoTopic, BATCH_TOPIC_PREFIX, batchTopic, encodeAicoMessage, encodeLogBatch, encodeLogEntry, HOLD_TOPIC, logTopic, nowNs, sanitizeName, tcpEndpoint, varintSize } from "@aixcl/wire";
import type { ClientKeys } from "./keys.js";
import { clientKeysFromEnv, curveClientOptions } from "./keys.js";
import { LogThrottle } from "./throttle.js";
import { extraTexts } from "./extra.js";
import { fitEntry, MAX_MESSAGE_BYTES } from "./fit.js";
import { SendQueue } from "./queue.js";

export interface LoggerOptions {
  subsystem: string;
  /**
   * The module of every entry. Leave it out for one logger for a whole application: each entry then names its own
   * (LogContext.module), DEFAULT_MODULE when it does not.
   */
  module?: string;
  /** The broker's publisher endpoint. Default: tcp://$MESSAGE_BUS_HOST:$MESSAGE_BUS_PUB_PORT, else tcp://127.0.0.1:5555. */
  endpoint?: string;
  /** Entries held while nobody on the bus subscribes to them (broker down, restarting or not yet connected; a subscriber stopping). Default 10000; the oldest go first. */
  maxBuffered?: number;
  /** The same bound in bytes of encoded entries. Default 16 MiB; at least maxMessageBytes. */
  maxBufferedBytes?: number;
  /**
   * The bus' max_message_bytes (config/message_bus.yaml): the broker drops the connection of a publisher that sends
   * more, losing what was on its way. An entry that would make a larger message has its longest texts cut, marked
   * "[truncated by aixcl-logging from N bytes]", and is dropped only when that cannot make it fit; both are counted
   * and said on stderr, at most once per 10 s. Default 1 MiB, the broker's default; at least 1 KiB.
   */
  maxMessageBytes?: number;
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
  /** This entry's module, for a logger created without LoggerOptions.module (ignored by one with it). Default: DEFAULT_MODULE. */
  module?: string;
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

/** Every entry logged is counted once: published, buffered or dropped. */
export interface LoggerStats {
  /** Entries handed to the socket. */
  published: number;
  /** Entries waiting for a subscriber. */
  buffered: number;
  /** Entries whose longest texts were cut to fit maxMessageBytes (and counted as published, buffered or dropped too). */
  truncated: number;
  /**
   * Entries lost, by reason: "buffer_full" (oldest dropped while the bus was unreachable, past maxBuffered or
   * maxBufferedBytes), "closed" (logged after close, or still held when close timed out), "too_large" (over
   * maxMessageBytes even with its texts cut), "unencodable" (values outside the types, such as a number for
   * timestampNs from JavaScript, which the encoder, running after the call, cannot write; said on stderr).
   */
  dropped: { buffer_full: number; closed: number; too_large: number; unencodable: number };
}

export interface Logger {
  debug(message: string, extra?: Extra, context?: LogContext): void;
  info(message: string, extra?: Extra, context?: LogContext): void;
  warning(message: string, extra?: Extra, context?: LogContext): void;
  error(message: string, extra?: Extra, context?: LogContext): void;
  critical(message: string, extra?: Extra, context?: LogContext): void;
  log(level: LogLevelName, message: string, extra?: Extra, context?: LogContext): void;
  /**
   * True while entries are being delivered: the bus has a subscriber for this logger's topics and no subscriber
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

type Frames = [Buffer, Uint8Array];

/** Where one module's entries go: their topic, the topic of batches of them, and the largest entry that fits a message. */
interface Route {
  module: string;
  topic: string;
  topicFrame: Buffer;
  batchTopicFrame: Buffer | undefined;
  maxPayloadBytes: number;
}

/** An entry waiting for the bus; a batch carries entries of one module only, as its topic names one. */
interface Queued {
  frames: Frames;
  route: Route;
}

/**
 * A batch (aixcl.batch.<subsystem>.<module>) holds at most this many entries and bytes of them: big enough that the
 * per-message costs of the bus vanish per entry, small enough to stay far below the broker's and the consumer's
 * max_message_bytes (1 MiB by default) and that ZeroMQ's queues, counted in messages, stay small in bytes. The Python client and the benchmark use the same.
 */
export const BATCH_LIMITS = { maxEntries: 1000, maxBytes: 32 * 1024, windowMs: 100 } as const;

/**
 * The largest payload an entry on `topic` can have within the bus' max_message_bytes. With a batch topic, the largest
 * message it can travel in is alone in a batch (whose topic is longer than the entry's own), behind a tag and a
 * length; without one (AICO's format), as it is beside its topic.
 */
export function maxPayloadBytes(maxMessageBytes: number, topic: string, batchTopic: string | undefined): number {
  return maxMessageBytes - (batchTopic === undefined ? Buffer.byteLength(topic) : Buffer.byteLength(batchTopic) + 1 + varintSize(maxMessageBytes));
}

/** The module of an entry that names none, from a logger created without LoggerOptions.module. */
export const DEFAULT_MODULE = "main";

/** Distinct modules whose topics a logger keeps at hand; past it the cache starts over (names are unbounded input). */
const MODULE_CACHE_LIMIT = 1000;

/** Default of LoggerOptions.maxBufferedBytes: the 10,000 entries of maxBuffered at up to 1.6 KiB each. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/**
 * Entries logged and not yet encoded, at most: the call that finds this many encodes them itself, so that a caller
 * logging in a loop that never yields holds no unbounded list outside maxBufferedBytes. The Python client's
 * INTAKE_LIMIT.
 */
const ENCODE_LIMIT = 256;

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
 * Creates an application logger that publishes LogEntry messages to the broker. Logging never blocks: a call
 * captures its entry; a microtask, once the caller's synchronous work is done, encodes and queues what was
 * logged, and a background pump hands it to the socket. The socket is an XPUB, so the
 * logger sees the bus' subscriptions: while no subscriber wants its topic (broker down, consumer not yet
 * connected) or a subscriber is leaving (HOLD_TOPIC), it holds entries in a bounded queue instead of letting
 * ZeroMQ drop them unseen.
 */
export function createLogger(options: LoggerOptions): Logger {
  const subsystem = sanitizeName(options.subsystem);
  const format = options.format ?? "aixcl";
  const closeTimeoutMs = options.closeTimeoutMs ?? 2000;
  const batchWindowMs = options.batchWindowMs ?? BATCH_LIMITS.windowMs;
  const maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 1024) {
    throw new RangeError(`maxMessageBytes must be a whole number of at least 1024 (the bus' max_message_bytes), got ${maxMessageBytes}`);
  }
  const maxBufferedBytes = options.maxBufferedBytes ?? MAX_BUFFERED_BYTES;
  if (!(maxBufferedBytes >= maxMessageBytes)) {
    throw new RangeError(`maxBufferedBytes (${maxBufferedBytes}) must be at least maxMessageBytes (${maxMessageBytes}), or the largest entries could never be held`);
  }
  const queue = new SendQueue<Queued>(options.maxBuffered ?? 10_000, maxBufferedBytes);
  const stats = { truncated: 0, closed: 0, tooLarge: 0, unencodable: 0 };
  const currentStats = (): LoggerStats => ({
    published: queue.sent,
    buffered: queue.size,
    truncated: stats.truncated,
    dropped: { buffer_full: queue.evicted, closed: stats.closed, too_large: stats.tooLarge, unencodable: stats.unencodable },
  });

  // NODROP makes a full send queue wait instead of discarding, so every loss is ours and counted. IMMEDIATE
  // drops the pipe (and with it the subscriptions) while the broker is away, so entries wait in our bounded
  // queue rather than in a pipe to nowhere.
  const curve = options.curve ?? clientKeysFromEnv(process.env);
  const socket = new XPublisher({ noDrop: true, immediate: true, linger: closeTimeoutMs, ...(curve ? curveClientOptions(curve) : {}) });
  socket.connect(options.endpoint ?? defaultEndpoint(process.env));

  // By the name as given, so that a module named on every call is sanitized once.
  const routes = new Map<string, Route>();
  const route = (name: string): Route => {
    let found = routes.get(name);
    if (!found) {
      const module = sanitizeName(name);
      const topic = format === "aico" ? aicoTopic(subsystem, module) : logTopic(subsystem, module);
      // Batches only in our own wire format: AICO's consumers know nothing of them.
      const batch = format === "aico" ? undefined : batchTopic(subsystem, module);
      const batchTopicFrame = batch === undefined ? undefined : Buffer.from(batch);
      found = { module, topic, topicFrame: Buffer.from(topic), batchTopicFrame, maxPayloadBytes: maxPayloadBytes(maxMessageBytes, topic, batch) };
      if (routes.size >= MODULE_CACHE_LIMIT) routes.clear();
      routes.set(name, found);
    }
    return found;
  };
  const fixedRoute = options.module === undefined ? undefined : route(options.module);
  // What a subscription must cover for the entries to be delivered: the logger's one topic, or, when each entry
  // names its module, every topic of the subsystem (a subscription to one module's topic would take the others'
  // entries from the queue into ZeroMQ, which drops them unseen).
  const covered = fixedRoute?.topic ?? (format === "aico" ? `logs/${subsystem}/` : `logs.${subsystem}.`);
  const batchTopicText = format === "aico" ? undefined : fixedRoute ? batchTopic(subsystem, fixedRoute.module) : `${BATCH_TOPIC_PREFIX}${subsystem}.`;
  const sameModule = (first: Queued, next: Queued) => first.route.module === next.route.module;
  const oversized = new LogThrottle<"truncated" | "dropped">();
  const prefixes = new Set<string>();
  /** Someone takes our single entries (covered). */
  let wanted = false;
  /** Someone takes our batches (batchTopicText): the log consumer subscribes to them. */
  let batching = false;
  let pumping = false;
  let windowTimer: NodeJS.Timeout | undefined;
  let closing = false;
  let drained: (() => void) | undefined;
  let pumpEnded: Promise<void> = Promise.resolve();

  /**
   * Sends what waits: at once for single entries; for batches once the oldest waited batchWindowMs for company, or
   * a full batch is there. A pump under way takes what arrives meanwhile by itself.
   */
  const schedule = () => {
    if (pumping || !(wanted || batching)) return;
    if (!batching || closing || batchWindowMs === 0 || queue.size >= BATCH_LIMITS.maxEntries) {
      clearTimeout(windowTimer);
      windowTimer = undefined;
      // Not on the caller's stack: a log call would otherwise pay for taking the entry and the socket's send
      // (about half of a call after a pause); a microtask sends once the caller's synchronous work is done.
      if (!kicked) {
        kicked = true;
        queueMicrotask(kick);
      }
    } else {
      windowTimer ??= setTimeout(() => {
        windowTimer = undefined;
        void pump();
      }, batchWindowMs);
    }
  };

  let kicked = false;
  const kick = () => {
    kicked = false;
    void pump();
  };

  const pump = async () => {
    if (pumping) return;
    pumping = true;
    let ended!: () => void;
    pumpEnded = new Promise((resolve) => (ended = resolve));
    try {
      while ((wanted || batching) && !socket.closed) {
        // One entry waiting goes as it is, unless only batches are taken; more than one go as a batch.
        const batch = batching && (queue.size > 1 || !wanted);
        const entries = queue.take(batch ? BATCH_LIMITS.maxEntries : 1, BATCH_LIMITS.maxBytes, sameModule);
        const first = entries[0];
        if (!first) break;
        const frames: Frames = batch ? [first.route.batchTopicFrame as Buffer, encodeLogBatch(entries.map((e) => e.frames[1]))] : first.frames;
        queue.settle(await sendOrWait(socket, frames));
      }
    } catch {
      // The socket was closed under us by close(), which counts what is left once this pump has ended.
      queue.settle(false);
    } finally {
      pumping = false;
      ended();
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
        wanted = !hold && [...prefixes].some((p) => covered.startsWith(p));
        batching = !hold && batchTopicText !== undefined && [...prefixes].some((p) => batchTopicText.startsWith(p));
        schedule();
      }
    } catch {
      // Ends when the socket closes.
    }
  })();

  /** A line on stderr at once, then at most one per 10 s saying how many since the last. */
  const reportOversized = (truncated: boolean) => {
    const since = oversized.note(Date.now(), { truncated: truncated ? 1 : 0, dropped: truncated ? 0 : 1 });
    if (!since) return;
    const entries = `${since.times} log ${since.times === 1 ? "entry" : "entries"}`;
    process.stderr.write(
      `@aixcl/logging (${covered}): ${entries} over maxMessageBytes (${maxMessageBytes} bytes, the bus' max_message_bytes) since the last such line: ` +
        `${since.truncated} sent with their longest texts cut ("truncated by aixcl-logging"), ${since.dropped} dropped (too large even so); ` +
        "log less per entry or raise both limits\n",
    );
  };

  let unencoded: { entry: LogEntry; to: Route }[] = [];
  let encodeScheduled = false;

  const log = (level: LogLevelName, message: string, extra?: Extra, context: LogContext = {}) => {
    if (closing) {
      stats.closed++;
      return;
    }
    const to = fixedRoute ?? route(context.module ?? DEFAULT_MODULE);
    const entry: LogEntry = {
      timestampNs: context.timestampNs ?? nowNs(),
      level,
      subsystem,
      module: to.module,
      function: context.function ?? "",
      message,
      topic: to.topic,
      // A copy: the caller's object may change before the entry is encoded.
      metadata: context.metadata === undefined ? {} : { ...context.metadata },
      filePath: context.filePath ?? "",
      lineNumber: context.lineNumber ?? 0,
      userUuid: context.userUuid ?? "",
      sessionId: context.sessionId ?? "",
      traceId: context.traceId ?? "",
      extra: extraTexts(extra),
    };
    unencoded.push({ entry, to });
    if (unencoded.length >= ENCODE_LIMIT) encodeWaiting();
    else if (!encodeScheduled) {
      encodeScheduled = true;
      queueMicrotask(encodeWaiting);
    }
  };

  /**
   * Encodes and queues, in order, what was logged since the last time. Not in the call: encoding is most of what a
   * call costs after a pause (2000 calls/s: 1.4 of 3.3 µs), and entries logged together are encoded together, on
   * warm code. stats() and close() run it first, so that counts and bounds are as if each call had queued its entry.
   */
  const encodeWaiting = () => {
    encodeScheduled = false;
    const waiting = unencoded;
    unencoded = [];
    for (const { entry, to } of waiting) {
      let encode: (e: LogEntry) => Buffer = encodeLogEntry;
      if (format === "aico") {
        const envelope = { messageId: randomUUID(), timestampNs: entry.timestampNs, source: subsystem };
        encode = (e) => encodeAicoMessage(e, envelope);
      }
      let fitted: ReturnType<typeof fitEntry>;
      try {
        fitted = fitEntry(entry, encode, to.maxPayloadBytes);
      } catch (error) {
        // The call that logged it has returned: an exception here would reach no caller but the process.
        stats.unencodable++;
        process.stderr.write(`@aixcl/logging (${to.topic}): a log entry could not be encoded, not sent: ${String(error)}\n`);
        continue;
      }
      if (!fitted || fitted.truncated) {
        if (fitted) stats.truncated++;
        else stats.tooLarge++;
        reportOversized(fitted !== undefined);
      }
      if (fitted) queue.push({ frames: [to.topicFrame, fitted.payload], route: to }, fitted.payload.length);
    }
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
    stats() {
      encodeWaiting();
      return currentStats();
    },
    async close() {
      closing = true;
      encodeWaiting();
      if (queue.size > 0 || pumping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, closeTimeoutMs);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      socket.close();
      await pumpEnded;
      stats.closed += queue.clear();
      return currentStats();
    },
  };
}
