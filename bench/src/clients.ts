/**
 * The two bus clients beside each other: the Python BusHandler (clients/python/bench/handler.py, in the
 * scripts/python.sh venv) and the TypeScript logger (createLogger, the one @aixcl/logging ships) each log records
 * from one thread into the real broker (its own process) while a subscriber drains it. Per client: records/s flat
 * out, process CPU per record, and what the application thread spends per log call, flat out and paced, beside the
 * same records written into a file (pino.destination, sync false and true; logging.FileHandler) and no logging at all,
 * in the same process. Python also: one BusHandler on the root logger with 20 loggers taking turns.
 *
 *   npm run bench:clients [-- --records 200000 --runs 3] [-- --only typescript|python]
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { Subscriber } from "zeromq";
import { receiveEach } from "@aixcl/wire";
import { createLogger } from "@aixcl/client-logger";
import { repoRoot, startBrokerProcess } from "@aixcl/testkit";

/** What one kind of log call costs the application's thread, in µs: the mean flat out, and paced calls' p50 and p99. */
interface CallCost {
  flood: number;
  p50: number;
  p99: number;
}

interface ClientResult {
  client: string;
  records: number;
  records_per_s: number;
  cpu_us_per_record: number;
  app_cpu_us_per_call_flood?: number;
  /**
   * By what is behind the call: "ours" (the bus client), "file" (TypeScript: pino into a file, pino.destination's
   * default sync: false; Python: logging.FileHandler with time, level, logger and message), "file_sync" (pino's
   * sync: true), "file_message_only" (FileHandler, "%(message)s"), "null" (TypeScript: the message's string only;
   * Python: a NullHandler).
   */
  costs: Record<string, CallCost>;
  /** Python: one BusHandler on the root logger, 20 loggers taking turns. */
  root_records_per_s?: number;
  root_app_us_per_call_flood?: number;
  dropped: number;
}

const script = fileURLToPath(import.meta.url);
const say = (message: string) => process.stderr.write(`bench:clients: ${message}\n`);

/** Microseconds of each of `count` calls made at `rate` per second, sorted. */
async function pacedCalls(count: number, rate: number, call: (i: number) => unknown): Promise<number[]> {
  const calls: number[] = [];
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / rate;
    while (performance.now() < due) await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(1, due - performance.now()))));
    const before = process.hrtime.bigint();
    call(i);
    calls.push(Number(process.hrtime.bigint() - before) / 1e3);
  }
  return calls.sort((a, b) => a - b);
}

/** Mean microseconds per call of `count` calls made as fast as possible. */
function floodCalls(count: number, call: (i: number) => unknown): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) call(i);
  return Number(process.hrtime.bigint() - t0) / 1e3 / count;
}

async function callCost(records: number, paced: number, rate: number, call: (i: number) => unknown): Promise<CallCost> {
  const flood = floodCalls(records, call);
  const calls = await pacedCalls(paced, rate, call);
  return { flood, p50: calls[Math.floor(calls.length / 2)] ?? Number.NaN, p99: calls[Math.floor(calls.length * 0.99)] ?? Number.NaN };
}

/** pino writing the same records into a file: what a Node application pays for logging to disk. */
async function pinoCost(file: string, sync: boolean, records: number, paced: number, rate: number): Promise<CallCost> {
  const destination = pino.destination({ dest: file, sync });
  const log = pino(destination);
  const extra = { path: "/api/orders", status: 200 };
  await new Promise((resolve) => (sync ? resolve(undefined) : destination.once("ready", resolve)));
  const result = await callCost(records, paced, rate, (i) => log.info(extra, `request ${i} handled`));
  await new Promise((resolve) => {
    destination.once("close", resolve);
    destination.end();
  });
  return result;
}

/** The TypeScript side, in its own process: the same workload as handler.py. */
async function loggerRole(endpoint: string, records: number, paced: number, rate: number): Promise<void> {
  const log = createLogger({ subsystem: "bench_ts", module: "load", endpoint, maxBuffered: records, maxBufferedBytes: records * 1024, closeTimeoutMs: 10_000 });
  const until = async (condition: () => boolean) => {
    while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1));
  };
  await until(() => log.connected);
  const extra = { path: "/api/orders", status: 200 };
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const ours = floodCalls(records, (i) => log.info(`request ${i} handled`, extra));
  await until(() => log.stats().published >= records);
  const total = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const calls = await pacedCalls(paced, rate, (i) => log.info(`request ${i} handled`, extra));
  const stats = await log.close();

  const folder = mkdtempSync(join(tmpdir(), "bench-clients-"));
  const costs: Record<string, CallCost> = { ours: { flood: ours, p50: calls[Math.floor(calls.length / 2)] ?? Number.NaN, p99: calls[Math.floor(calls.length * 0.99)] ?? Number.NaN } };
  try {
    costs.file = await pinoCost(join(folder, "async.log"), false, records, paced, rate);
    costs.file_sync = await pinoCost(join(folder, "sync.log"), true, records, paced, rate);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  // The message's string work only: what any call costs here, after a pause too.
  const texts: string[] = [];
  costs.null = await callCost(records, paced, rate, (i) => (texts.length > 1000 ? (texts.length = 0) : texts.push(`request ${i} handled`)));
  const result: ClientResult = {
    client: "typescript",
    records,
    records_per_s: records / total,
    cpu_us_per_record: (cpu.user + cpu.system) / records,
    costs,
    dropped: stats.dropped.buffer_full + stats.dropped.closed + stats.dropped.too_large + stats.dropped.unencodable,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(command: string, args: string[]): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").at(-1) ?? "") as ClientResult) : reject(new Error(`${command} exited ${code}`))));
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      records: { type: "string", default: "200000" },
      runs: { type: "string", default: "3" },
      paced: { type: "string", default: "5000" },
      rate: { type: "string", default: "2000" },
      // One client alone: the other's runs take as long again, and Python's need its venv.
      only: { type: "string" },
    },
  });
  const [records, runs, paced, rate] = [values.records, values.runs, values.paced, values.rate].map(Number) as [number, number, number, number];
  const clients = values.only === undefined ? ["typescript", "python"] : [values.only];
  if (!clients.every((c) => c === "typescript" || c === "python")) throw new Error(`--only takes typescript or python, got ${values.only}`);
  const python = clients.includes("python") ? execFileSync("bash", [`${repoRoot}scripts/python.sh`, "--path"], { encoding: "utf8" }).trim() : "";
  say("starting the broker (services/broker/dist/main.js)");
  const broker = await startBrokerProcess();
  const sub = new Subscriber({ receiveHighWaterMark: 100_000, linger: 0 });
  sub.connect(broker.subEndpoint);
  sub.subscribe("logs.");
  let received = 0;
  const draining = receiveEach(sub, () => {
    received++;
  });
  const results: ClientResult[] = [];
  try {
    for (let run = 1; run <= runs; run++) {
      for (const [name, command, args] of [
        ["typescript", process.execPath, [script, "logger", broker.pubEndpoint, String(records), String(paced), String(rate)]],
        ["python", python, [`${repoRoot}clients/python/bench/handler.py`, "--endpoint", broker.pubEndpoint, "--records", String(records), "--paced", String(paced), "--rate", String(rate)]],
      ] as const) {
        if (!clients.includes(name)) continue;
        say(`run ${run}/${runs}: ${name}, ${records.toLocaleString("en-US")} records flat out, then ${paced} at ${rate}/s`);
        const before = received;
        const result = await runChild(command, [...args]);
        await new Promise((resolve) => setTimeout(resolve, 200));
        say(`  ${Math.round(result.records_per_s).toLocaleString("en-US")} records/s; the subscriber got ${(received - before).toLocaleString("en-US")}`);
        results.push(result);
      }
    }
  } finally {
    sub.close();
    await draining.catch(() => undefined);
    await broker.stop();
  }
  const costNames: [string, string][] = [
    ["ours", "our client"],
    ["file", "into a file (pino; FileHandler with time, level, logger)"],
    ["file_sync", "into a file (pino, sync: true)"],
    ["file_message_only", "into a file (FileHandler, message only)"],
    ["null", "no logging (TypeScript: the string; Python: NullHandler)"],
  ];
  const ratio = (r: ClientResult, key: keyof CallCost) => (r.costs.ours && r.costs.file ? r.costs.ours[key] / r.costs.file[key] : undefined);
  const columns: [string, (r: ClientResult) => number | undefined, number][] = [
    ["records/s (one thread, flat out)", (r) => r.records_per_s, 0],
    ["CPU µs per record (whole process)", (r) => r.cpu_us_per_record, 1],
    ["app thread CPU µs per call, flat out", (r) => r.app_cpu_us_per_call_flood, 1],
    ...costNames.flatMap(([key, title]): [string, (r: ClientResult) => number | undefined, number][] => [
      [`${title}: app thread µs per call, flat out (mean)`, (r) => r.costs[key]?.flood, 1],
      [`${title}: µs per call at ${rate}/s, p50`, (r) => r.costs[key]?.p50, 1],
      [`${title}: µs per call at ${rate}/s, p99`, (r) => r.costs[key]?.p99, 1],
    ]),
    ["ours / file, flat out", (r) => ratio(r, "flood"), 2],
    [`ours / file, at ${rate}/s p50`, (r) => ratio(r, "p50"), 2],
    ["one handler on root, 20 loggers: records/s", (r) => r.root_records_per_s, 0],
    ["one handler on root, 20 loggers: app thread µs per call", (r) => r.root_app_us_per_call_flood, 1],
    ["dropped", (r) => r.dropped, 0],
  ];
  // Rows neither client has (the file variants are one language's each) are left out.
  const shown = columns.filter(([, get]) => results.some((r) => get(r) !== undefined));
  console.log(`\n| ${records.toLocaleString("en-US")} records, ${runs} runs (median; all runs) | ${clients.join(" | ")} |\n| --- |${" ---: |".repeat(clients.length)}`);
  for (const [title, get, digits] of shown) {
    const cells = clients.map((c) => {
      const all = results.filter((r) => r.client === c).map(get).filter((v): v is number => v !== undefined);
      if (all.length === 0) return "-";
      const f = (v: number) => v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
      return `${f(median(all))} (${all.map(f).join(", ")})`;
    });
    console.log(`| ${title} | ${cells.join(" | ")} |`);
  }
}

if (process.argv[2] === "logger") {
  const [endpoint = "", records = "0", paced = "0", rate = "1"] = process.argv.slice(3);
  await loggerRole(endpoint, Number(records), Number(paced), Number(rate));
} else {
  await main();
}
