/** How often a repeating problem is logged: its metric counts every occurrence, the log says it goes on. */
export const LOG_THROTTLE_MS = 10_000;

/** What happened since the previous line: how many times, and the sum of each amount. */
export type ThrottledSummary<K extends string> = { times: number } & Record<K, number>;

/**
 * One log line per interval for a problem that can repeat many times a second (a failing disk, a full spool, a
 * flood of undecodable messages, a refused handshake ZeroMQ retries every 100 ms), so the log stays readable and
 * does not feed Loki a flood of its own. The first occurrence is logged at once.
 */
export class LogThrottle<K extends string = never> {
  private lastLineMs = Number.NEGATIVE_INFINITY;
  private times = 0;
  private sums = new Map<K, number>();

  constructor(private readonly intervalMs = LOG_THROTTLE_MS) {}

  /**
   * Records one occurrence and its amounts. Undefined while the interval since the last line runs; otherwise
   * what happened since that line, this occurrence included, and the next interval starts.
   */
  note(nowMs: number, amounts?: Readonly<Record<K, number>>): ThrottledSummary<K> | undefined {
    this.times++;
    for (const [key, value] of Object.entries(amounts ?? {}) as [K, number][]) this.sums.set(key, (this.sums.get(key) ?? 0) + value);
    if (nowMs - this.lastLineMs < this.intervalMs) return undefined;
    const summary = { times: this.times, ...Object.fromEntries(this.sums) } as ThrottledSummary<K>;
    this.lastLineMs = nowMs;
    this.times = 0;
    this.sums = new Map();
    return summary;
  }
}
