/**
 * A FAULT-INJECTING RECEIVER: a hand-written stand-in for Loki's push endpoint that answers what a test scripts
 * (429, 5xx, slow answers, partial 400s, nothing at all). It is only for fault injection; tests that claim to
 * push to Loki use the real Loki binary. It decodes bodies the way Loki does (snappy raw block + protobuf
 * PushRequest, or JSON) and records what a real Loki would have written.
 */
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { uncompressSync } from "snappy";
import { PushRequestType } from "./push-proto.js";

export interface ReceivedEntry {
  labels: string;
  timestampNs: bigint;
  line: string;
  metadata: Record<string, string>;
}

export interface ReceivedPush {
  /** 1-based number of the request. */
  readonly number: number;
  readonly contentType: string;
  readonly entries: readonly ReceivedEntry[];
}

/** What to answer. `write` says which entries a real Loki would have stored (default: all for 2xx, none else). */
export interface Reply {
  status: number;
  body?: string;
  headers?: Record<string, string>;
  /** Answer this much later (the client may time out first; what was written stays written). */
  delayMs?: number;
  /** Entries stored by this request; for a partial 400, the accepted ones. */
  write?: readonly ReceivedEntry[];
}

export type Script = (push: ReceivedPush) => Reply;

interface WirePush {
  streams: {
    labels: string;
    entries: { timestamp?: { seconds?: number; nanos?: number }; line: string; structuredMetadata?: { name: string; value: string }[] }[];
  }[];
}

interface JsonPush {
  streams: { stream: Record<string, string>; values: [string, string, Record<string, string>?][] }[];
}

function decode(contentType: string, body: Buffer): ReceivedEntry[] {
  if (contentType === "application/x-protobuf") {
    const raw = uncompressSync(body) as Buffer;
    const push = PushRequestType.toObject(PushRequestType.decode(raw), { longs: Number, defaults: true }) as WirePush;
    return push.streams.flatMap((s) =>
      s.entries.map((e) => ({
        labels: s.labels,
        timestampNs: BigInt(e.timestamp?.seconds ?? 0) * 1_000_000_000n + BigInt(e.timestamp?.nanos ?? 0),
        line: e.line,
        metadata: Object.fromEntries((e.structuredMetadata ?? []).map((p) => [p.name, p.value])),
      })),
    );
  }
  if (contentType === "application/json") {
    const push = JSON.parse(body.toString("utf8")) as JsonPush;
    return push.streams.flatMap((s) => {
      const labels = `{${Object.entries(s.stream)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(", ")}}`;
      return s.values.map(([ts, line, metadata]) => ({ labels, timestampNs: BigInt(ts), line, metadata: metadata ?? {} }));
    });
  }
  throw new Error(`unsupported content type ${contentType}`);
}

export class FaultInjectingReceiver {
  /** Every request, in arrival order. */
  readonly pushes: ReceivedPush[] = [];
  /** What a real Loki would have stored, in order (duplicates included). */
  readonly written: ReceivedEntry[] = [];
  /** Requests whose client went away before the answer (timeouts). */
  readonly abandoned: ReceivedPush[] = [];
  /** Most requests seen under way at the same time. */
  maxConcurrent = 0;
  private concurrent = 0;
  script: Script = () => ({ status: 204 });

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** Listens on 127.0.0.1:`port` (0 = any free port). */
  static async start(port = 0): Promise<FaultInjectingReceiver> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    const receiver = new FaultInjectingReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on("request", (req, res) => void receiver.handle(req, res));
    return receiver;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === "GET" && req.url === "/ready") {
      res.writeHead(200).end("ready\n");
      return;
    }
    if (req.method !== "POST" || req.url !== "/loki/api/v1/push") {
      res.writeHead(404).end();
      return;
    }
    this.maxConcurrent = Math.max(this.maxConcurrent, ++this.concurrent);
    try {
      await this.handlePush(req, res);
    } finally {
      this.concurrent--;
    }
  }

  private async handlePush(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const contentType = req.headers["content-type"] ?? "";
    let entries: ReceivedEntry[];
    try {
      entries = decode(contentType, Buffer.concat(chunks));
    } catch (error) {
      res.writeHead(400).end(`cannot decode push body: ${(error as Error).message}`);
      return;
    }
    const push: ReceivedPush = { number: this.pushes.length + 1, contentType, entries };
    this.pushes.push(push);
    const reply = this.script(push);
    this.written.push(...(reply.write ?? (reply.status < 300 ? entries : [])));
    let gone = false;
    res.on("close", () => {
      if (!res.writableFinished) gone = true;
    });
    if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
    if (gone || res.destroyed) {
      this.abandoned.push(push);
      return;
    }
    res.writeHead(reply.status, reply.headers).end(reply.body ?? "");
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** A 400 body as Loki's distributor writes it: identical messages grouped, groups joined by "; " (GroupedErrors). */
export function lokiGroupedErrors(messages: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const m of messages) counts.set(m, (counts.get(m) ?? 0) + 1);
  return [...counts]
    .map(([message, n]) => (counts.size > 1 || n > 1 ? `${n} errors like: ${message}` : message))
    .join("; ");
}
