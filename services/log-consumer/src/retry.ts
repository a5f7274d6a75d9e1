/** What came back from one push attempt. */
export type PushResult =
  | { kind: "response"; status: number; body: string; retryAfterMs?: number | undefined }
  | { kind: "error"; timedOut: boolean; message: string };

export type RetryReason = "rate_limited" | "server_error" | "connection_error" | "timeout" | "unauthorized";

/** What to do with a batch after an attempt. */
export type Verdict =
  | { action: "delivered" }
  | { action: "retry"; reason: RetryReason; retryAfterMs?: number | undefined }
  /** 400: Loki wrote the valid part and names the rest in the body; never retried. */
  | { action: "partially_rejected"; body: string }
  /** Any other 4xx (404, 413, ...): retrying cannot help, so the batch is dropped and counted. */
  | { action: "drop"; reason: string };

/**
 * Promtail and Alloy's loki.write rules, retry 429, 5xx and connection errors, plus 401 and 403: refused
 * credentials (or a missing tenant id) are a configuration fault, not bad data; every batch would be refused, so
 * they are kept and retried until the configuration is fixed, never used up (see mayRetry).
 */
export function classify(result: PushResult): Verdict {
  if (result.kind === "error") return { action: "retry", reason: result.timedOut ? "timeout" : "connection_error" };
  const { status } = result;
  if (status >= 200 && status < 300) return { action: "delivered" };
  if (status === 401 || status === 403) return { action: "retry", reason: "unauthorized", retryAfterMs: result.retryAfterMs };
  if (status === 429) return { action: "retry", reason: "rate_limited", retryAfterMs: result.retryAfterMs };
  if (status >= 500) return { action: "retry", reason: "server_error", retryAfterMs: result.retryAfterMs };
  if (status === 400) return { action: "partially_rejected", body: result.body };
  return { action: "drop", reason: `http_${status}` };
}

export interface RetryOptions {
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Retries after the first attempt; the batch is dropped (and counted) when they are used up. */
  maxRetries: number;
}

/**
 * Exponential backoff with jitter, as dskit's backoff used by Promtail: the n-th retry waits a random time in
 * [min*2^(n-1), min*2^n), both ends capped at max. With 500 ms, 5 min and 10 retries that is up to ~8.5 min.
 * A server's Retry-After, when longer, wins (still capped at max).
 */
export class RetryPolicy {
  constructor(
    readonly options: RetryOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Whether a batch that has already been retried `retries` times may be retried again for `reason`. Refused
   * credentials are retried without end: dropping would lose every batch until they are fixed.
   */
  mayRetry(retries: number, reason?: RetryReason): boolean {
    return reason === "unauthorized" || retries < this.options.maxRetries;
  }

  /** Delay before retry number `retry` (1-based). */
  delayMs(retry: number, retryAfterMs?: number): number {
    const { minBackoffMs: min, maxBackoffMs: max } = this.options;
    const low = Math.min(min * 2 ** (retry - 1), max);
    const high = Math.min(min * 2 ** retry, max);
    const jittered = low + this.random() * (high - low);
    return retryAfterMs === undefined ? jittered : Math.max(jittered, Math.min(retryAfterMs, max));
  }
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | undefined, nowMs: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
