/**
 * Real processes for the fault tests: the consumer and the broker as the built entry points (what `npm run consumer`
 * / `npm run broker` and the images run), a real Loki that can be stopped and started again on the same address
 * and data, and an application logging numbered lines at a steady rate through the shared logger.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Publisher } from "zeromq";
import type { Logger } from "@aixcl/client-logger";
import { createLogger } from "@aixcl/client-logger";
import type { LokiHandle, LokiStream, WireFormat } from "@aixcl/testkit";
import { freePort, logMessage, queryAll, queryInstant, startLoki, tempDir } from "@aixcl/testkit";

const consumerMain = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const brokerMain = fileURLToPath(new URL("../../broker/dist/main.js", import.meta.url));

/** These tests run the build, not the sources: `npm test` builds first; alone, `npx tsc -b services/log-consumer services/broker`. */
export function requireBuilt(): void {
  for (const file of [consumerMain, brokerMain]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npx tsc -b services/log-consumer services/broker\` first`);
  }
}

/** Processes and servers to end after each test, newest first. */
export const cleanups: (() => Promise<unknown> | unknown)[] = [];
export async function runCleanups(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

/** A service process whose stdout is JSON lines (serviceLog). */
export class ServiceProcess {
  readonly lines: Record<string, unknown>[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private stderr = "";
  private readonly waiters: { test: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];

  constructor(main: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [main], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let buffer = "";
    this.child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const line = JSON.parse(text) as Record<string, unknown>;
        this.lines.push(line);
        for (const w of this.waiters.filter((x) => x.test(line))) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
    this.child.stderr?.on("data", (chunk: Buffer) => (this.stderr += chunk.toString("utf8")));
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
    cleanups.push(async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        this.child.kill("SIGKILL");
        await this.exited;
      }
      if (this.stderr.trim() !== "") console.error(this.stderr);
    });
  }

  /** The first log line (already seen or still to come) with this msg. */
  line(msg: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const seen = this.lines.find((l) => l.msg === msg);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${msg}" log line within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ test: (l) => l.msg === msg, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

export class ConsumerProcess extends ServiceProcess {
  /** Runs dist/main.js with the config file; resolves once its ops server listens. */
  static async start(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<ConsumerProcess> {
    const consumer = new ConsumerProcess(consumerMain, { ...env, LOG_CONSUMER_CONFIG: configFile });
    const started = await Promise.race([consumer.line("log consumer started"), consumer.exited.then((code) => ({ exited: code }))]);
    if ("exited" in started) throw new Error(`the consumer exited with ${started.exited}: ${JSON.stringify(consumer.lines)}`);
    consumer.opsUrl = String(started.ops);
    return consumer;
  }

  opsUrl = "";

  /** Every sample of /metrics: `name{labels}` (as printed) -> value. */
  async scrape(): Promise<Map<string, number>> {
    const text = await (await fetch(`${this.opsUrl}/metrics`)).text();
    const samples = new Map<string, number>();
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const at = line.lastIndexOf(" ");
      samples.set(line.slice(0, at), Number(line.slice(at + 1)));
    }
    return samples;
  }

  /** Sum of a metric over its label values. */
  async metric(name: string): Promise<number> {
    let sum = 0;
    for (const [key, value] of await this.scrape()) if (key === name || key.startsWith(`${name}{`)) sum += value;
    return sum;
  }
}

export interface BrokerPorts {
  pub: number;
  sub: number;
  metrics: number;
}

export async function brokerPorts(): Promise<BrokerPorts> {
  return { pub: await freePort(), sub: await freePort(), metrics: await freePort() };
}

export interface BrokerOptions {
  keysDir?: string;
  /** broker.backlog settings (the section is left out when not given, so an older broker accepts the file). */
  backlog?: { dir?: string; max_bytes?: string };
}

export class BrokerProcess extends ServiceProcess {
  /** The broker's dist/main.js on the given ports; resolves once it is bound. */
  static async start(ports: BrokerPorts, options: BrokerOptions = {}): Promise<BrokerProcess> {
    const file = join(tempDir("broker"), "message_bus.yaml");
    const broker = { metrics_port: ports.metrics, ...(options.backlog && { backlog: options.backlog }) };
    writeFileSync(file, JSON.stringify({ host: "127.0.0.1", pub_port: ports.pub, sub_port: ports.sub, keys_dir: options.keysDir ?? "", broker }));
    const child = new BrokerProcess(brokerMain, { MESSAGE_BUS_CONFIG: file });
    const started = await Promise.race([child.line("broker started"), child.exited.then((code) => ({ exited: code }))]);
    if ("exited" in started) throw new Error(`the broker exited with ${started.exited}: ${JSON.stringify(child.lines)}`);
    child.opsUrl = `http://127.0.0.1:${ports.metrics}`;
    return child;
  }

  opsUrl = "";

  /** A sample of its /metrics, exactly as exposed (name with labels); 0 when absent. */
  async metric(sample: string): Promise<number> {
    const text = await (await fetch(`${this.opsUrl}/metrics`)).text();
    const line = text.split("\n").find((l) => l.slice(0, l.lastIndexOf(" ")) === sample);
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
  }
}

/**
 * The real Loki behind a fixed address, stoppable and startable again with its data: the testkit starts Loki on
 * fresh ports, so a plain TCP forwarder keeps the address the consumer knows. While Loki is stopped the forwarder
 * does not listen either, so the consumer sees what it would see with Loki gone: connection refused.
 */
export class RestartableLoki {
  private loki: LokiHandle | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly dataDir: string,
  ) {}

  /** Call down() when done (it is not in `cleanups`: one Loki usually serves a whole test file); its data dir goes with the test file. */
  static async start(): Promise<RestartableLoki> {
    const dataDir = tempDir("loki-data");
    const loki = new RestartableLoki(await freePort(), dataDir);
    await loki.up();
    return loki;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The Loki process now running (for queries); throws while stopped. */
  get handle(): LokiHandle {
    if (!this.loki) throw new Error("Loki is stopped");
    return this.loki;
  }

  async up(): Promise<void> {
    mkdirSync(join(this.dataDir, "chunks"), { recursive: true });
    // Later flags win over the ones the testkit sets: our data directory survives a stop.
    this.loki = await startLoki({
      args: [
        `-common.path-prefix=${this.dataDir}`,
        `-common.storage.filesystem.chunk-directory=${join(this.dataDir, "chunks")}`,
        `-common.storage.filesystem.rules-directory=${join(this.dataDir, "rules")}`,
      ],
    });
    const target = this.loki.httpPort;
    this.server = createServer((client) => {
      const upstream = connect(target, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
  }

  /** Stops Loki (SIGTERM: it flushes its WAL) and refuses connections until up(). */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    // close() waits for open connections, so they go first.
    const closed = server && new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    await this.loki?.stop();
    this.loki = undefined;
  }

  /** A LogQL metric query at now: the result vector's samples by their labels. */
  instant(logql: string): Promise<{ metric: Record<string, string>; value: number }[]> {
    return queryInstant(this.handle.url, logql);
  }

  /** Every entry a log query selects in the last `hours`, paging through Loki's 5000-entry limit. */
  all(logql: string, hours = 1): Promise<LokiStream["values"]> {
    return queryAll(this.handle.url, logql, hours);
  }

  /** A Loki /metrics sample summed over its label values. */
  async lokiMetric(name: string): Promise<number> {
    const text = await (await fetch(`${this.handle.url}/metrics`)).text();
    let sum = 0;
    for (const line of text.split("\n")) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    return sum;
  }
}

/**
 * Numbered lines: `seq=<n> blk=<n div 1000> ...`; blk lets LogQL count each thousand. The rest looks like a request
 * log with a random id, so it compresses about as well as real logs do (not as well as repeated padding would).
 */
export function numberedLine(n: number): string {
  return `seq=${n} blk=${Math.floor(n / 1000)} request_id=${randomBytes(8).toString("hex")} msg="handled request" path=/v1/items/${n % 977} status=200 took_ms=${n % 313}`;
}

export function seqOfLine(line: string): number {
  const m = /^seq=(\d+) /.exec(line);
  if (!m) throw new Error(`not a numbered line: ${line.slice(0, 60)}`);
  return Number(m[1]);
}

/** Something sending numbered lines at a steady rate: the shared logger, or a plain PUB socket. */
export interface SteadySource {
  /** The Loki service label its lines get (its subsystem). */
  readonly service: string;
  /** Lines sent so far; the next line's sequence number. */
  readonly next: number;
  /** Stops sending (and flushes); returns how many lines were sent. */
  stop(): Promise<number>;
}

/** An application logging numbered lines through the shared logger at `rate` lines/s until stopped. */
export class SteadyLogger implements SteadySource {
  readonly logger: Logger;
  /** Lines logged so far; the next line's sequence number. */
  next = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly startedMs = Date.now();
  private stopped = false;

  constructor(endpoint: string, readonly service: string, readonly rate: number) {
    this.logger = createLogger({ subsystem: service, module: "seq", endpoint, maxBuffered: 1_000_000, maxBufferedBytes: 256 * 1024 ** 2, closeTimeoutMs: 10_000 });
    // Catch up to the rate on every tick, so a busy event loop changes the burst size, not the total.
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - this.startedMs) * rate) / 1000);
      while (!this.stopped && this.next < due) this.logger.info(numberedLine(this.next++));
    }, 10);
    cleanups.push(() => this.stop());
  }

  /** Stops logging and flushes; returns how many lines were logged. */
  async stop(): Promise<number> {
    if (!this.stopped) {
      this.stopped = true;
      clearInterval(this.timer);
      const stats = await this.logger.close();
      if (stats.dropped.buffer_full > 0) throw new Error(`the logger dropped ${stats.dropped.buffer_full} lines (buffer full)`);
    }
    return this.next;
  }
}

/**
 * An application publishing numbered lines at `rate` lines/s through a plain ZeroMQ PUB socket, as AICO's services
 * do: it knows nothing of the hold handshake, and its socket drops what no subscription it has seen asks for.
 */
export class SteadyPublisher implements SteadySource {
  next = 0;
  private readonly socket: Publisher;
  private timer: NodeJS.Timeout | undefined;
  private startedMs = Date.now();
  private sending = false;
  private stopped = false;

  constructor(endpoint: string, readonly service: string, readonly rate: number, readonly format: WireFormat) {
    // AICO's high-water mark; linger so a stop delivers what is queued.
    this.socket = new Publisher({ sendHighWaterMark: 10_000, linger: 2000 });
    // A PUB socket drops what it sends before it knows a subscription: the first lines would be lost to its own
    // start, not to the fault a test looks at. It learns the broker's in the handshake; sending starts a little after.
    this.socket.events.on("handshake", () => {
      if (this.timer || this.stopped) return;
      this.timer = setTimeout(() => {
        if (this.stopped) return;
        this.startedMs = Date.now();
        this.timer = setInterval(() => void this.tick(), 10);
      }, 50);
    });
    this.socket.connect(endpoint);
    cleanups.push(() => this.stop());
  }

  private async tick(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    const due = Math.floor(((Date.now() - this.startedMs) * this.rate) / 1000);
    while (!this.stopped && this.next < due) {
      const n = this.next++;
      await this.socket.send(logMessage(this.format, this.service, "seq", numberedLine(n)));
    }
    this.sending = false;
  }

  async stop(): Promise<number> {
    if (!this.stopped) {
      this.stopped = true;
      clearInterval(this.timer);
      while (this.sending) await sleep(5);
      this.socket.close();
    }
    return this.next;
  }
}

/** Sequence numbers in `values`, with how often each occurs. */
export function countSeqs(values: LokiStream["values"]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const [, line] of values) {
    const seq = seqOfLine(line);
    counts.set(seq, (counts.get(seq) ?? 0) + 1);
  }
  return counts;
}

/** Sequence numbers below `total` that are not in `counts`. */
export function missing(counts: Map<number, number>, total: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < total; n++) if (!counts.has(n)) out.push(n);
  return out;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 3, 7..9 -> "3, 7..9" */
export function ranges(seqs: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < seqs.length; ) {
    let j = i;
    while (j + 1 < seqs.length && seqs[j + 1] === (seqs[j] as number) + 1) j++;
    parts.push(i === j ? `${seqs[i]}` : `${seqs[i]}..${seqs[j]}`);
    i = j + 1;
  }
  return parts.join(", ") || "none";
}

/** Waits until Loki's count of the service's lines stops changing (or reaches `expected`), then returns them all. */
export async function settledSeqs(loki: RestartableLoki, service: string, expected: number, timeoutMs = 60_000): Promise<Map<number, number>> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let stableSince = Date.now();
  for (;;) {
    const [sample] = await loki.instant(`sum(count_over_time({service="${service}"}[1h]))`);
    const count = sample?.value ?? 0;
    if (count !== last) {
      last = count;
      stableSince = Date.now();
    }
    if (count >= expected || Date.now() - stableSince > 3000 || Date.now() > deadline) break;
    await sleep(500);
  }
  return countSeqs(await loki.all(`{service="${service}"}`));
}
