import { afterEach, describe, expect, it } from "vitest";
import type { ReceivingSocket } from "../src/index.js";
import { receiveEach } from "../src/index.js";

/** A socket's receive side as zeromq.js behaves: a receive waits, unless the timeout is 0, which answers EAGAIN. */
class QueueSocket implements ReceivingSocket {
  receiveTimeout = -1;
  closed = false;
  private readonly queue: Buffer[][] = [];
  private waiter: { resolve: (frames: Buffer[]) => void; reject: (error: Error) => void } | undefined;

  constructor(readonly receiveHighWaterMark: number) {}

  get readable(): boolean {
    return this.queue.length > 0;
  }

  receive(): Promise<Buffer[]> {
    const next = this.queue.shift();
    if (next) return Promise.resolve(next);
    if (this.receiveTimeout === 0) return Promise.reject(Object.assign(new Error("Socket temporarily unavailable"), { code: "EAGAIN" }));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  deliver(count: number): void {
    for (let i = 0; i < count; i++) {
      const frames = [Buffer.from("logs.s.m"), Buffer.from(String(i))];
      const waiter = this.waiter;
      this.waiter = undefined;
      if (waiter) waiter.resolve(frames);
      else this.queue.push(frames);
    }
  }

  close(): void {
    this.closed = true;
    this.waiter?.reject(new Error("closed"));
  }
}

const sockets: QueueSocket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

async function until(check: () => boolean, ms: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return Date.now() - started;
}

describe("receiveEach", () => {
  const NAP_MS = 400;

  async function readAfterBurst(highWaterMark: number, burst: number): Promise<number> {
    const socket = new QueueSocket(highWaterMark);
    sockets.push(socket);
    let handled = 0;
    socket.deliver(burst);
    void receiveEach(socket, () => {
      handled++;
    }, { coalesceMs: NAP_MS });
    await until(() => handled === burst, 1000);
    socket.deliver(1);
    return until(() => handled === burst + 1, 2000);
  }

  it("naps after a burst that emptied a mostly empty queue, so a trickle is read in bursts", async () => {
    expect(await readAfterBurst(1000, 3)).toBeGreaterThanOrEqual(NAP_MS - 50);
  });

  it("reads on at once after a burst that found the queue half full: senders are held back by the high-water mark", async () => {
    expect(await readAfterBurst(10, 6)).toBeLessThan(NAP_MS / 2);
  });
});
