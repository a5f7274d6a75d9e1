/**
 * The benchmark's publisher processes: the workload's entries (workload.ts, encoded by hand to keep the publishers
 * cheap on the shared cores) sent as our clients send them. With `batches`, once the consumer asks for batches
 * (its aixcl.batch. subscription reaches us through the broker), what waits per service goes as one LogBatch, each
 * entry having waited at most BATCH_LIMITS.windowMs for company: exactly the logger's policy (createLogger), with
 * one logger per service. Without, one message per entry, as AICO's plain PUB publishers send them.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { BATCH_TOPIC_PREFIX, batchTopic, encodeLogBatch } from "@aixcl/wire";
import { BATCH_LIMITS } from "@aixcl/client-logger";
import type { PublisherReport } from "./harness.js";
import { checkEncoding, EntryEncoder, nowMs, SERVICES, shapeOf } from "./workload.js";
import { subscribedPublisher } from "./xpub.js";

export interface PublisherPlan {
  index: number;
  publishers: number;
  total: number;
  /** Lines/s of this publisher; 0 = as fast as the socket takes them. */
  rate: number;
  run: string;
  blockSize: number;
  /** Batch as our clients do (the subscriber must take aixcl.batch.), or send one message per entry. */
  batches: boolean;
}

const PACING_TICK_MS = 5;

/** One service's entries waiting to go as a batch. */
interface Pending {
  topic: Buffer;
  payloads: Uint8Array[];
  bytes: number;
  firstMs: number;
}

/** Sends its share of the sequence numbers (index, index + publishers, ...), paced or flat out. */
export async function publisherRole(endpoint: string, plan: PublisherPlan): Promise<void> {
  const encoder = new EntryEncoder(plan.run, plan.blockSize);
  if (plan.index === 0) checkEncoding(encoder);
  // A send timeout of 0 makes zeromq.js send at once instead of first asking libzmq whether it may (a system call
  // per message).
  const pub = await subscribedPublisher(endpoint, { wanted: plan.batches ? BATCH_TOPIC_PREFIX : "logs.", sendTimeout: 0 });
  const go = new Promise<void>((resolve) => process.once("message", () => resolve()));
  process.send?.({ ready: true });
  await go;

  const count = Math.ceil((plan.total - plan.index) / plan.publishers);
  const report: PublisherReport = { sent: 0, bytes: 0, startMs: nowMs(), endMs: 0, eagain: 0 };
  const send = async (frames: [Buffer, Uint8Array]) => {
    for (;;) {
      try {
        await pub.send(frames);
        report.bytes += frames[0].length + frames[1].length;
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== "EAGAIN") throw error;
        // The pipe is full (NODROP): wait for it to drain rather than spin on EAGAIN, which would take the
        // cores away from the parties being measured.
        report.eagain++;
        await sleep(1);
      }
    }
  };
  const pending = new Map<string, Pending>(SERVICES.map((s) => [s, { topic: Buffer.from(batchTopic(s, "handler")), payloads: [], bytes: 0, firstMs: 0 }]));
  const flush = async (p: Pending) => {
    await send([p.topic, encodeLogBatch(p.payloads)]);
    p.payloads = [];
    p.bytes = 0;
  };
  /** Batches whose oldest entry waited the window (or all of them, at the end). */
  const flushDue = async (all: boolean) => {
    const now = nowMs();
    for (const p of pending.values()) if (p.payloads.length > 0 && (all || now - p.firstMs >= BATCH_LIMITS.windowMs)) await flush(p);
  };

  const perMs = plan.rate / 1000;
  let made = 0;
  while (made < count) {
    if (perMs > 0) {
      const due = Math.min(count, Math.floor((nowMs() - report.startMs) * perMs) + 1);
      if (made >= due) {
        if (plan.batches) await flushDue(false);
        // What is due goes out in bursts every few ms (applications log in bursts too); a wake-up per line would
        // cost the shared cores more than the line.
        await sleep(PACING_TICK_MS);
        continue;
      }
    }
    const seq = plan.index + made * plan.publishers;
    const frames = encoder.frames(seq, nowMs());
    made++;
    if (!plan.batches) {
      await send(frames);
      report.sent++;
      continue;
    }
    const p = pending.get(shapeOf(seq).service) as Pending;
    if (p.payloads.length > 0 && p.bytes + frames[1].length > BATCH_LIMITS.maxBytes) await flush(p);
    if (p.payloads.length === 0) p.firstMs = nowMs();
    p.payloads.push(frames[1]);
    p.bytes += frames[1].length;
    report.sent++;
    if (p.payloads.length >= BATCH_LIMITS.maxEntries) await flush(p);
    else if (perMs === 0 && made % 1000 === 0) await flushDue(false);
  }
  if (plan.batches) await flushDue(true);
  report.endMs = nowMs();
  process.send?.(report);
  // Stays connected until the parent has its figures and ends this process.
}
