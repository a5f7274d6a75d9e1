import { describe, expect, it } from "vitest";
import { RetryPolicy, classify, parseRetryAfter } from "../src/retry.js";

const response = (status: number, retryAfterMs?: number) => ({ kind: "response" as const, status, body: "b", retryAfterMs });

describe("classify", () => {
  it("retries 429, 5xx, timeouts and connection errors, and nothing else", () => {
    expect(classify(response(204))).toEqual({ action: "delivered" });
    expect(classify(response(200))).toEqual({ action: "delivered" });
    expect(classify(response(429, 3000))).toEqual({ action: "retry", reason: "rate_limited", retryAfterMs: 3000 });
    for (const s of [500, 502, 503, 504]) expect(classify(response(s))).toMatchObject({ action: "retry", reason: "server_error" });
    expect(classify({ kind: "error", timedOut: true, message: "t" })).toEqual({ action: "retry", reason: "timeout" });
    expect(classify({ kind: "error", timedOut: false, message: "ECONNREFUSED" })).toEqual({ action: "retry", reason: "connection_error" });
    expect(classify(response(400))).toEqual({ action: "partially_rejected", body: "b" });
    for (const s of [404, 413]) expect(classify(response(s))).toEqual({ action: "drop", reason: `http_${s}` });
  });

  it("keeps and retries a batch Loki refuses for its credentials (401, 403): a configuration fault, not bad data", () => {
    for (const s of [401, 403]) expect(classify(response(s))).toEqual({ action: "retry", reason: "unauthorized", retryAfterMs: undefined });
    const policy = new RetryPolicy({ minBackoffMs: 500, maxBackoffMs: 300_000, maxRetries: 10 });
    expect(policy.mayRetry(10)).toBe(false);
    expect(policy.mayRetry(10_000, "unauthorized")).toBe(true);
  });
});

describe("RetryPolicy", () => {
  const defaults = { minBackoffMs: 500, maxBackoffMs: 300_000, maxRetries: 10 };

  it("waits in [min*2^(n-1), min*2^n), capped at max", () => {
    const low = new RetryPolicy(defaults, () => 0);
    const high = new RetryPolicy(defaults, () => 0.999999);
    expect([1, 2, 3, 4].map((n) => low.delayMs(n))).toEqual([500, 1000, 2000, 4000]);
    expect(high.delayMs(1)).toBeCloseTo(1000, 0);
    expect(high.delayMs(1)).toBeLessThan(1000);
    expect(low.delayMs(10)).toBe(256_000);
    expect(high.delayMs(10)).toBeCloseTo(256_000 + 0.999999 * 44_000, 6);
    expect(low.delayMs(20)).toBe(300_000);
    expect(high.delayMs(20)).toBe(300_000);
  });

  it("spreads retries with jitter", () => {
    const policy = new RetryPolicy(defaults);
    const delays = new Set(Array.from({ length: 50 }, () => Math.round(policy.delayMs(3))));
    expect(delays.size).toBeGreaterThan(40);
    for (const d of delays) expect(d >= 2000 && d <= 4000).toBe(true);
  });

  it("is at least as patient as Promtail by default (10 retries, ~8.5 min)", () => {
    const policy = new RetryPolicy(defaults, () => 0);
    let total = 0;
    let retries = 0;
    while (policy.mayRetry(retries)) total += policy.delayMs(++retries);
    expect(retries).toBe(10);
    expect(total).toBeGreaterThanOrEqual(511_500);
  });

  it("honours a longer Retry-After, capped at max", () => {
    const policy = new RetryPolicy(defaults, () => 0);
    expect(policy.delayMs(1, 7000)).toBe(7000);
    expect(policy.delayMs(1, 100)).toBe(500);
    expect(policy.delayMs(1, 10_000_000)).toBe(300_000);
  });

  it("reads Retry-After as seconds or as a date", () => {
    expect(parseRetryAfter("5", 0)).toBe(5000);
    expect(parseRetryAfter(new Date(60_000).toUTCString(), 30_000)).toBe(30_000);
    expect(parseRetryAfter("soon", 0)).toBeUndefined();
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
  });
});
