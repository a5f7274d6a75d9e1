/** FIFO with a fixed capacity; pushing onto a full queue evicts the oldest item. O(1) push and shift. */
export class BoundedQueue<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a whole number >= 1, got ${capacity}`);
    this.items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Returns true when the oldest item had to be evicted to make room. */
  push(item: T): boolean {
    const evicted = this.count === this.capacity;
    if (evicted) this.shift();
    this.items[(this.head + this.count) % this.capacity] = item;
    this.count++;
    return evicted;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** The item `index` places after the oldest (0: the oldest), without removing it. */
  at(index: number): T | undefined {
    return index < 0 || index >= this.count ? undefined : this.items[(this.head + index) % this.capacity];
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return item;
  }

  clear(): void {
    this.items.fill(undefined);
    this.head = 0;
    this.count = 0;
  }
}

/**
 * The logger's queue: entries waiting for the bus, bounded in entries and in bytes, the oldest evicted first. A send
 * takes the oldest entries and is then settled; an entry evicted while its send is under way is counted by how that
 * send ends, so that every entry is counted exactly once, as sent or as evicted.
 */
export class SendQueue<T> {
  private readonly entries: BoundedQueue<{ item: T; bytes: number }>;
  private queuedBytes = 0;
  /** How many of the oldest entries the send under way carries, and how many of those were evicted meanwhile. */
  private taken = 0;
  private takenEvicted = 0;
  /** Entries handed to the socket. */
  sent = 0;
  /** Entries evicted to make room, unsent. */
  evicted = 0;

  constructor(
    maxEntries: number,
    readonly maxBytes: number,
  ) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`maxBytes must be a whole number >= 1, got ${maxBytes}`);
    this.entries = new BoundedQueue(maxEntries);
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.queuedBytes;
  }

  /** Queues an entry of `bytes` bytes, evicting the oldest until both bounds hold (an entry above maxBytes stays alone). */
  push(item: T, bytes: number): void {
    while (this.entries.size > 0 && (this.entries.size >= this.entries.capacity || this.queuedBytes + bytes > this.maxBytes)) {
      const oldest = this.entries.shift() as { bytes: number };
      this.queuedBytes -= oldest.bytes;
      if (this.taken > 0) {
        this.taken--;
        this.takenEvicted++;
      } else this.evicted++;
    }
    this.entries.push({ item, bytes });
    this.queuedBytes += bytes;
  }

  /**
   * The oldest entries for one send: at most `maxEntries`, and beyond the first at most `maxBytes` of them, and only
   * as long as `together` says the next may go with the first. They stay queued until settle(); one send at a time.
   */
  take(maxEntries: number, maxBytes: number, together: (first: T, next: T) => boolean = () => true): T[] {
    if (this.taken + this.takenEvicted > 0) throw new Error("take() while a send is under way: settle() it first");
    const out: T[] = [];
    let bytes = 0;
    for (let next = this.entries.at(0); next && out.length < maxEntries; next = this.entries.at(out.length)) {
      if (out.length > 0 && (bytes + next.bytes > maxBytes || !together(out[0] as T, next.item))) break;
      out.push(next.item);
      bytes += next.bytes;
    }
    this.taken = out.length;
    return out;
  }

  /** Ends the send under way: sent, its entries leave the queue (those evicted meanwhile went too); not sent, they stay queued, and those evicted meanwhile are lost. */
  settle(sent: boolean): void {
    if (sent) {
      this.sent += this.taken + this.takenEvicted;
      for (; this.taken > 0; this.taken--) this.queuedBytes -= (this.entries.shift() as { bytes: number }).bytes;
    } else this.evicted += this.takenEvicted;
    this.taken = 0;
    this.takenEvicted = 0;
  }

  /** Empties the queue, returning how many entries it held; not while a send is under way. */
  clear(): number {
    if (this.taken + this.takenEvicted > 0) throw new Error("clear() while a send is under way: settle() it first");
    const count = this.entries.size;
    this.entries.clear();
    this.queuedBytes = 0;
    return count;
  }
}
