import { describe, expect, it } from "vitest";
import { BoundedQueue, SendQueue } from "../src/index.js";

describe("BoundedQueue", () => {
  it("is FIFO and evicts the oldest item when full", () => {
    const q = new BoundedQueue<number>(3);
    expect([q.push(1), q.push(2), q.push(3)]).toEqual([false, false, false]);
    expect(q.push(4)).toBe(true);
    expect([q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([2, 3, 4, undefined]);
    expect(q.size).toBe(0);
  });

  it("wraps around many times without losing order", () => {
    const q = new BoundedQueue<number>(5);
    const out: number[] = [];
    for (let i = 0; i < 1000; i++) {
      q.push(i);
      if (i % 2 === 1) out.push(q.shift() as number, q.shift() as number);
    }
    expect(out).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it("peek shows the head without removing it", () => {
    const q = new BoundedQueue<string>(2);
    expect(q.peek()).toBeUndefined();
    q.push("a");
    q.push("b");
    expect([q.peek(), q.size]).toEqual(["a", 2]);
    q.push("c");
    expect(q.peek()).toBe("b");
  });

  it("rejects a capacity below 1", () => {
    expect(() => new BoundedQueue(0)).toThrow(/capacity/);
  });
});

describe("SendQueue", () => {
  /** Every entry pushed is counted once: sent, evicted, or still queued. */
  const counted = (q: SendQueue<unknown>) => q.sent + q.evicted + q.size;

  it("is bounded in bytes as well as entries: the oldest go first, counted", () => {
    const q = new SendQueue<string>(100, 1000);
    for (let i = 0; i < 10; i++) q.push(`e${i}`, 300);
    expect([q.size, q.bytes, q.evicted]).toEqual([3, 900, 7]);
    expect(q.take(10, 10_000)).toEqual(["e7", "e8", "e9"]);
    q.settle(true);
    expect([q.size, q.bytes, q.sent, counted(q)]).toEqual([0, 0, 3, 10]);
  });

  it("is bounded in entries", () => {
    const q = new SendQueue<number>(3, 1_000_000);
    for (let i = 0; i < 5; i++) q.push(i, 1);
    expect([q.size, q.evicted, q.take(10, 100)]).toEqual([3, 2, [2, 3, 4]]);
  });

  it("takes up to maxEntries and, beyond the first, maxBytes", () => {
    const q = new SendQueue<string>(100, 10_000);
    q.push("big", 5000);
    q.push("a", 10);
    expect(q.take(10, 100)).toEqual(["big"]);
    q.settle(true);
    q.push("b", 10);
    q.push("c", 10);
    expect(q.take(2, 100)).toEqual(["a", "b"]);
  });

  it("take() stops at the first entry that may not go with the first one taken", () => {
    const q = new SendQueue<string>(10, 1000);
    for (const item of ["a1", "a2", "b1", "a3"]) q.push(item, 10);
    const sameLetter = (first: string, next: string) => first[0] === next[0];
    expect(q.take(10, 1000, sameLetter)).toEqual(["a1", "a2"]);
    q.settle(true);
    expect(q.take(10, 1000, sameLetter)).toEqual(["b1"]);
  });

  it("an entry evicted while its send is under way counts as sent once the send succeeds, not as evicted too", () => {
    const q = new SendQueue<number>(2, 1000);
    q.push(1, 10);
    q.push(2, 10);
    expect(q.take(2, 1000)).toEqual([1, 2]);
    q.push(3, 10); // evicts 1, which is being sent
    q.push(4, 10); // evicts 2
    q.settle(true);
    expect([q.sent, q.evicted, q.size, q.take(5, 1000)]).toEqual([2, 0, 2, [3, 4]]);
    expect(counted(q)).toBe(4);
  });

  it("an entry evicted while its send is under way counts as evicted once the send fails; the rest stay queued", () => {
    const q = new SendQueue<number>(3, 1000);
    for (const i of [1, 2, 3]) q.push(i, 10);
    expect(q.take(2, 1000)).toEqual([1, 2]);
    q.push(4, 10); // evicts 1
    q.settle(false);
    expect([q.sent, q.evicted, q.size, q.bytes]).toEqual([0, 1, 3, 30]);
    expect(q.take(5, 1000)).toEqual([2, 3, 4]);
    q.settle(true);
    expect([q.sent, q.evicted, q.size, counted(q)]).toEqual([3, 1, 0, 4]);
  });

  it("clear() returns how many it held, and refuses while a send is under way", () => {
    const q = new SendQueue<number>(5, 1000);
    q.push(1, 10);
    q.push(2, 10);
    q.take(1, 1000);
    expect(() => q.clear()).toThrow(/settle/);
    q.settle(false);
    expect([q.clear(), q.size, q.bytes]).toEqual([2, 0, 0]);
  });
});
