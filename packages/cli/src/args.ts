import { parseDuration } from "./duration.js";

/**
 * Argument parsing for the TypeScript subcommands of ./aixcl. Pure: no I/O, so ./aixcl's forwarding and the
 * docs test can check a command line without running it.
 */

export const DEFAULT_LOKI_URL = "http://127.0.0.1:3100";
export const DEFAULT_ALERTMANAGER_URL = "http://127.0.0.1:9093";
/** Every container Promtail follows: what `logs tail` shows when no query is given. */
export const DEFAULT_TAIL_QUERY = '{job="containers"}';
export const DEFAULT_QUERY_LIMIT = 100;
/** Loki's default limits_config.max_entries_limit_per_query. */
export const MAX_LIMIT = 5000;
export const DEFAULT_SINCE_MS = 3_600_000;
export const DEFAULT_BUS_TEST_TIMEOUT_MS = 30_000;
/** The stack's own bus clients, which always get keys so the stack keeps working once CURVE is on. */
export const STACK_KEY_CLIENTS = ["log-consumer", "cli"] as const;
export const DEFAULT_KEYS_DIR = "keys";
const CLIENT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export interface OutputOptions {
  lokiUrl: string;
  since: number;
  limit: number;
  json: boolean;
}

export type Command =
  | { kind: "help" }
  | ({ kind: "query"; logql: string } & OutputOptions)
  | ({ kind: "tail"; logql: string; follow: boolean } & OutputOptions)
  | { kind: "bus-test"; lokiUrl: string; timeoutMs: number; endpoint: string | undefined; brokerMetricsUrl: string }
  | { kind: "keys"; dir: string; clients: string[]; shownDir: string }
  | { kind: "keys-list"; dir: string; shownDir: string }
  | { kind: "keys-revoke"; dir: string; name: string; shownDir: string }
  | { kind: "keys-register"; dir: string; name: string; publicKey: string; shownDir: string }
  | { kind: "alerts"; alertmanagerUrl: string; json: boolean };

/** A command line that cannot be run; the message says what is wrong and how to do it right. */
export class UsageError extends Error {
  override name = "UsageError";
}

export const USAGE = `Usage:
  logs query <LogQL> [--since <duration>] [--limit <n>] [--json]
      Run a LogQL query (log or metric) over the last <duration> (default 1h) and print the result,
      oldest first. Log queries print the newest <n> entries (default ${DEFAULT_QUERY_LIMIT}, at most ${MAX_LIMIT}).
  logs tail [<LogQL>] [--follow] [--since <duration>] [--limit <n>] [--json]
      Print the newest <n> entries of a log query (default ${DEFAULT_TAIL_QUERY}); with --follow (-f), keep
      streaming new entries until Ctrl-C.
  bus test [--timeout <duration>] [--bus <endpoint>] [--broker-metrics <url>]
      Publish a uniquely tagged LogEntry through the broker and wait until Loki returns it (default 30s).
      Exit status 0 when it arrived, 1 otherwise.
  alerts [--json] [--alertmanager <url>]
      List the alerts firing in Alertmanager, oldest first: service, alert, since when, summary. Silenced and
      inhibited alerts are counted, not listed. Default URL: $ALERTMANAGER_URL, else ${DEFAULT_ALERTMANAGER_URL}.
  keys [<client>...] [--dir <path>] [--show-dir <path>]
      Create CurveZMQ key pairs for the broker, the stack's clients (${STACK_KEY_CLIENTS.join(", ")}) and each
      named client, secret files mode 0600, and the broker's allow-list. Existing keys are kept.
      Default folder: $MESSAGE_BUS_KEYS_DIR, else ./${DEFAULT_KEYS_DIR}. The stack requires CURVE once it exists.
      --show-dir: how messages name the folder (./aixcl runs this in a container that sees ./keys elsewhere).
  keys list [--dir <path>]
      The clients in the keys folder: name, state (allowed or revoked), where the secret is, public key.
  keys revoke <client> [--dir <path>]
      Put the client's public key on revoked_clients and off the allow-list, for good: later keys runs keep it
      out. keys <client> then makes it a new pair (rotation).
  keys register <client> <public-key> [--dir <path>]
      Admit a client by a public key it made itself (Z85, 40 characters, or a file holding it): its secret
      never leaves its machine.
  help

Options for every command: --loki <url> (default $LOKI_URL, else ${DEFAULT_LOKI_URL}).
Durations: 30s, 15m, 1h, 1h30m, 7d. --bus defaults to tcp://$MESSAGE_BUS_HOST:$MESSAGE_BUS_PUB_PORT, else tcp://127.0.0.1:5555;
--broker-metrics (where bus test asks whether a consumer subscribes) to http://$MESSAGE_BUS_HOST:$MESSAGE_BUS_METRICS_PORT,
else http://127.0.0.1:9464.`;

interface Spec {
  /** Options taking a value. */
  values: string[];
  /** Boolean flags, with their short aliases. */
  flags: Record<string, string>;
  /** Positional arguments: [required, optional]. */
  positional: [number, number];
}

const SPECS: Record<"query" | "tail" | "bus-test" | "keys" | "alerts", Spec> = {
  query: { values: ["--since", "--limit", "--loki"], flags: { "--json": "--json" }, positional: [1, 0] },
  tail: {
    values: ["--since", "--limit", "--loki"],
    flags: { "--json": "--json", "--follow": "--follow", "-f": "--follow" },
    positional: [0, 1],
  },
  "bus-test": { values: ["--timeout", "--bus", "--loki", "--broker-metrics"], flags: {}, positional: [0, 0] },
  keys: { values: ["--dir", "--show-dir"], flags: {}, positional: [0, 64] },
  alerts: { values: ["--alertmanager"], flags: { "--json": "--json" }, positional: [0, 0] },
};

const NAMES: Record<keyof typeof SPECS, string> = { query: "logs query", tail: "logs tail", "bus-test": "bus test", keys: "keys", alerts: "alerts" };

interface Parsed {
  values: Map<string, string>;
  flags: Set<string>;
  positional: string[];
}

function parseOptions(kind: keyof typeof SPECS, args: string[]): Parsed {
  const spec = SPECS[kind];
  const name = NAMES[kind];
  const out: Parsed = { values: new Map(), flags: new Set(), positional: [] };
  let onlyPositional = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (onlyPositional || !arg.startsWith("-") || arg === "-") {
      out.positional.push(arg);
      continue;
    }
    if (arg === "--") {
      onlyPositional = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    if (spec.values.includes(key)) {
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined || value === "") throw new UsageError(`${name}: ${key} needs a value`);
      out.values.set(key, value);
    } else if (spec.flags[key] !== undefined && eq < 0) {
      out.flags.add(spec.flags[key]);
    } else {
      const known = [...spec.values, ...Object.keys(spec.flags)];
      throw new UsageError(`${name}: unknown option ${key}${known.length ? ` (options: ${known.join(", ")})` : " (it takes no options)"}`);
    }
  }
  const [required, optional] = spec.positional;
  if (out.positional.length < required) throw new UsageError(`${name}: the LogQL query is missing, e.g. ${name} '{service="loki"} |= "error"'`);
  if (out.positional.length > required + optional) {
    const extra = out.positional[required + optional] as string;
    throw new UsageError(
      required + optional === 0
        ? `${name}: unexpected argument ${JSON.stringify(extra)}`
        : `${name}: unexpected argument ${JSON.stringify(extra)}; quote the whole LogQL query as one argument`,
    );
  }
  return out;
}

function duration(name: string, key: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`${name}: ${key} ${JSON.stringify(text)} is not a duration (examples: 30s, 15m, 1h, 7d)`);
  return ms;
}

function limit(name: string, text: string | undefined): number {
  if (text === undefined) return DEFAULT_QUERY_LIMIT;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= MAX_LIMIT)) throw new UsageError(`${name}: --limit must be a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(text)}`);
  return n;
}

function httpUrl(name: string, what: string, raw: string, example: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${name}: ${what} ${JSON.stringify(raw)} is not a URL (e.g. ${example})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`${name}: ${what} ${JSON.stringify(raw)} must be http:// or https://`);
  return raw.replace(/\/+$/, "");
}

function lokiUrl(name: string, text: string | undefined, env: NodeJS.ProcessEnv): string {
  return httpUrl(name, "Loki URL", text ?? (env.LOKI_URL || DEFAULT_LOKI_URL), DEFAULT_LOKI_URL);
}

/** The broker's /metrics server: on the bus host, MESSAGE_BUS_METRICS_PORT (9464). */
function brokerMetricsUrl(name: string, text: string | undefined, env: NodeJS.ProcessEnv): string {
  const host = env.MESSAGE_BUS_HOST && env.MESSAGE_BUS_HOST !== "localhost" ? env.MESSAGE_BUS_HOST : "127.0.0.1";
  const fallback = `http://${host.includes(":") ? `[${host}]` : host}:${env.MESSAGE_BUS_METRICS_PORT || 9464}`;
  return httpUrl(name, "--broker-metrics", text ?? fallback, "http://127.0.0.1:9464");
}

function query(name: string, text: string): string {
  if (text.trim() === "") throw new UsageError(`${name}: the LogQL query is empty`);
  return text;
}

/** Parses the arguments after the program name. Throws UsageError. */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Command {
  const [group, sub, ...rest] = argv;
  if (group === undefined || group === "help" || group === "--help" || group === "-h") return { kind: "help" };
  if (group === "logs" && (sub === "query" || sub === "tail")) {
    const name = NAMES[sub];
    if (rest.includes("--help") || rest.includes("-h")) return { kind: "help" };
    const parsed = parseOptions(sub, rest);
    const common = {
      lokiUrl: lokiUrl(name, parsed.values.get("--loki"), env),
      since: duration(name, "--since", parsed.values.get("--since"), DEFAULT_SINCE_MS),
      limit: limit(name, parsed.values.get("--limit")),
      json: parsed.flags.has("--json"),
    };
    if (sub === "query") return { kind: "query", logql: query(name, parsed.positional[0] as string), ...common };
    return { kind: "tail", logql: query(name, parsed.positional[0] ?? DEFAULT_TAIL_QUERY), follow: parsed.flags.has("--follow"), ...common };
  }
  if (group === "bus" && sub === "test") {
    if (rest.includes("--help") || rest.includes("-h")) return { kind: "help" };
    const parsed = parseOptions("bus-test", rest);
    const endpoint = parsed.values.get("--bus");
    if (endpoint !== undefined && !/^tcp:\/\/.+:\d+$/.test(endpoint)) {
      throw new UsageError(`bus test: --bus ${JSON.stringify(endpoint)} must look like tcp://<host>:<port> (the broker's publisher port, 5555)`);
    }
    return {
      kind: "bus-test",
      lokiUrl: lokiUrl("bus test", parsed.values.get("--loki"), env),
      timeoutMs: duration("bus test", "--timeout", parsed.values.get("--timeout"), DEFAULT_BUS_TEST_TIMEOUT_MS),
      endpoint,
      brokerMetricsUrl: brokerMetricsUrl("bus test", parsed.values.get("--broker-metrics"), env),
    };
  }
  if (group === "keys") {
    const args = argv.slice(1);
    if (args.includes("--help") || args.includes("-h")) return { kind: "help" };
    const parsed = parseOptions("keys", args);
    const dir = parsed.values.get("--dir") ?? (env.MESSAGE_BUS_KEYS_DIR || DEFAULT_KEYS_DIR);
    const shownDir = parsed.values.get("--show-dir") ?? dir;
    const [action, ...rest] = parsed.positional;
    const names = (expected: number, form: string): string[] => {
      if (rest.length !== expected) throw new UsageError(`keys ${action}: usage: keys ${form}`);
      const bad = rest.slice(0, 1).find((name) => !CLIENT_NAME.test(name));
      if (bad !== undefined) throw new UsageError(`keys: client name ${JSON.stringify(bad)} must be lower-case letters, digits, - and _ (up to 64)`);
      return rest;
    };
    if (action === "list") {
      names(0, "list");
      return { kind: "keys-list", dir, shownDir };
    }
    if (action === "revoke") {
      const [name = ""] = names(1, "revoke <client>");
      return { kind: "keys-revoke", dir, name, shownDir };
    }
    if (action === "register") {
      const [name = "", publicKey = ""] = names(2, "register <client> <public-key (Z85) or a file holding it>");
      return { kind: "keys-register", dir, name, publicKey, shownDir };
    }
    // Otherwise every word is a client to make keys for (list, revoke and register are never client names).
    const bad = parsed.positional.find((name) => !CLIENT_NAME.test(name));
    if (bad !== undefined) throw new UsageError(`keys: client name ${JSON.stringify(bad)} must be lower-case letters, digits, - and _ (up to 64)`);
    return { kind: "keys", dir, clients: [...new Set([...STACK_KEY_CLIENTS, ...parsed.positional])], shownDir };
  }
  if (group === "alerts") {
    const args = argv.slice(1);
    if (args.includes("--help") || args.includes("-h")) return { kind: "help" };
    const parsed = parseOptions("alerts", args);
    const raw = parsed.values.get("--alertmanager") ?? (env.ALERTMANAGER_URL || DEFAULT_ALERTMANAGER_URL);
    return { kind: "alerts", alertmanagerUrl: httpUrl("alerts", "Alertmanager URL", raw, DEFAULT_ALERTMANAGER_URL), json: parsed.flags.has("--json") };
  }
  const shown = [group, sub].filter((s) => s !== undefined).join(" ");
  throw new UsageError(`unknown command ${JSON.stringify(shown)}; commands: logs query, logs tail, bus test, alerts, keys, help`);
}
