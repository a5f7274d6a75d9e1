import { HOLD_TOPIC } from "@aixcl/wire";
import { LANE_INDEXES, LANE_PREFIXES } from "./lanes.js";
import type { Lane } from "./lanes.js";

/**
 * The distinct subscriptions of the broker's subscribers, as its XPUB reports them: one frame, 0x01 + prefix to
 * subscribe, 0x00 + prefix to unsubscribe, sent when the first subscriber takes a prefix and when the last one
 * leaves it. From them: whether some subscriber takes each whole log lane, and whether a leaving subscriber asks
 * publishers to hold (HOLD_TOPIC).
 */
export class SubscriptionSet {
  private readonly prefixes = new Set<string>();
  private readonly taken: [boolean, boolean, boolean] = [false, false, false];
  private hold = false;

  /** Applies one subscription message; returns false when it is not one. */
  apply(frame: Uint8Array): boolean {
    if (frame.length === 0 || (frame[0] !== 0 && frame[0] !== 1)) return false;
    const prefix = Buffer.from(frame.buffer, frame.byteOffset + 1, frame.length - 1).toString("utf8");
    if (frame[0] === 1) this.prefixes.add(prefix);
    else this.prefixes.delete(prefix);
    for (const lane of LANE_INDEXES) this.taken[lane] = [...this.prefixes].some((p) => LANE_PREFIXES[lane].startsWith(p));
    this.hold = this.prefixes.has(HOLD_TOPIC);
    return true;
  }

  has(prefix: string): boolean {
    return this.prefixes.has(prefix);
  }

  /** Some subscriber takes every message of the lane, and none asks publishers to hold. */
  delivers(lane: Lane): boolean {
    return this.taken[lane] && !this.hold;
  }

  values(): IterableIterator<string> {
    return this.prefixes.values();
  }

  get size(): number {
    return this.prefixes.size;
  }
}
