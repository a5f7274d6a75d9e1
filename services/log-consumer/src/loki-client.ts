import type { IncomingMessage, RequestOptions } from "node:http";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { EncodedPush } from "./encode.js";
import type { LokiCredentials } from "./loki-auth.js";
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
  /** Base URL without user info, e.g. http://127.0.0.1:3100 (a path prefix is kept, for reverse proxies). */
  url: string;
  /** Sent as the Authorization header of every request; read again after a 401 or 403. */
  credentials?: LokiCredentials | undefined;
  /** CA certificates (PEM) trusted for an https:// URL instead of the system's. */
  ca?: Buffer | undefined;
  /** Sent as X-Scope-OrgID when Loki runs with auth_enabled: true. */
  tenantId?: string | undefined;
  /** Per attempt, from sending the request to reading the whole response. */
  timeoutMs: number;
  /** Keep-alive connections: one per push allowed in flight. */
  connections: number;
}

interface Response {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}

async function readCapped(body: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size < MAX_BODY_BYTES) chunks.push(chunk.subarray(0, MAX_BODY_BYTES - size));
    size += chunk.length;
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Loki's HTTP API over Node's own HTTP client with keep-alive agents. Not undici: Node's client parses with the
 * llhttp built into the binary, where undici loads its own as WebAssembly, ~29 MB of the consumer's RSS for the
 * same requests.
 */
export class LokiClient implements PushClient {
  private readonly agent: HttpAgent;
  /** Its own connection, so /readyz is not stuck behind slow pushes. */
  private readonly probeAgent: HttpAgent;
  private readonly request: typeof httpRequest;
  private readonly url: URL;
  private readonly basePath: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly options: LokiClientOptions) {
    this.url = new URL(options.url);
    const tls = this.url.protocol === "https:";
    const Agent = tls ? HttpsAgent : HttpAgent;
    this.request = tls ? (httpsRequest as typeof httpRequest) : httpRequest;
    const trust = tls && options.ca ? { ca: options.ca } : {};
    this.agent = new Agent({ keepAlive: true, maxSockets: options.connections, keepAliveMsecs: 30_000, ...trust });
    this.probeAgent = new Agent({ keepAlive: true, maxSockets: 1, ...trust });
    this.basePath = this.url.pathname.replace(/\/+$/, "");
    this.headers = { "user-agent": "aixcl-log-consumer" };
    if (options.tenantId) this.headers["x-scope-orgid"] = options.tenantId;
  }

  /** The fixed headers and the current Authorization header. */
  private requestHeaders(): Record<string, string> {
    const authorization = this.options.credentials?.header();
    return authorization === undefined ? this.headers : { ...this.headers, authorization };
  }

  /** One request; rejects on a connection error or when the signal aborts, before or during the response. */
  private send(agent: HttpAgent, options: RequestOptions, body: Uint8Array | undefined, signal: AbortSignal): Promise<Response> {
    return new Promise((resolve, reject) => {
      const req = this.request({ protocol: this.url.protocol, hostname: this.url.hostname, port: this.url.port, agent, signal, ...options }, (res) => {
        readCapped(res).then((text) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }), reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  async push(encoded: EncodedPush, signal: AbortSignal): Promise<PushResult> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    try {
      const response = await this.send(
        this.agent,
        {
          path: this.basePath + PUSH_PATH,
          method: "POST",
          headers: { ...this.requestHeaders(), "content-type": encoded.contentType, "content-length": encoded.body.length },
        },
        encoded.body,
        AbortSignal.any([signal, timeout]),
      );
      // Refused credentials: a rotated secret file may hold new ones by the next attempt.
      if (response.status === 401 || response.status === 403) this.options.credentials?.reload();
      const retryAfter = response.headers["retry-after"];
      return { kind: "response", status: response.status, body: response.body, retryAfterMs: parseRetryAfter(retryAfter, Date.now()) };
    } catch (error) {
      return { kind: "error", timedOut: timeout.aborted, message: (error as Error).message };
    }
  }

  /** True when Loki's /ready answers 200 within the timeout. */
  async ready(timeoutMs: number): Promise<boolean> {
    try {
      const response = await this.send(this.probeAgent, { path: `${this.basePath}/ready`, method: "GET", headers: this.requestHeaders() }, undefined, AbortSignal.timeout(timeoutMs));
      return response.status === 200;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.probeAgent.destroy();
  }
}
