import { setTimeout as sleep } from "node:timers/promises";
import type { XPublisher } from "zeromq";

/** While messages flow, the XPUB is checked for subscription messages this often. */
const POLL_MS = 10;
/** A receive waits on the XPUB this long before the watcher looks whether messages flow. */
const QUIET_WAIT_MS = 100;

function isEagain(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === "EAGAIN";
}

/**
 * Hands the subscription messages the XPUB reports to `onFrame` until it closes. A receive left pending on a
 * socket makes zeromq.js ask libzmq for ZMQ_EVENTS (a poll(2) system call) after every send on it: measured 2.1 ->
 * 3.3-3.9 µs of CPU per forwarded message. So a receive waits on the XPUB only while the bus is quiet (no message
 * for QUIET_WAIT_MS); while messages flow, the XPUB is read every POLL_MS instead. A subscription change is seen
 * within that time either way (the forwarding sends also have libzmq apply it in the meantime).
 */
export async function watchSubscriptions(backend: XPublisher, received: () => number, onFrame: (frame: Buffer) => Promise<void>): Promise<void> {
  let seen = received();
  while (!backend.closed) {
    const flowing = received() !== seen;
    seen = received();
    try {
      if (flowing) {
        await sleep(POLL_MS);
        backend.receiveTimeout = 0;
        while (!backend.closed && backend.readable) {
          const [frame] = await backend.receive();
          if (frame) await onFrame(frame);
        }
      } else {
        backend.receiveTimeout = QUIET_WAIT_MS;
        const [frame] = await backend.receive();
        if (frame) await onFrame(frame);
      }
    } catch (error) {
      if (backend.closed) return;
      if (!isEagain(error)) throw error;
    }
  }
}
