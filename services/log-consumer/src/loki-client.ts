import { Pool } from "undici";
import type { EncodedPush } from "./encode.js";
import type { PushResult } from "./retry.js";
import { parseRetryAfter } from "./retry.js";

export const PUSH_PATH = "/loki/api/v1/push";

/** Loki's error bodies are short; a longer one is cut so a misbehaving server cannot make us buffer it all. */
const MAX_BODY_BYTES = 256 * 1024;

/** The sender's view of Loki: one push attempt, never throwing. */
export interface PushClient {
  push(encoded: EncodedPush, signal: AbortSignal): Promise<PushResult>;
}

export interface LokiClientOptions {
  /** Base URL, e.g. http://127.0.0.1:3100 (a path prefix is kept, for reverse proxies). */
  url: string;
  /** Sent as X-Scope-OrgID when Loki runs with auth_enabled: true. */
  tenantId?: string | undefined;
  /** Per attempt, from sending the request to reading the whole response. */
  timeoutMs: number;
  /** Keep-alive connections: one per push allowed in flight. */
  connections: number;
}

async function readCapped(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < MAX_BODY_BYTES) chunks.push(chunk.subarray(0, MAX_BODY_BYTES - size));
    size += chunk.length;
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Loki's HTTP API over an undici keep-alive pool. */
export class LokiClient implements PushClient {
  private readonly pool: Pool;
  /** Its own connection, so /readyz is not stuck behind slow pushes. */
  private readonly probe: Pool;
  private readonly basePath: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly options: LokiClientOptions) {
    const url = new URL(options.url);
    this.pool = new Pool(url.origin, { connections: options.connections, keepAliveTimeout: 30_000 });
    this.probe = new Pool(url.origin, { connections: 1 });
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.headers = { "user-agent": "aixcl-log-consumer" };
    if (options.tenantId) this.headers["x-scope-orgid"] = options.tenantId;
  }

  async push(encoded: EncodedPush, signal: AbortSignal): Promise<PushResult> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    try {
      const response = await this.pool.request({
        path: this.basePath + PUSH_PATH,
        method: "POST",
        headers: { ...this.headers, "content-type": encoded.contentType },
        body: encoded.body,
        signal: AbortSignal.any([signal, timeout]),
      });
      const body = await readCapped(response.body);
      const retryAfter = response.headers["retry-after"];
      return {
        kind: "response",
        status: response.statusCode,
        body,
        retryAfterMs: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, Date.now()),
      };
    } catch (error) {
      return { kind: "error", timedOut: timeout.aborted, message: (error as Error).message };
    }
  }

  /** True when Loki's /ready answers 200 within the timeout. */
  async ready(timeoutMs: number): Promise<boolean> {
    try {
      const response = await this.probe.request({
        path: `${this.basePath}/ready`,
        method: "GET",
        headers: this.headers,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body.dump();
      return response.statusCode === 200;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.destroy(), this.probe.destroy()]);
  }
}
