/** Longest subsystem or module name kept; longer wire values are cut so topics and labels stay bounded. */
export const MAX_NAME_LENGTH = 64;

/** What a name becomes when nothing usable is left after sanitizing. */
export const UNKNOWN_NAME = "unknown";

const UNSAFE = /[^a-z0-9_-]+/g;

/**
 * Lower-cases, turns every run of characters outside [a-z0-9_-] into `_` (AICO maps spaces the same way),
 * and bounds the length, so a name is safe as a topic segment and as a Loki label value.
 */
export function sanitizeName(raw: string): string {
  const cleaned = raw.toLowerCase().replace(UNSAFE, "_").slice(0, MAX_NAME_LENGTH);
  return cleaned === "" || cleaned === "_" ? UNKNOWN_NAME : cleaned;
}

/**
 * A subscription no publisher sends on. A subscriber that is about to leave subscribes to it first: loggers made
 * by createLogger hold their entries while anyone subscribes to it, so the leaving subscriber can read everything
 * already on its way before it unsubscribes, and nothing is sent into the gap between the broker forgetting its
 * subscription and the publishers hearing of that. Subscriptions travel upstream through the broker like any other.
 */
export const HOLD_TOPIC = "aixcl.hold";

/**
 * Where our own clients publish several entries in one message (proto/aixcl/bus/log_batch.proto), while some
 * subscriber asks for it. Outside `logs.` and `logs/`, so that no AICO subscriber receives a payload it cannot
 * decode; the topic's remainder is `<subsystem>.<module>`, as in `logs.<subsystem>.<module>`.
 */
export const BATCH_TOPIC_PREFIX = "aixcl.batch.";

/** The batch topic of a client that publishes singles on logs.<subsystem>.<module>. */
export function batchTopic(subsystem: string, module: string): string {
  return `${BATCH_TOPIC_PREFIX}${sanitizeName(subsystem)}.${sanitizeName(module)}`;
}

/** True when the topic frame starts with BATCH_TOPIC_PREFIX; compared on bytes, as it runs for every message. */
export function isBatchTopic(topic: Uint8Array): boolean {
  if (topic.length <= BATCH_TOPIC_BYTES.length) return false;
  for (let i = 0; i < BATCH_TOPIC_BYTES.length; i++) if (topic[i] !== BATCH_TOPIC_BYTES[i]) return false;
  return true;
}
const BATCH_TOPIC_BYTES = Buffer.from(BATCH_TOPIC_PREFIX);

export type TopicStyle = "dot" | "slash";

export interface LogTopic {
  style: TopicStyle;
  subsystem: string;
  module: string;
}

/** Topic our own clients publish on: the document's `logs.<subsystem>.<module>`. */
export function logTopic(subsystem: string, module: string): string {
  return `logs.${sanitizeName(subsystem)}.${sanitizeName(module)}`;
}

/** Topic of a client in AICO's wire format, as AICO's own producers publish: `logs/<subsystem>/<module>/v1`. */
export function aicoTopic(subsystem: string, module: string): string {
  return `logs/${sanitizeName(subsystem)}/${sanitizeName(module)}/v1`;
}

/**
 * Parses both topic styles found in the wild: ours, `logs.<subsystem>.<module>`, and AICO's,
 * `logs/<subsystem>/<module>/v1`. Missing parts become "unknown"; names come back sanitized.
 * Returns undefined when the topic is not a log topic at all.
 */
export function parseLogTopic(topic: string): LogTopic | undefined {
  let style: TopicStyle;
  let parts: string[];
  if (topic.startsWith("logs.")) {
    style = "dot";
    parts = topic.slice(5).split(".");
  } else if (topic.startsWith("logs/")) {
    style = "slash";
    parts = topic.slice(5).split("/");
    if (parts.length > 2 && /^v\d+$/.test(parts[parts.length - 1] ?? "")) parts.pop();
  } else {
    return undefined;
  }
  const [subsystem = "", ...rest] = parts;
  return { style, subsystem: sanitizeName(subsystem), module: sanitizeName(rest.join("_")) };
}
