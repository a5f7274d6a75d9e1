/**
 * Tracks the distinct subscriptions the broker forwards upstream. ZeroMQ subscription messages are one frame:
 * 0x01 + prefix to subscribe, 0x00 + prefix to unsubscribe.
 */
export class SubscriptionSet {
  private readonly prefixes = new Set<string>();

  /** Applies one subscription message; returns false when it is not one. */
  apply(frame: Uint8Array): boolean {
    if (frame.length === 0 || (frame[0] !== 0 && frame[0] !== 1)) return false;
    const prefix = Buffer.from(frame.buffer, frame.byteOffset + 1, frame.length - 1).toString("utf8");
    if (frame[0] === 1) this.prefixes.add(prefix);
    else this.prefixes.delete(prefix);
    return true;
  }

  has(prefix: string): boolean {
    return this.prefixes.has(prefix);
  }

  values(): IterableIterator<string> {
    return this.prefixes.values();
  }

  get size(): number {
    return this.prefixes.size;
  }
}
