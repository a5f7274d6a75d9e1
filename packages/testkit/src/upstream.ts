import { XSubscriber } from "zeromq";
import type { LogEntry } from "@aixcl/wire";
import { decodeLogBatch, decodeLogMessage } from "@aixcl/wire";

/**
 * A ZeroMQ XSUB standing where the broker's is, for testing loggers without one: the subscriptions it sends
 * upstream are what the logger sees, and every message it receives is what the logger sent.
 */
export interface Upstream {
  endpoint: string;
  subscribe(prefix: string, on?: boolean): Promise<void>;
  /** Messages received so far: topic and the entries they carry (a decode error as an entry whose message says so). */
  messages: { topic: string; entries: LogEntry[] }[];
  /** Payload size of each message, in the order of messages. */
  payloadBytes: number[];
  close(): void;
}

/** `maxMessageSize`: ZeroMQ's, as the broker sets it from max_message_bytes (default: no limit). */
export async function startUpstream(options: { maxMessageSize?: number } = {}): Promise<Upstream> {
  const socket = new XSubscriber({ linger: 0, ...(options.maxMessageSize ? { maxMessageSize: options.maxMessageSize } : {}) });
  await socket.bind("tcp://127.0.0.1:*");
  const messages: Upstream["messages"] = [];
  const payloadBytes: number[] = [];
  const failed = (reason: string) => ({ message: `error ${reason}` }) as LogEntry;
  void (async () => {
    for await (const frames of socket) {
      const topic = frames[0]?.toString() ?? "";
      const entries: LogEntry[] = [];
      if (topic.startsWith("aixcl.batch.")) decodeLogBatch(frames, (e) => entries.push(e), (reason) => entries.push(failed(reason)));
      else {
        const r = decodeLogMessage(frames);
        entries.push(r.ok ? r.entry : failed(r.reason));
      }
      messages.push({ topic, entries });
      payloadBytes.push(frames[1]?.length ?? 0);
    }
  })().catch(() => undefined);
  return {
    endpoint: socket.lastEndpoint ?? "",
    subscribe: (prefix, on = true) => socket.send(Buffer.concat([Buffer.from([on ? 1 : 0]), Buffer.from(prefix)])),
    messages,
    payloadBytes,
    close: () => socket.close(),
  };
}

/** Polls `check` every 5 ms until it holds; fails saying what it waited for. */
export async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
