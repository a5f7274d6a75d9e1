/** Exact loss/duplication counting by sequence number, and a latency histogram, for the benchmark's sinks. */

/** Which of the sequence numbers 0..expected-1 arrived, and how often. */
export class SeqTally {
  private readonly seen: Uint8Array;
  /** Entries received, duplicates included. */
  received = 0;
  /** Sequence numbers outside 0..expected-1 (another run's lines, or a parsing bug). */
  foreign = 0;
  distinct = 0;
  duplicated = 0;

  constructor(readonly expected: number) {
    this.seen = new Uint8Array(expected);
  }

  add(seq: number): void {
    this.received++;
    if (seq < 0 || seq >= this.expected || !Number.isInteger(seq)) {
      this.foreign++;
      return;
    }
    const count = this.seen[seq] as number;
    if (count === 0) this.distinct++;
    else this.duplicated++;
    if (count < 255) this.seen[seq] = count + 1;
  }

  get lost(): number {
    return this.expected - this.distinct;
  }

  /** The first `limit` sequence numbers that never arrived. */
  missing(limit = 10): number[] {
    const out: number[] = [];
    for (let seq = 0; seq < this.expected && out.length < limit && out.length < this.lost; seq++) if (this.seen[seq] === 0) out.push(seq);
    return out;
  }
}

/** Milliseconds, 0.1 ms wide buckets below 1 s and 1 ms wide buckets up to 10 minutes. */
export class LatencyHistogram {
  private static readonly FINE = 10_000;
  private readonly buckets = new Uint32Array(LatencyHistogram.FINE + 600_000);
  count = 0;
  maxMs = 0;

  record(ms: number): void {
    const v = ms > 0 ? ms : 0;
    const i = v < 1000 ? Math.floor(v * 10) : LatencyHistogram.FINE + Math.min(Math.floor(v) - 1000, 599_999);
    this.buckets[i] = (this.buckets[i] as number) + 1;
    this.count++;
    if (v > this.maxMs) this.maxMs = v;
  }

  /** The upper edge of the bucket holding quantile q, in ms; NaN without samples. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] as number;
      if (seen >= rank) return i < LatencyHistogram.FINE ? (i + 1) / 10 : i - LatencyHistogram.FINE + 1001;
    }
    return this.maxMs;
  }
}

const SEQ = Buffer.from("seq=");
const DIGIT_0 = 0x30;
const DOT = 0x2e;
const SPACE = 0x20;

/**
 * Reads `seq=<n> t=<ms.micros>` from the bytes buf[start..end) (a line, or a whole bus payload): the sequence
 * number and the publish time. Undefined when the line carries none (not a benchmark line).
 */
export function parseMarks(buf: Buffer, start: number, end: number): { seq: number; tMs: number } | undefined {
  const at = buf.indexOf(SEQ, start);
  if (at < 0 || at >= end) return undefined;
  const isDigit = (c: number | undefined): c is number => c !== undefined && c >= DIGIT_0 && c <= DIGIT_0 + 9;
  let i = at + SEQ.length;
  const first = i;
  let seq = 0;
  for (let c = buf[i]; i < end && isDigit(c); c = buf[++i]) seq = seq * 10 + c - DIGIT_0;
  if (i === first) return undefined;
  // " t=" follows the sequence number.
  if (buf[i] !== SPACE || buf[i + 1] !== 0x74 || buf[i + 2] !== 0x3d) return { seq, tMs: Number.NaN };
  i += 3;
  let tMs = 0;
  let scale = 0;
  for (; i < end; i++) {
    const c = buf[i];
    if (c === DOT && scale === 0) scale = 1;
    else if (isDigit(c)) {
      if (scale === 0) tMs = tMs * 10 + c - DIGIT_0;
      else tMs += (c - DIGIT_0) / 10 ** scale++;
    } else break;
  }
  return { seq, tMs };
}
