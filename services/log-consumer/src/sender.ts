import { setTimeout as sleep } from "node:timers/promises";
import type { ServiceLog } from "@aixcl/service-runtime";
import type { SealedBatch } from "./encode.js";
import type { PushClient } from "./loki-client.js";
import type { ConsumerMetrics } from "./metrics.js";
import { DROP_REASONS } from "./metrics.js";
import type { BatchQueue, Settlement } from "./queue.js";
import { parseRejections } from "./rejections.js";
import { redactUrls } from "./loki-auth.js";
import type { PushResult, RetryPolicy, Verdict } from "./retry.js";
import { classify } from "./retry.js";

export interface SenderOptions {
  /** Pushes (each with its retries) allowed at the same time. */
  maxInFlight: number;
}

/** How many entries ended where, for the shutdown summary. */
export interface DrainResult {
  /** Everything was delivered (or refused by Loki) before the deadline. */
  readonly flushed: boolean;
  /** Lost: counted as dropped (reason shutdown). Always 0 with the spool. */
  readonly undeliveredEntries: number;
  /** Not delivered but kept in the spool: the next start sends them. */
  readonly spooledEntries: number;
}

/**
 * Takes batches from the queue and pushes them, several at a time, each with its own retries. Runs beside the
 * receive loop, which never waits for it: the only link between them is the queue.
 */
export class Sender {
  private inFlight = 0;
  private readonly stopping = new AbortController();
  private idle: (() => void) | undefined;
  private undeliveredAtShutdown = 0;
  private refused = false;

  constructor(
    private readonly queue: BatchQueue,
    private readonly client: PushClient,
    private readonly policy: RetryPolicy,
    private readonly metrics: ConsumerMetrics,
    private readonly log: ServiceLog,
    private readonly options: SenderOptions,
  ) {}

  get pushesInFlight(): number {
    return this.inFlight;
  }

  /** Loki's last answer was 401 or 403: the credentials (or the tenant id) are refused. */
  get credentialsRefused(): boolean {
    return this.refused;
  }

  /** Follows whether Loki accepts the credentials; logs each change once (the retries log every attempt). */
  private noteCredentials(result: PushResult): void {
    if (result.kind !== "response") return;
    const refused = result.status === 401 || result.status === 403;
    if (refused === this.refused) return;
    this.refused = refused;
    this.metrics.lokiAuthRefused.set(refused ? 1 : 0);
    if (refused) {
      this.log.error("Loki refused the consumer's credentials; batches are kept and retried until they are fixed", {
        status: result.status,
        detail: redactUrls(result.body.slice(0, 200)),
        hint: "check loki.username with loki.password(_file), or loki.bearer_token(_file), and loki.tenant_id when Loki runs with auth_enabled",
      });
    } else {
      this.log.info("Loki accepts the consumer's credentials again", { status: result.status });
    }
  }

  /** Starts pushes for queued batches while there is room. Cheap to call often. */
  kick(): void {
    while (this.inFlight < this.options.maxInFlight && !this.stopping.signal.aborted) {
      const batch = this.queue.shift();
      if (!batch) break;
      this.inFlight++;
      void this.deliver(batch)
        .catch((error: Error): Settlement => {
          this.log.error("could not push a batch", { batch: batch.id, entries: batch.entries, error: error.stack });
          this.drop(batch, DROP_REASONS.internalError);
          return "done";
        })
        .then((how) => {
          this.queue.settle(batch, how);
          this.inFlight--;
          this.kick();
          if (this.inFlight === 0 && this.queue.queuedBatches === 0) this.idle?.();
        });
    }
  }

  /**
   * Pushes everything queued, giving up at the deadline: pushes still under way are aborted. What is left stays
   * in a durable queue for the next start; otherwise it is counted as dropped (reason "shutdown").
   */
  async drain(deadlineMs: number): Promise<DrainResult> {
    this.kick();
    const done = new Promise<void>((resolve) => {
      this.idle = resolve;
      if (this.inFlight === 0 && this.queue.queuedBatches === 0) resolve();
    });
    const timer = sleep(deadlineMs, "deadline", { ref: false });
    const flushed = (await Promise.race([done.then(() => "done"), timer])) === "done";
    if (!flushed) {
      this.stopping.abort();
      for (const batch of this.queue.drain()) this.drop(batch, DROP_REASONS.shutdown);
      await done;
    }
    return { flushed, undeliveredEntries: this.undeliveredAtShutdown, spooledEntries: this.queue.storedEntries };
  }

  private drop(batch: SealedBatch, reason: string, entries = batch.entries): void {
    this.metrics.dropped.labels(reason).inc(entries);
    if (reason === DROP_REASONS.shutdown) this.undeliveredAtShutdown += entries;
  }

  /** Aborted by the stop: kept by a durable queue (and sent again at the next start), else lost. */
  private unfinished(batch: SealedBatch): Settlement {
    if (!this.queue.durable) this.drop(batch, DROP_REASONS.shutdown);
    return "unfinished";
  }

  private async deliver(batch: SealedBatch): Promise<Settlement> {
    const signal = this.stopping.signal;
    // Retries counted against retry.max_retries, and those after refused credentials, which are not: each
    // with its own backoff, so a push failing once Loki accepts the credentials starts from the shortest wait.
    let retries = 0;
    let authRetries = 0;
    for (;;) {
      const started = performance.now();
      const result = await this.client.push(batch.push, signal);
      const statusCode = result.kind === "response" ? String(result.status) : "error";
      this.metrics.pushDuration.labels(statusCode).observe((performance.now() - started) / 1000);
      this.noteCredentials(result);
      const verdict = classify(result);
      if (verdict.action !== "retry") {
        this.settle(batch, verdict);
        return "done";
      }
      if (signal.aborted) return this.unfinished(batch);
      if (!this.policy.mayRetry(retries, verdict.reason)) {
        this.log.error("giving up on a batch: retries exhausted", {
          batch: batch.id,
          entries: batch.entries,
          retries,
          last_error: result.kind === "error" ? result.message : `HTTP ${result.status}: ${redactUrls(result.body.slice(0, 200))}`,
        });
        this.drop(batch, DROP_REASONS.retriesExhausted);
        return "done";
      }
      const retry = verdict.reason === "unauthorized" ? ++authRetries : ++retries;
      const delayMs = this.policy.delayMs(retry, verdict.retryAfterMs);
      this.metrics.retries.labels(verdict.reason).inc();
      this.log.warn("push failed, will retry", {
        batch: batch.id,
        reason: verdict.reason,
        detail: result.kind === "error" ? result.message : `HTTP ${result.status}`,
        retry,
        delay_ms: Math.round(delayMs),
      });
      try {
        await sleep(delayMs, undefined, { signal });
      } catch {
        return this.unfinished(batch);
      }
    }
  }

  private settle(batch: SealedBatch, verdict: Exclude<Verdict, { action: "retry" }>): void {
    let accepted = batch.entries;
    if (verdict.action === "drop") {
      this.log.error("Loki refused a batch; it cannot be retried", { batch: batch.id, entries: batch.entries, reason: verdict.reason });
      this.drop(batch, verdict.reason);
      accepted = 0;
    } else if (verdict.action === "partially_rejected") {
      const summary = parseRejections(verdict.body, batch);
      for (const [reason, entries] of summary.byReason) this.drop(batch, reason, entries);
      accepted -= summary.rejected;
      this.log.warn("Loki refused part of a batch (400); the rest was written", {
        batch: batch.id,
        entries: batch.entries,
        rejected: Object.fromEntries(summary.byReason),
        ...(summary.unrecognized.length > 0 && { unrecognized: summary.unrecognized.slice(0, 3).map((m) => m.slice(0, 300)) }),
      });
    }
    if (accepted > 0) {
      this.metrics.pushedEntries.inc(accepted);
      // After a partial 400 the refused entries' sizes are unknown; count the accepted share of the batch.
      this.metrics.pushedBytes.inc(Math.round((batch.bytes * accepted) / batch.entries));
    }
    if (verdict.action !== "drop") this.metrics.lastSuccess.set(Date.now() / 1000);
  }
}
