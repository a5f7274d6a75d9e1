import { WebSocket } from "undici";

/**
 * Just enough of Loki's HTTP API for the CLI: query_range and the tail websocket. Labels come back categorized
 * (stream labels apart from structured metadata), so output can tell the indexed labels from per-entry fields.
 */

export interface LogEntryOut {
  /** Unix nanoseconds. */
  ts: bigint;
  line: string;
  labels: Record<string, string>;
  metadata: Record<string, string>;
}

export interface Series {
  labels: Record<string, string>;
  /** [unix seconds, value] */
  points: [number, string][];
}

export type QueryResult = { type: "streams"; entries: LogEntryOut[] } | { type: "matrix"; series: Series[] };

/** Loki could not be asked (unreachable) or refused the request; the message says which and what to check. */
export class LokiError extends Error {
  override name = "LokiError";
  constructor(
    message: string,
    /** HTTP status, when Loki answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Entries as query_range and tail return them with `categorize-labels`. */
interface RawStream {
  stream?: Record<string, string>;
  values?: [string, string, { structuredMetadata?: Record<string, string>; parsed?: Record<string, string> }?][];
}

const ENCODING_HEADERS = { "X-Loki-Response-Encoding-Flags": "categorize-labels" };
const REQUEST_TIMEOUT_MS = 30_000;

export function entriesOf(streams: readonly RawStream[]): LogEntryOut[] {
  const out: LogEntryOut[] = [];
  for (const s of streams) {
    for (const [ts, line, meta] of s.values ?? []) {
      out.push({ ts: BigInt(ts), line, labels: { ...(s.stream ?? {}), ...(meta?.parsed ?? {}) }, metadata: { ...(meta?.structuredMetadata ?? {}) } });
    }
  }
  return out.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
}

function describeFailure(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

export class LokiClient {
  constructor(readonly baseUrl: string) {}

  private unreachable(error: unknown): LokiError {
    return new LokiError(`Loki at ${this.baseUrl} is not reachable (${describeFailure(error)}). Is the stack running? Check with: ./aixcl status`);
  }

  /** True when /ready answers 200. */
  async ready(): Promise<boolean> {
    try {
      const res = await fetch(`${this.baseUrl}/ready`, { signal: AbortSignal.timeout(5000) });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  /** Runs a log or metric query over [start, end]. Log queries return the newest `limit` entries, oldest first. */
  async queryRange(logql: string, options: { start: Date; end: Date; limit: number; signal?: AbortSignal }): Promise<QueryResult> {
    const params = new URLSearchParams({
      query: logql,
      start: `${BigInt(options.start.getTime()) * 1_000_000n}`,
      end: `${BigInt(options.end.getTime()) * 1_000_000n}`,
      limit: String(options.limit),
      direction: "backward",
    });
    let res: Response;
    try {
      const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) : AbortSignal.timeout(REQUEST_TIMEOUT_MS);
      res = await fetch(`${this.baseUrl}/loki/api/v1/query_range?${params}`, { headers: ENCODING_HEADERS, signal });
    } catch (error) {
      if ((error as Error).name === "TimeoutError") throw new LokiError(`Loki at ${this.baseUrl} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s; narrow the query (--since, a more specific selector)`);
      if ((error as Error).name === "AbortError") throw error;
      throw this.unreachable(error);
    }
    const body = await res.text();
    if (res.status === 400) throw new LokiError(`Loki rejected the query: ${body.trim()}`, 400);
    if (!res.ok) throw new LokiError(`Loki answered HTTP ${res.status}: ${body.trim().slice(0, 500)}`, res.status);
    let parsed: { data?: { resultType?: string; result?: unknown[] } };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      throw new LokiError(`Loki's answer is not JSON: ${body.slice(0, 200)}`, res.status);
    }
    const data = parsed.data ?? {};
    if (data.resultType === "streams") return { type: "streams", entries: entriesOf((data.result ?? []) as RawStream[]) };
    if (data.resultType === "matrix") {
      const raw = (data.result ?? []) as { metric?: Record<string, string>; values?: [number, string][] }[];
      return { type: "matrix", series: raw.map((r) => ({ labels: r.metric ?? {}, points: r.values ?? [] })) };
    }
    throw new LokiError(`unexpected result type ${JSON.stringify(data.resultType)} from Loki`);
  }

  /**
   * Streams entries of a log query from `startNs` on through /loki/api/v1/tail until `signal` aborts or the
   * connection ends. Resolves with the reason it ended; never rejects for network trouble (callers reconnect).
   */
  tail(
    logql: string,
    startNs: bigint,
    onEntries: (entries: LogEntryOut[]) => void,
    onDropped: (count: number) => void,
    signal: AbortSignal,
  ): Promise<{ reason: "aborted" | "closed" | "error"; detail: string; opened: boolean }> {
    const url = new URL(`${this.baseUrl}/loki/api/v1/tail`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = new URLSearchParams({ query: logql, start: String(startNs), limit: "5000" }).toString();
    return new Promise((resolve) => {
      let opened = false;
      let settled = false;
      const ws = new WebSocket(url, { headers: ENCODING_HEADERS });
      const finish = (reason: "aborted" | "closed" | "error", detail: string) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        resolve({ reason, detail, opened });
      };
      const onAbort = () => {
        ws.close(1000);
        finish("aborted", "");
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort);
      ws.addEventListener("open", () => {
        opened = true;
      });
      ws.addEventListener("message", (event) => {
        let msg: { streams?: RawStream[]; dropped_entries?: unknown[] | null };
        try {
          msg = JSON.parse(String(event.data)) as typeof msg;
        } catch {
          return;
        }
        const entries = entriesOf(msg.streams ?? []);
        if (entries.length > 0) onEntries(entries);
        if (msg.dropped_entries?.length) onDropped(msg.dropped_entries.length);
      });
      ws.addEventListener("error", (event) => finish("error", (event as { message?: string }).message || "websocket error"));
      ws.addEventListener("close", (event) => finish("closed", event.reason || `code ${event.code}`));
    });
  }
}
