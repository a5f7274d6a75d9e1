import { describe, expect, it } from "vitest";
import { BoundedQueue } from "../src/index.js";

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
