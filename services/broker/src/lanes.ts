/**
 * The two log topic styles, each held apart when no subscriber takes it: ours, `logs.<subsystem>.<module>`
 * ("dot"), and AICO's, `logs/<subsystem>/<module>/v1` ("slash"). A consumer usually takes both; a deployment
 * whose only log subscriber takes one style must not see the other's backlog stall it.
 */
export const LANES = ["dot", "slash"] as const;
export type LaneName = (typeof LANES)[number];
/** Index into LANES. */
export type Lane = 0 | 1;

/** The prefix that takes a whole lane: a subscription that is a prefix of it (`logs.`, `logs`, ``) gets every message of the lane. */
export const LANE_PREFIXES: readonly [string, string] = ["logs.", "logs/"];

/** The lane of a log topic, or -1 for any other topic; compared on bytes, as it runs for every message. */
export function laneOf(topic: Uint8Array): Lane | -1 {
  if (topic.length < 5 || topic[0] !== 0x6c || topic[1] !== 0x6f || topic[2] !== 0x67 || topic[3] !== 0x73) return -1;
  return topic[4] === 0x2e ? 0 : topic[4] === 0x2f ? 1 : -1;
}
