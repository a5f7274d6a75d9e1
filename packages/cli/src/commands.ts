import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { existsSync, readFileSync } from "node:fs";
import { createLogger, KeyFileError } from "@aixcl/client-logger";
import { brokerKeyFiles, generateKeys, listClients, readAllowList, registerClient, revokeClient, stackKeyDirs } from "@aixcl/service-runtime";
import type { Command } from "./args.js";
import { formatDuration } from "./duration.js";
import { AlertmanagerClient } from "./alertmanager.js";
import { formatAlerts, formatEntry, formatSeries } from "./format.js";
import { LokiClient, LokiError } from "./loki.js";
import type { LogEntryOut } from "./loki.js";

export interface Output {
  write(text: string): unknown;
}

export interface CliIO {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
  /** Aborts `logs tail --follow` (Ctrl-C) and waits in `bus test`. */
  signal: AbortSignal;
}

type QueryCommand = Extract<Command, { kind: "query" }>;
type TailCommand = Extract<Command, { kind: "tail" }>;
type BusTestCommand = Extract<Command, { kind: "bus-test" }>;
type KeysCommand = Extract<Command, { kind: "keys" }>;
type KeysListCommand = Extract<Command, { kind: "keys-list" }>;
type KeysRevokeCommand = Extract<Command, { kind: "keys-revoke" }>;
type KeysRegisterCommand = Extract<Command, { kind: "keys-register" }>;
type AlertsCommand = Extract<Command, { kind: "alerts" }>;

export async function runQuery(cmd: QueryCommand, io: CliIO): Promise<number> {
  const loki = new LokiClient(cmd.lokiUrl);
  const end = new Date();
  const result = await loki.queryRange(cmd.logql, { start: new Date(end.getTime() - cmd.since), end, limit: cmd.limit, signal: io.signal });
  if (result.type === "matrix") {
    for (const series of result.series) for (const line of formatSeries(series, cmd.json)) io.stdout.write(`${line}\n`);
    if (result.series.length === 0) io.stderr.write("no series matched\n");
    return 0;
  }
  for (const entry of result.entries) io.stdout.write(`${formatEntry(entry, cmd.json)}\n`);
  if (result.entries.length === 0) io.stderr.write(`no entries in the last ${formatDuration(cmd.since)}\n`);
  else if (result.entries.length === cmd.limit) io.stderr.write(`(newest ${cmd.limit} entries shown; raise --limit or narrow --since for more)\n`);
  return 0;
}

const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30_000;

export async function runTail(cmd: TailCommand, io: CliIO): Promise<number> {
  const loki = new LokiClient(cmd.lokiUrl);
  const end = new Date();
  // The backlog comes from query_range: it validates the query with a readable error before any websocket.
  const backlog = await loki.queryRange(cmd.logql, { start: new Date(end.getTime() - cmd.since), end, limit: cmd.limit, signal: io.signal });
  if (backlog.type !== "streams") {
    throw new LokiError("logs tail needs a log query (a stream selector and filters), not a metric query; use logs query for metrics", 400);
  }
  for (const entry of backlog.entries) io.stdout.write(`${formatEntry(entry, cmd.json)}\n`);
  if (!cmd.follow) return 0;

  // Resume after the newest entry printed; Loki's tail then sends everything from there on, so nothing
  // between the backlog and the live stream is lost, also across reconnects.
  let nextNs = backlog.entries.length > 0 ? (backlog.entries.at(-1) as LogEntryOut).ts + 1n : BigInt(end.getTime()) * 1_000_000n;
  let delay = RECONNECT_MIN_MS;
  io.stderr.write(`following ${cmd.logql} (Ctrl-C to stop)\n`);
  while (!io.signal.aborted) {
    const ended = await loki.tail(
      cmd.logql,
      nextNs,
      (entries) => {
        for (const entry of entries) {
          if (entry.ts < nextNs) continue;
          io.stdout.write(`${formatEntry(entry, cmd.json)}\n`);
          nextNs = entry.ts + 1n;
        }
        delay = RECONNECT_MIN_MS;
      },
      (count) => io.stderr.write(`Loki dropped ${count} entries from the tail (too many for one tail); use logs query for the gap\n`),
      io.signal,
    );
    if (ended.reason === "aborted") break;
    if (!ended.opened && !(await loki.ready())) {
      io.stderr.write(`Loki at ${cmd.lokiUrl} is not reachable; retrying in ${formatDuration(delay)}\n`);
    } else {
      // Loki ends every tail after querier.tail_max_duration (1h by default); reconnecting is routine.
      io.stderr.write(`tail connection ended (${ended.detail}); reconnecting in ${formatDuration(delay)}\n`);
    }
    await sleep(delay, undefined, { signal: io.signal }).catch(() => undefined);
    delay = Math.min(delay * 2, RECONNECT_MAX_MS);
  }
  return 0;
}

/** Where the bus test's entry goes: its own subsystem, so its stream never mixes with real application logs. */
export const BUS_TEST_SUBSYSTEM = "aixcl_cli";
export const BUS_TEST_MODULE = "bus_test";

function tcpReachable(endpoint: string, timeoutMs: number): Promise<string | undefined> {
  const match = /^tcp:\/\/\[?([^\]]+?)\]?:(\d+)$/.exec(endpoint);
  if (!match) return Promise.resolve(`cannot parse ${endpoint}`);
  return new Promise((resolve) => {
    const socket = connect({ host: match[1] as string, port: Number(match[2]), timeout: timeoutMs });
    socket.once("connect", () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve("timed out");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

function busEndpoint(cmd: BusTestCommand, env: NodeJS.ProcessEnv): string {
  if (cmd.endpoint) return cmd.endpoint;
  const host = env.MESSAGE_BUS_HOST || "127.0.0.1";
  return `tcp://${host === "localhost" ? "127.0.0.1" : host}:${env.MESSAGE_BUS_PUB_PORT || 5555}`;
}

/**
 * Whether a subscriber takes every `logs.` message at the broker (its aixcl_broker_log_subscribed gauge); undefined
 * when the broker's /metrics cannot be read (an older broker, or the port not reachable from here).
 */
async function brokerHasLogSubscriber(metricsUrl: string): Promise<boolean | undefined> {
  try {
    const res = await fetch(`${metricsUrl}/metrics`, { signal: AbortSignal.timeout(3000) });
    const text = await res.text();
    const line = text.split("\n").find((l) => l.startsWith('aixcl_broker_log_subscribed{topics="logs."} '));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1)) === 1;
  } catch {
    return undefined;
  }
}

/**
 * Publishes one uniquely tagged entry through the broker and polls Loki until it is there: proves the whole
 * path producer -> broker -> log-consumer -> Loki. Each failure names the hop that failed.
 */
export async function runBusTest(cmd: BusTestCommand, io: CliIO): Promise<number> {
  const started = Date.now();
  const deadline = started + cmd.timeoutMs;
  const endpoint = busEndpoint(cmd, io.env);
  const loki = new LokiClient(cmd.lokiUrl);
  const fail = (message: string) => {
    io.stderr.write(`FAIL: ${message}\n`);
    return 1;
  };

  if (!(await loki.ready())) return fail(`Loki at ${cmd.lokiUrl} is not ready (GET /ready). Check: ./aixcl status`);
  const brokerProblem = await tcpReachable(endpoint, 3000);
  if (brokerProblem) return fail(`the broker is not reachable at ${endpoint} (${brokerProblem}). Check: ./aixcl status`);

  const tag = `bus-test-${randomUUID()}`;
  const logger = createLogger({ subsystem: BUS_TEST_SUBSYSTEM, module: BUS_TEST_MODULE, endpoint, closeTimeoutMs: 5000 });
  io.stderr.write(`publishing ${tag} to ${endpoint} ...\n`);
  // The logger holds entries until the broker asks for logs. (it always does; an older broker only while a
  // consumer subscribes). The broker then keeps them while no consumer takes them: ask it whether one does.
  while (!logger.connected && Date.now() < deadline && !io.signal.aborted) await sleep(50);
  if (!logger.connected) {
    await logger.close();
    return fail(
      `the broker at ${endpoint} accepted the connection, but nobody subscribes to logs. within ${formatDuration(Date.now() - started)}: ` +
        "is the log-consumer running? Check: ./aixcl status; ./aixcl logs log-consumer",
    );
  }
  if ((await brokerHasLogSubscriber(cmd.brokerMetricsUrl)) === false) {
    await logger.close();
    return fail(
      `the broker at ${endpoint} holds log messages: nobody subscribes to logs. (${cmd.brokerMetricsUrl}/metrics, aixcl_broker_log_subscribed). ` +
        "Is the log-consumer running? Check: ./aixcl status; ./aixcl logs log-consumer. What the broker holds reaches Loki once it runs.",
    );
  }
  logger.info(`aixcl bus test ${tag}`, { bus_test_id: tag }, { function: "runBusTest" });
  const stats = await logger.close();
  if (stats.published !== 1) return fail(`the entry could not be handed to the broker (${JSON.stringify(stats.dropped)})`);
  const published = Date.now();
  io.stderr.write(`published; waiting for Loki to return it ...\n`);

  const logql = `{service="${BUS_TEST_SUBSYSTEM}"} |= "${tag}"`;
  let lastError = "";
  while (Date.now() < deadline && !io.signal.aborted) {
    try {
      const result = await loki.queryRange(logql, { start: new Date(started - 60_000), end: new Date(Date.now() + 60_000), limit: 10, signal: io.signal });
      const found = result.type === "streams" ? result.entries.find((e) => e.line.includes(tag)) : undefined;
      if (found) {
        io.stdout.write(
          `OK: ${tag} went producer -> broker (${endpoint}) -> log-consumer -> Loki in ${formatDuration(Date.now() - published)}\n` +
            `    stream ${JSON.stringify(found.labels)}, structured metadata ${JSON.stringify(found.metadata)}\n`,
        );
        return 0;
      }
    } catch (error) {
      if (!(error instanceof LokiError)) throw error;
      lastError = ` (last query error: ${error.message})`;
    }
    await sleep(250, undefined, { signal: io.signal }).catch(() => undefined);
  }
  return fail(
    `the entry reached the broker, but Loki did not return it within ${formatDuration(cmd.timeoutMs)}${lastError}. ` +
      `Query: ${logql}. Check the consumer: ./aixcl logs log-consumer, and its metrics on port 9465 (/metrics)`,
  );
}

/** Paths as the user knows them: ./aixcl runs the keys commands in a container that sees their keys/ elsewhere. */
function shownPath(cmd: { dir: string; shownDir: string }): (path: string) => string {
  return (path) => (path === cmd.dir || path.startsWith(`${cmd.dir}/`) ? `${cmd.shownDir}${path.slice(cmd.dir.length)}` : path);
}

function writeAllowList(cmd: { dir: string; shownDir: string }, io: CliIO): void {
  const { allowList } = brokerKeyFiles(stackKeyDirs(cmd.dir).broker);
  const allowed = readAllowList(allowList).map((client) => client.name);
  io.stdout.write(`allow-list ${shownPath(cmd)(allowList)}: ${allowed.join(", ")}\n`);
}

/** Creates what is missing of the CURVE keys and rewrites the broker's allow-list. */
export function runKeys(cmd: KeysCommand, io: CliIO): number {
  const shown = shownPath(cmd);
  const created = generateKeys(cmd.dir, cmd.clients);
  for (const file of created) io.stdout.write(`created ${shown(file)} (mode 600) and its .pub\n`);
  if (created.length === 0) io.stdout.write(`every key already existed in ${shown(cmd.dir)}; nothing created\n`);
  writeAllowList(cmd, io);
  io.stdout.write(`A client's folder (${shown(stackKeyDirs(cmd.dir).client("<name>"))}) is what its application needs: MESSAGE_BUS_KEYS_DIR.\n`);
  io.stdout.write("The bus requires CurveZMQ from the next start of the broker: ./aixcl restart\n");
  return 0;
}

export function runKeysList(cmd: KeysListCommand, io: CliIO): number {
  const clients = listClients(cmd.dir);
  if (clients.length === 0) {
    io.stderr.write(`no clients in ${shownPath(cmd)(cmd.dir)}; create keys with ./aixcl keys\n`);
    return 0;
  }
  io.stdout.write(`${"CLIENT".padEnd(20)} ${"STATE".padEnd(8)} ${"SECRET".padEnd(11)} PUBLIC KEY\n`);
  for (const c of clients) io.stdout.write(`${c.name.padEnd(20)} ${c.state.padEnd(8)} ${(c.secretHere ? "here" : "registered").padEnd(11)} ${c.publicKey}\n`);
  return 0;
}

export function runKeysRevoke(cmd: KeysRevokeCommand, io: CliIO): number {
  const { publicKey, already } = revokeClient(cmd.dir, cmd.name);
  io.stdout.write(`${already ? "already revoked" : "revoked"}: ${cmd.name} (${publicKey}), listed in ${shownPath(cmd)(stackKeyDirs(cmd.dir).revoked)}\n`);
  writeAllowList(cmd, io);
  io.stdout.write(`A new key pair for ${cmd.name}, if it is to come back: ./aixcl keys ${cmd.name}\n`);
  return 0;
}

/** The key itself (Z85, 40 characters) or a file holding it. */
function publicKeyArgument(arg: string): string {
  if (arg.length === 40 || !existsSync(arg)) return arg;
  return readFileSync(arg, "utf8").trim();
}

export function runKeysRegister(cmd: KeysRegisterCommand, io: CliIO): number {
  const key = publicKeyArgument(cmd.publicKey);
  if (key.length !== 40) throw new KeyFileError(cmd.publicKey, "neither a 40-character Z85 public key nor a file holding one");
  registerClient(cmd.dir, cmd.name, key);
  io.stdout.write(`registered ${cmd.name} (${key}); its folder ${shownPath(cmd)(stackKeyDirs(cmd.dir).client(cmd.name))} holds the broker's public key for it\n`);
  writeAllowList(cmd, io);
  return 0;
}

/** Lists what Alertmanager has firing; silenced and inhibited alerts are only counted. */
export async function runAlerts(cmd: AlertsCommand, io: CliIO): Promise<number> {
  const all = await new AlertmanagerClient(cmd.alertmanagerUrl).alerts(io.signal);
  const firing = all.filter((a) => a.state !== "suppressed");
  for (const line of formatAlerts(firing, Date.now(), cmd.json)) {
    if (cmd.json || firing.length > 0) io.stdout.write(`${line}\n`);
  }
  if (firing.length === 0) io.stderr.write(`no alerts firing (${cmd.alertmanagerUrl})\n`);
  const suppressed = all.length - firing.length;
  if (suppressed > 0) io.stderr.write(`${suppressed} more silenced or inhibited, not shown (Alertmanager's web UI lists them)\n`);
  return 0;
}
