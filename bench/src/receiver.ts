/**
 * The benchmark's HTTP sink, a role process of its own (bench/src/pipeline.ts starts it): a decoding receiver, a
 * pass-through proxy in front of the real Loki, or a refusing one. It reads every accepted push's lines for their
 * sequence numbers and publish times, from Loki pushes (our consumer, Promtail) and OTLP requests (the collector).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:http";
import { sinkStats } from "./harness.js";
import { OTLP_LOGS_PATH, scanOtlpLogs } from "./otlp-scan.js";
import { scanPush } from "./push-scan.js";
import { LatencyHistogram, parseMarks, SeqTally } from "./tally.js";
import { nowMs } from "./workload.js";

export const PUSH_PATH = "/loki/api/v1/push";
const PUSH_PATHS = new Set([PUSH_PATH, OTLP_LOGS_PATH]);

/** Calls onLine for each line of a push to `path` (Loki's push API or its OTLP endpoint); throws on a malformed body. */
export function bodyLines(path: string, body: Buffer, headers: IncomingHttpHeaders, onLine: (buf: Buffer, start: number, end: number) => void): void {
  if (path === PUSH_PATH) scanPush(body, onLine);
  else if (path === OTLP_LOGS_PATH) scanOtlpLogs(body, headers, onLine);
  else throw new Error(`no push is read at ${path}; pushes go to ${[...PUSH_PATHS].join(" or ")}`);
}

export type SinkMode = "decode" | "proxy" | "refuse";

/**
 * The HTTP sink pushes go to: Loki's push API, and its OTLP endpoint for the OpenTelemetry Collector. decode: reads
 * each push, counts its entries, answers 204 -- what our pipeline costs without Loki's own cost. proxy: passes each
 * request to the real Loki and counts a push's entries when Loki accepted it. refuse: answers 503 to every push
 * (fault injection: a Loki that is down), to watch the consumer's memory stay bounded. GET /bench/stats answers the
 * counts so far.
 */
export async function receiverRole(mode: SinkMode, expected: number, upstream: string): Promise<void> {
  const tally = new SeqTally(expected);
  const latency = new LatencyHistogram();
  const statuses: Record<string, number> = {};
  let pushes = 0;
  let firstAcceptMs = 0;
  let lastAcceptMs = 0;
  // Marks of the push being handled; counted once the push is accepted.
  const seqs: number[] = [];
  const times: number[] = [];
  const collect = (path: string, body: Buffer, headers: IncomingHttpHeaders): void => {
    seqs.length = 0;
    times.length = 0;
    bodyLines(path, body, headers, (buf, start, end) => {
      const marks = parseMarks(buf, start, end);
      if (!marks) return;
      seqs.push(marks.seq);
      times.push(marks.tMs);
    });
  };
  const settle = (acceptMs: number): void => {
    pushes++;
    if (firstAcceptMs === 0) firstAcceptMs = acceptMs;
    lastAcceptMs = acceptMs;
    for (let i = 0; i < seqs.length; i++) {
      tally.add(seqs[i] as number);
      latency.record(acceptMs - (times[i] as number));
    }
  };
  const reply = (res: ServerResponse, status: number, body = "", type = "text/plain") => {
    statuses[status] = (statuses[status] ?? 0) + 1;
    res.writeHead(status, { "content-type": type }).end(body);
  };
  const readBody = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve(Buffer.concat(chunks)));
      req.on("error", reject);
    });

  const server = createServer((req, res) => {
    void (async () => {
      if (req.url === "/bench/stats") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ...sinkStats(tally, latency, firstAcceptMs, lastAcceptMs), pushes, statuses }));
        return;
      }
      const path = req.url ?? "/";
      if (req.method === "POST" && PUSH_PATHS.has(path)) {
        const body = await readBody(req);
        if (mode === "refuse") return reply(res, 503, "refusing everything (benchmark fault injection)");
        if (mode === "decode") {
          try {
            collect(path, body, req.headers);
          } catch (error) {
            return reply(res, 400, `cannot decode the push: ${(error as Error).message}`);
          }
          const acceptMs = nowMs();
          reply(res, 204);
          settle(acceptMs);
          return;
        }
        const upstreamRes = await fetch(upstream + path, {
          method: "POST",
          body,
          headers: forwardHeaders(req),
          signal: AbortSignal.timeout(30_000),
        }).catch((error: Error) => error);
        if (upstreamRes instanceof Error) return reply(res, 502, `upstream: ${upstreamRes.message}`);
        const acceptMs = nowMs();
        const text = await upstreamRes.text();
        reply(res, upstreamRes.status, text, upstreamRes.headers.get("content-type") ?? "text/plain");
        if (upstreamRes.ok) {
          collect(path, body, req.headers);
          settle(acceptMs);
        }
        return;
      }
      if (mode === "proxy") {
        const upstreamRes = await fetch(upstream + path, { signal: AbortSignal.timeout(10_000) }).catch((error: Error) => error);
        if (upstreamRes instanceof Error) return void res.writeHead(502).end(upstreamRes.message);
        return void res.writeHead(upstreamRes.status).end(Buffer.from(await upstreamRes.arrayBuffer()));
      }
      res.writeHead(req.url === "/ready" ? 200 : 404).end();
    })().catch((error: Error) => {
      if (!res.headersSent) res.writeHead(500).end(error.message);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  process.send?.({ url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}` });
}

function forwardHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of ["content-type", "content-encoding", "user-agent", "x-scope-orgid"]) {
    const value = req.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  return headers;
}
