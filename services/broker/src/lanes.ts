import { BATCH_TOPIC_PREFIX, isBatchTopic } from "@aixcl/wire";

/**
 * The log topic families the broker holds apart when no subscriber takes them: ours, `logs.<subsystem>.<module>`
 * ("dot"), AICO's, `logs/<subsystem>/<module>/v1` ("slash"), and our clients' batches,
 * `aixcl.batch.<subsystem>.<module>` ("batch"). A consumer usually takes all three; a deployment whose only log
 * subscriber takes one style must not see another's backlog stall it.
 */
export const LANES = ["dot", "slash", "batch"] as const;
export type LaneName = (typeof LANES)[number];
/** Index into LANES. */
export type Lane = 0 | 1 | 2;
export const LANE_INDEXES: readonly Lane[] = [0, 1, 2];

/** The prefix that takes a whole lane: a subscription that is a prefix of it (`logs.`, `logs`, ``) gets every message of the lane. */
export const LANE_PREFIXES: readonly [string, string, string] = ["logs.", "logs/", BATCH_TOPIC_PREFIX];

/**
 * The lanes the broker subscribes to itself, for good, so that every publisher sends them whether or not a consumer
 * is there (AICO's plain PUB sockets included). Not batches: our clients send those only while a subscriber asks
 * for them, and otherwise single entries, which the broker then holds.
 */
export const ALWAYS_TAKEN: readonly Lane[] = [0, 1];

/** The lane of a log topic, or -1 for any other topic; compared on bytes, as it runs for every message. */
export function laneOf(topic: Uint8Array): Lane | -1 {
  if (topic.length >= 5 && topic[0] === 0x6c && topic[1] === 0x6f && topic[2] === 0x67 && topic[3] === 0x73) {
    return topic[4] === 0x2e ? 0 : topic[4] === 0x2f ? 1 : -1;
  }
  return isBatchTopic(topic) ? 2 : -1;
}
