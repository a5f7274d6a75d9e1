import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { requiredBinary, shippedConfig } from "./components.js";
import { ComponentProcess, freePort, launchUntilReady, tempDir } from "./process.js";

/** One stream of a query_range result; the 3rd value element is the entry's structured metadata, if any. */
export interface LokiStream {
  stream: Record<string, string>;
  values: [string, string, Record<string, string>?][];
}

export interface QueryRangeOptions {
  /** Default: one hour before `end`. */
  start?: Date;
  /** Default: now (plus a second, so entries stamped "now" by another process are included). */
  end?: Date;
  /** Default 1000 (Loki's own default is 100). */
  limit?: number;
  direction?: "forward" | "backward";
}

export interface LokiHandle {
  url: string;
  httpPort: number;
  pushUrl: string;
  /** Where this Loki keeps its data (a fresh temp dir, removed by stop()). */
  dataDir: string;
  /** Loki's process id while it runs (for its CPU time and memory in /proc), else undefined. */
  pid(): number | undefined;
  /** Loki's own log output so far. */
  logs(): string;
  stop(): Promise<void>;
  queryRange(logql: string, opts?: QueryRangeOptions): Promise<LokiStream[]>;
  /** Pushes through the JSON push API; throws with Loki's answer on anything but 204. */
  push(streams: LokiStream[]): Promise<void>;
  /** Polls queryRange until the streams hold at least `count` entries in total; throws after `timeoutMs` (default 10 s). */
  waitFor(logql: string, count: number, timeoutMs?: number): Promise<LokiStream[]>;
}

export interface StartLokiOptions {
  /** Default: the shipped loki/loki-config.yml. */
  configFile?: string;
  /**
   * The ruler's rule store (`<dir>/fake/*.yaml`), e.g. `shippedConfig.lokiRules` to run the shipped log alert
   * rules. Default: an empty folder in the temp dir, so a test Loki evaluates no rules.
   */
  rulesDir?: string;
  /** Where the ruler sends alerts (e.g. AlertmanagerHandle.url). Default: the shipped file's alertmanager_url. */
  alertmanagerUrl?: string;
  /** Extra Loki command-line flags (they override the config file). */
  args?: string[];
  /** Default 60 s: a cold Loki needs a few seconds for its ring to settle. */
  readyTimeoutMs?: number;
}

/**
 * Starts the real Loki from the shipped config file, unmodified. Ports and paths are redirected with Loki's
 * own flags, which take precedence over the file: HTTP and gRPC on free 127.0.0.1 ports, every path under a
 * fresh temp dir, the ruler's rules folder and Alertmanager when asked. Resolves once /ready answers 200.
 */
export async function startLoki(opts: StartLokiOptions = {}): Promise<LokiHandle> {
  const bin = requiredBinary("loki");
  const { proc, url, httpPort, dataDir } = await launchUntilReady("Loki", "/ready", opts.readyTimeoutMs ?? 60_000, async () => {
    const dir = tempDir("loki");
    const dataDir = join(dir, "data");
    mkdirSync(join(dataDir, "rules"), { recursive: true });
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const proc = new ComponentProcess({
      name: "loki",
      bin,
      dir,
      args: [
        `-config.file=${opts.configFile ?? shippedConfig.loki}`,
        `-server.http-listen-address=127.0.0.1`,
        `-server.http-listen-port=${httpPort}`,
        `-server.grpc-listen-port=${grpcPort}`,
        `-common.path-prefix=${dataDir}`,
        `-common.storage.filesystem.chunk-directory=${join(dataDir, "chunks")}`,
        `-common.storage.filesystem.rules-directory=${opts.rulesDir ?? join(dataDir, "rules")}`,
        ...(opts.alertmanagerUrl === undefined ? [] : [`-ruler.alertmanager-url=${opts.alertmanagerUrl}`]),
        ...(opts.args ?? []),
      ],
    });
    return { proc, url: `http://127.0.0.1:${httpPort}`, httpPort, dataDir };
  });
  return lokiHandle(proc, url, httpPort, dataDir);
}

function lokiHandle(proc: ComponentProcess, url: string, httpPort: number, dataDir: string): LokiHandle {
  const handle: LokiHandle = {
    url,
    httpPort,
    pushUrl: `${url}/loki/api/v1/push`,
    dataDir,
    pid: () => proc.pid(),
    logs: () => proc.logs(),
    stop: () => proc.stop(),
    queryRange: (logql, o) => queryRange(url, logql, o),
    async push(streams) {
      const res = await fetch(`${url}/loki/api/v1/push`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ streams }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.text();
      if (res.status !== 204) throw new Error(`Loki push answered ${res.status}: ${body.trim()}`);
    },
    async waitFor(logql, count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let streams: LokiStream[] = [];
      for (;;) {
        streams = await queryRange(url, logql, { limit: Math.max(count, 1000) });
        if (entryCount(streams) >= count) return streams;
        if (Date.now() > deadline) {
          throw new Error(`Loki ${url}: ${logql} returned ${entryCount(streams)} of ${count} expected entries within ${timeoutMs} ms`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    },
  };
  return handle;
}

export function entryCount(streams: LokiStream[]): number {
  return streams.reduce((n, s) => n + s.values.length, 0);
}

/** The raw query_range answer with `X-Loki-Response-Encoding-Flags: categorize-labels`. */
interface CategorizedResponse {
  status: string;
  data: {
    resultType: string;
    encodingFlags?: string[];
    result: { stream: Record<string, string>; values: [string, string, { structuredMetadata?: Record<string, string>; parsed?: Record<string, string> }?][] }[];
  };
}

/**
 * GET /loki/api/v1/query_range. Without the categorize-labels encoding flag Loki folds structured metadata
 * into the stream labels (one result "stream" per distinct metadata set); with it, labels stay the indexed
 * ones and each value carries `{structuredMetadata, parsed}` as a 3rd element, which we flatten to the
 * structured metadata alone.
 */
export async function queryRange(baseUrl: string, logql: string, opts: QueryRangeOptions = {}): Promise<LokiStream[]> {
  const end = opts.end ?? new Date(Date.now() + 1000);
  const start = opts.start ?? new Date(end.getTime() - 3600_000);
  const params = new URLSearchParams({
    query: logql,
    start: `${BigInt(start.getTime()) * 1_000_000n}`,
    end: `${BigInt(end.getTime()) * 1_000_000n}`,
    limit: String(opts.limit ?? 1000),
    direction: opts.direction ?? "forward",
  });
  const res = await fetch(`${baseUrl}/loki/api/v1/query_range?${params}`, {
    headers: { "X-Loki-Response-Encoding-Flags": "categorize-labels" },
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`Loki query_range ${logql} answered ${res.status}: ${body.trim()}`);
  const parsed = JSON.parse(body) as CategorizedResponse;
  if (parsed.data.resultType !== "streams") {
    throw new Error(`Loki query_range ${logql}: expected a log query (resultType streams), got ${parsed.data.resultType}`);
  }
  return parsed.data.result.map((s) => ({
    stream: s.stream,
    values: s.values.map(([ts, line, cat]) => {
      const meta = cat?.structuredMetadata;
      return meta && Object.keys(meta).length > 0 ? [ts, line, meta] : [ts, line];
    }),
  }));
}

/** A LogQL metric query at now (plus a second): the result vector's samples by their labels. */
export async function queryInstant(baseUrl: string, logql: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const params = new URLSearchParams({ query: logql, time: `${BigInt(Date.now() + 1000) * 1_000_000n}` });
  const res = await fetch(`${baseUrl}/loki/api/v1/query?${params}`, { signal: AbortSignal.timeout(60_000) });
  const body = await res.text();
  if (!res.ok) throw new Error(`Loki query ${logql} answered ${res.status}: ${body.trim()}`);
  const parsed = JSON.parse(body) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  return parsed.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

/** Every entry a log query selects in the last `hours`, paging through Loki's 5000-entry limit. */
export async function queryAll(baseUrl: string, logql: string, hours = 1): Promise<LokiStream["values"]> {
  const out: LokiStream["values"] = [];
  const seen = new Set<string>();
  let start = new Date(Date.now() - hours * 3600_000);
  for (;;) {
    const streams = await queryRange(baseUrl, logql, { start, limit: 5000, direction: "forward" });
    const page = streams.flatMap((s) => s.values).sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : BigInt(a[0]) > BigInt(b[0]) ? 1 : 0));
    let added = 0;
    for (const v of page) {
      const key = `${v[0]} ${v[1]}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(v);
      added++;
    }
    if (page.length < 5000) return out;
    // The next page starts at the last timestamp seen (inclusive: others may share it; `seen` skips repeats).
    const last = BigInt(page.at(-1)?.[0] ?? "0");
    if (added === 0) throw new Error(`more than 5000 entries share timestamp ${last}`);
    start = new Date(Number(last / 1_000_000n));
  }
}

/** One logfmt pair at the end of a line: ` name=value`, the value bare or quoted with JSON's escapes. */
const TRAILING_PAIR = /\s([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)$/;

/**
 * A bus entry as Loki returns it (line and structured metadata), split back into the message and its fields: the
 * consumer puts the fields its `fields` setting sends in the line as logfmt pairs at the end of the first line
 * (mapping.ts). Every trailing pair of the first line counts as a field, so a message whose first line itself
 * ends in name=value pairs would lose them to the fields; tests log messages that do not. Structured metadata wins
 * over the line, as it does in Loki.
 */
export function busEntry(line: string, metadata: Readonly<Record<string, string>> = {}): { message: string; fields: Record<string, string> } {
  const end = line.indexOf("\n");
  let first = end === -1 ? line : line.slice(0, end);
  const fromLine: [string, string][] = [];
  for (let m = TRAILING_PAIR.exec(first); m; m = TRAILING_PAIR.exec(first)) {
    const [pair, name, value] = m as unknown as [string, string, string];
    fromLine.unshift([name, value.startsWith('"') ? (JSON.parse(value) as string) : value]);
    first = first.slice(0, -pair.length);
  }
  // A message whose first line was empty has its pairs at the start, with no space before the first.
  const lead = /^([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)$/.exec(first);
  if (lead && fromLine.length > 0) {
    fromLine.unshift([lead[1] as string, (lead[2] as string).startsWith('"') ? (JSON.parse(lead[2] as string) as string) : (lead[2] as string)]);
    first = "";
  }
  return { message: first + (end === -1 ? "" : line.slice(end)), fields: { ...Object.fromEntries(fromLine), ...metadata } };
}
