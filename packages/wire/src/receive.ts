/** A socket messages are received from (Subscriber, XSubscriber). */
export interface ReceivingSocket {
  receive(): Promise<Buffer[]>;
  receiveTimeout: number;
  readonly receiveHighWaterMark: number;
  readonly readable: boolean;
  readonly closed: boolean;
}

export interface ReceiveOptions {
  /** Messages handled between two turns of the event loop, so timers and HTTP keep running under a flood. */
  burst?: number;
  /**
   * After the queue ran empty, wait this long before waiting for the next message, so that a steady stream is
   * read in bursts rather than with one wake-up of the event loop per message. Adds at most this much latency.
   */
  coalesceMs?: number;
  /**
   * When the promise `onMessage` returned rejects: handles the failure (the message is given again), so that
   * `onMessage` can return a send's own promise instead of wrapping each one. Without it, receiveEach rejects.
   */
  onRejected?: (error: unknown, frames: Buffer[]) => void | Promise<void>;
}

const DEFAULTS = { burst: 1000, coalesceMs: 5 };

function isEagain(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === "EAGAIN";
}

/**
 * Hands every message the socket receives to `onMessage`, until the socket is closed; rejects if receiving fails
 * otherwise. Same outcome as `for await (const frames of socket)`, at a fraction of the cost per message. When
 * `onMessage` returns a promise (the broker's send), the next message is read once it settles.
 *
 * Why: each wake-up of the event loop for a message costs far more than reading it (here ~20-40 µs against ~7),
 * and zeromq.js' receive() asks libzmq for the socket's events (ZMQ_EVENTS, which can cost a poll(2) system
 * call) before each read unless the receive timeout is 0. So messages are read in bursts: when a waiting receive
 * returns and more are queued, they are read with the timeout at 0 -- straight to zmq_msg_recv -- until the queue
 * is empty (one EAGAIN, an exception, per burst) or `burst` messages were handled; then, the queue being empty,
 * the loop waits `coalesceMs` for more to gather -- unless the burst found the queue half full or more: then the
 * senders are being held back by the high-water mark, and a nap would cap the rate at a queue per nap. Between
 * those naps a receive is always pending, which is also
 * what lets zeromq.js process libzmq's internal commands (reconnects, subscriptions).
 */
export async function receiveEach(socket: ReceivingSocket, onMessage: (frames: Buffer[]) => void | Promise<void>, options: ReceiveOptions = {}): Promise<void> {
  const { burst, coalesceMs, onRejected } = { ...DEFAULTS, ...options };

  const waitTimeout = socket.receiveTimeout;
  // A burst this long found the queue half full or more (0: no high-water mark, never).
  const heldBurst = socket.receiveHighWaterMark > 0 ? socket.receiveHighWaterMark / 2 : Number.POSITIVE_INFINITY;
  while (!socket.closed) {
    let frames: Buffer[];
    try {
      frames = await socket.receive();
    } catch (error) {
      if (socket.closed) return;
      throw error;
    }
    const first = onMessage(frames);
    // Awaited here, not in a helper: a helper would cost a promise per message.
    if (first) {
      try {
        await first;
      } catch (error) {
        if (!onRejected) throw error;
        await onRejected(error, frames);
      }
    }
    let drained = true;
    let handled = 1;
    if (!socket.closed && socket.readable) {
      drained = false;
      socket.receiveTimeout = 0;
      try {
        for (; handled < burst && !socket.closed; handled++) {
          try {
            frames = await socket.receive();
          } catch (error) {
            if (isEagain(error) || socket.closed) {
              drained = true;
              break;
            }
            throw error;
          }
          const pending = onMessage(frames);
          if (pending) {
            try {
              await pending;
            } catch (error) {
              if (!onRejected) throw error;
              await onRejected(error, frames);
            }
          }
        }
      } finally {
        if (!socket.closed) socket.receiveTimeout = waitTimeout;
      }
    }
    // Queue empty: let more gather. A full burst: just let timers and I/O run before reading on.
    if (drained && coalesceMs > 0 && handled < heldBurst) await new Promise((resolve) => setTimeout(resolve, coalesceMs));
    else if (!drained) await new Promise((resolve) => setImmediate(resolve));
  }
}

export interface QuietOptions {
  /** How long without a message counts as quiet. Default 100 ms. */
  quietMs?: number;
  /** Give up waiting after this long. Default 1000 ms. */
  maxMs?: number;
  /**
   * Whether a message waits to be read (the socket's `readable`). While one does it is not quiet, however long ago
   * the last one was read: a process held off the CPU wakes to its timers before its receive loop, and would
   * otherwise call the bus quiet with messages still queued, and lose them when it closes the socket.
   */
  pending?: () => boolean;
}

/**
 * Waits until no message has arrived for `quietMs` (counting from the call) or `maxMs` passed; `quiet` tells which.
 * At a stop, after asking publishers to hold (HOLD_TOPIC), this is how long to keep reading what they sent before
 * they heard of it.
 */
export async function untilQuiet(lastMessageAtMs: () => number, options: QuietOptions = {}): Promise<{ quiet: boolean; ms: number }> {
  const { quietMs = 100, maxMs = 1000, pending = () => false } = options;
  const started = Date.now();
  const isQuiet = () => Date.now() - Math.max(lastMessageAtMs(), started) >= quietMs && !pending();
  while (!isQuiet() && Date.now() - started < maxMs) await new Promise((resolve) => setTimeout(resolve, 10));
  return { quiet: isQuiet(), ms: Date.now() - started };
}
