import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { tempDir } from "./process.js";

/** A throwaway CA (its PEM file, for a client's ca_file) and a server key and certificate it signed. */
export interface TestCertificates {
  caFile: string;
  key: Buffer;
  cert: Buffer;
}

/**
 * Makes a CA and a one-day server certificate it signs for `subjectAltName` (e.g. "IP:127.0.0.1",
 * "DNS:host.docker.internal"), with the openssl command, in a fresh temp dir.
 */
export function testCertificates(subjectAltName: string): TestCertificates {
  const dir = tempDir("tls");
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  const cn = subjectAltName.replace(/^(IP|DNS):/, "");
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=aixcl test CA", "-keyout", f("ca.key"), "-out", f("ca.pem"));
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-keyout", f("server.key"), "-out", f("server.csr"));
  writeFileSync(f("san.ext"), `subjectAltName=${subjectAltName}\n`);
  openssl("x509", "-req", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", f("san.ext"), "-out", f("server.pem"));
  return { caFile: f("ca.pem"), key: readFileSync(f("server.key")), cert: readFileSync(f("server.pem")) };
}

/** A request the checking proxy saw: its path and its Authorization header. */
export interface SeenRequest {
  path: string;
  authorization: string | undefined;
}

export interface CheckingProxy {
  url: string;
  port: number;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A hand-written reverse proxy, standing in for the authenticating gateway a remote Loki sits behind: answers 401
 * unless a request's Authorization header is `authorization`, else forwards it to `target` (a real Loki) and its
 * answer back. HTTPS with `tls`, on `host` (default 127.0.0.1). Records every request it saw.
 */
export async function checkingProxy(target: string, authorization: string, opts: { tls?: { key: Buffer; cert: Buffer }; host?: string } = {}): Promise<CheckingProxy> {
  const seen: SeenRequest[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ path: req.url ?? "", authorization: req.headers.authorization });
    if (req.headers.authorization !== authorization) {
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": 'Basic realm="loki"' }).end("401 Unauthorized\n");
      return;
    }
    const { authorization: _checked, host: _host, ...headers } = req.headers;
    const upstream = httpRequest(`${target}${req.url ?? "/"}`, { method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", (error) => res.writeHead(502).end(error.message));
    req.pipe(upstream);
  };
  const server = opts.tls ? createHttpsServer(opts.tls, handler) : createHttpServer(handler);
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${opts.tls ? "https" : "http"}://${host}:${port}`,
    port,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
