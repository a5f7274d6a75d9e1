import { XPublisher } from "zeromq";

/**
 * An XPUB connected to `endpoint` (NODROP: a full pipe answers EAGAIN instead of dropping, so a run measures
 * forwarding, not loss), resolved once a subscription reaches it: one to `wanted` if given. A receive stays pending
 * for the socket's whole life, as the logger client's does: zeromq.js lets libzmq process a socket's internal
 * commands only while an operation is pending on it, and without one the tail of a burst can sit in the publisher's
 * queue indefinitely (seen: up to 15% of a 300k burst, which a benchmark would report as loss).
 */
export async function subscribedPublisher(endpoint: string, options: { wanted?: string; sendTimeout?: number; sendHighWaterMark?: number } = {}): Promise<XPublisher> {
  const { wanted, sendTimeout, sendHighWaterMark = 100_000 } = options;
  const pub = new XPublisher({ noDrop: true, sendHighWaterMark, linger: 0, ...(sendTimeout !== undefined && { sendTimeout }) });
  pub.connect(endpoint);
  await new Promise<void>((subscribed) => {
    void (async () => {
      for await (const [msg] of pub) if (wanted === undefined || (msg && msg[0] === 1 && msg.subarray(1).toString() === wanted)) subscribed();
    })().catch(() => undefined);
  });
  return pub;
}
