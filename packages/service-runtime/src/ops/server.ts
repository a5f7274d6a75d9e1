import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export type Checks = Record<string, boolean>;

export interface OpsServerOptions {
  /** Bind address. Services default to 127.0.0.1; containers set 0.0.0.0. */
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  registry: Registry;
  /** Liveness checks for /healthz. Default: none (alive while the process answers). */
  health?: () => Checks;
  /** Readiness checks for /readyz, e.g. bus connected and Loki reachable. Default: same as health. */
  ready?: () => Checks | Promise<Checks>;
}

export interface OpsServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function allPass(checks: Checks): boolean {
  return Object.values(checks).every(Boolean);
}

/** Serves /healthz, /readyz (200 or 503 with each check's result as JSON) and /metrics in Prometheus format. */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const health = options.health ?? (() => ({}));
  const ready = options.ready ?? health;
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { "content-type": type }).end(body);
    };
    const replyChecks = (checks: Checks) =>
      reply(allPass(checks) ? 200 : 503, "application/json", JSON.stringify({ ok: allPass(checks), checks }));
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "text/plain", "method not allowed\n");
    switch (path) {
      case "/healthz":
        return replyChecks(health());
      case "/readyz":
        return void Promise.resolve(ready()).then(replyChecks, (error: Error) => reply(503, "text/plain", `${error.message}\n`));
      case "/metrics":
        return void options.registry.metrics().then(
          (text) => reply(200, options.registry.contentType, text),
          (error: Error) => reply(500, "text/plain", `${error.message}\n`),
        );
      default:
        return reply(404, "text/plain", "not found: try /healthz, /readyz or /metrics\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
