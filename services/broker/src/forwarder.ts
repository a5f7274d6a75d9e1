import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import type { XPublisher, XSubscriber } from "zeromq";
import { receiveEach } from "@aixcl/wire";
import type { Backlog } from "./backlog.js";
import type { Lane } from "./lanes.js";
import { LANE_INDEXES, laneOf } from "./lanes.js";
import type { BrokerMetrics } from "./metrics.js";
import { DROP_REASONS } from "./metrics.js";
import type { SubscriptionSet } from "./subscriptions.js";

export interface ForwarderOptions {
  /** Wait for a subscriber that cannot take a message (back-pressure to the publishers) instead of passing it by. */
  noDrop: boolean;
  countMessages: boolean;
  /** Forwarding held messages failed for another reason than a full queue (the broker is then unhealthy). */
  onFailure(error: Error): void;
}

/** How long a send waits before trying again when a subscriber's queue is full (XPUB_NODROP answers EAGAIN there, and never says when it has room). */
const FULL_RETRY_MS = 1;
/**
 * How long the receive loop lets messages gather once the queue ran empty (receiveEach's default is 5 ms). Only a
 * message arriving within this long after the previous one waits, at most this long; a message on a quiet bus goes
 * at once. At 10,000 lines/s in batches, 20 ms instead of 5 cut the broker's CPU per line by a quarter (bench
 * loki-paced 7.0-9.1 -> 5.2-5.4 µs), mostly wake-ups of libzmq's I/O thread and of the event loop.
 */
const RECEIVE_COALESCE_MS = 20;
/** Held messages forwarded between two turns of the event loop, so receiving, timers and HTTP keep running. */
const FLUSH_BURST = 1000;

function isEagain(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === "EAGAIN";
}

/**
 * Forwards what publishers send (the frontend XSUB) to the subscribers (the backend XPUB), in JavaScript, because
 * only here can the broker see what libzmq's own proxy decides silently: that nobody takes a log message, and that
 * a subscriber's queue is full. Per message it classifies the topic on its bytes, counts it in plain numbers, and
 * either sends it (zeromq.js completes the send at once: the backend's send timeout is 0) or holds it.
 *
 * A log lane (logs., logs/ or aixcl.batch.) is live while some subscriber takes it whole and nothing of it is held; otherwise
 * its messages go to the backlog, in order, and the lane's flusher forwards them once a subscriber takes the lane,
 * waiting whenever the subscriber's queue is full. A live log message that meets a full queue (no_drop: false) is
 * held too, rather than lost: the lane then catches up through its backlog. Any other topic is never held; with
 * no_drop: false what a full subscriber cannot take is counted as dropped (subscriber_full), with no_drop: true
 * the broker waits, and the wait travels back to the publishers.
 */
export class Forwarder {
  /** Per lane: its messages are sent as they come (true) or held (false). */
  private readonly live: [boolean, boolean, boolean] = [false, false, false];
  private readonly flushing: [Promise<void> | undefined, Promise<void> | undefined, Promise<void> | undefined] = [undefined, undefined, undefined];
  private stopping = false;
  private running: Promise<void> | undefined;
  /** Messages received from publishers. */
  received = 0;
  private readonly droppedSubscriberFull;

  constructor(
    private readonly frontend: XSubscriber,
    private readonly backend: XPublisher,
    private readonly subscriptions: SubscriptionSet,
    private readonly backlog: Backlog,
    private readonly metrics: BrokerMetrics,
    private readonly options: ForwarderOptions,
  ) {
    this.droppedSubscriberFull = metrics.dropped.labels("other", DROP_REASONS.subscriberFull);
    // A backlog left by the previous run waits for a subscriber like any other.
    this.subscriptionsChanged();
  }

  /** Receives and forwards until stop(); resolves when the loop ends, rejects if it fails. */
  run(): Promise<void> {
    this.running ??= receiveEach(this.frontend, this.onMessage, { onRejected: this.sendFailed, coalesceMs: RECEIVE_COALESCE_MS });
    return this.running;
  }

  private readonly onMessage = (frames: Buffer[]): Promise<void> | undefined => {
    this.received++;
    const topic = frames[0] as Buffer;
    const lane = laneOf(topic);
    if (this.options.countMessages) {
      const family = lane === -1 ? 1 : 0;
      let size = 0;
      for (let i = 0; i < frames.length; i++) size += (frames[i] as Buffer).length;
      this.metrics.tally.messages[family]++;
      this.metrics.tally.bytes[family] += size;
    }
    if (lane !== -1 && !this.live[lane]) {
      this.hold(lane, frames);
      return undefined;
    }
    // The send's own promise: it is settled already (send timeout 0), and a failure comes to sendFailed.
    return this.backend.send(frames);
  };

  private hold(lane: Lane, frames: Buffer[]): void {
    this.backlog.hold(lane, frames);
    this.metrics.tally.held++;
  }

  /** A send from the receive loop failed: a subscriber's queue is full (or the socket closed at a stop). */
  private readonly sendFailed = async (error: unknown, frames: Buffer[]): Promise<void> => {
    const lane = laneOf(frames[0] as Buffer);
    for (;;) {
      if (!isEagain(error)) {
        if (this.backend.closed) return;
        throw error;
      }
      if (lane !== -1 && (!this.options.noDrop || this.stopping)) {
        this.live[lane] = false;
        this.hold(lane, frames);
        this.flush(lane);
        return;
      }
      if (!this.options.noDrop || this.stopping) {
        this.droppedSubscriberFull.inc();
        return;
      }
      await sleep(FULL_RETRY_MS);
      try {
        await this.backend.send(frames);
        return;
      } catch (again) {
        error = again;
      }
    }
  };

  /** Call after every change of the subscriptions: lanes stop or start being delivered. */
  subscriptionsChanged(): void {
    for (const lane of LANE_INDEXES) {
      if (!this.subscriptions.delivers(lane)) this.live[lane] = false;
      else if (!this.live[lane]) this.flush(lane);
    }
  }

  /** Starts forwarding the lane's backlog, unless that is under way. */
  private flush(lane: Lane): void {
    if (this.flushing[lane] || this.stopping) return;
    this.flushing[lane] = this.forwardHeld(lane)
      .catch((error: Error) => this.options.onFailure(error))
      .finally(() => {
        this.flushing[lane] = undefined;
      });
  }

  private async forwardHeld(lane: Lane): Promise<void> {
    let burst = 0;
    while (!this.stopping && this.subscriptions.delivers(lane)) {
      const frames = this.backlog.peek(lane);
      if (!frames) {
        // Caught up: from now on the lane's messages are sent as they come.
        this.live[lane] = true;
        return;
      }
      try {
        await this.backend.send(frames);
      } catch (error) {
        if (!isEagain(error)) {
          if (this.backend.closed) return;
          throw error;
        }
        // Held messages are never dropped for a slow subscriber: wait until it has room.
        await sleep(FULL_RETRY_MS);
        continue;
      }
      this.backlog.delivered(lane);
      this.metrics.tally.forwarded++;
      if (++burst >= FLUSH_BURST) {
        burst = 0;
        await nextTurn();
      }
    }
  }

  /**
   * Stops receiving (closes the frontend) and forwarding: a message waiting for a full subscriber is held instead,
   * and what is left stays in the backlog.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.frontend.close();
    await this.running?.catch(() => undefined);
    await Promise.all(this.flushing);
  }
}
