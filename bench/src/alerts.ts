/**
 * Log alert benchmark: how long an error burst takes to become an alert in Alertmanager, and what evaluating
 * the log rules costs Loki, with the stack's shipped settings (loki/loki-config.yml with its 1-minute ruler
 * evaluation, loki/rules, alertmanager/alertmanager.yml) while container logs flow in.
 *
 *   npm run bench:alerts                      5 min of background logs at 1,000 lines/s, then 4 bursts
 *   npm run bench:alerts -- --quick           1 min of background logs, 2 bursts
 *   npm run bench:alerts -- --load 5000       background lines per second
 *   npm run bench:alerts -- --warmup 120      seconds of background logs before the bursts
 *
 * A burst is 11 error entries of a new bus service (the threshold is 10 in 5 minutes), published through the
 * real broker and consumer; its latency runs from the last entry's publish to the alert in Alertmanager's API.
 * The background is Promtail-labelled container lines of 20 services (one error line per service a minute,
 * below the threshold) pushed straight to Loki, so the container rule's 5-minute window holds `load x 300`
 * lines to scan at every evaluation.
 */
import { readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "@aixcl/client-logger";
import { cpuMicros } from "./proc.js";

interface Options {
  quick: boolean;
  load: number;
  warmupMs: number;
  bursts: number;
}

function options(): Options {
  const args = process.argv.slice(2);
  const quick = args.includes("--quick");
  const at = args.indexOf("--load");
  const load = at >= 0 ? Number(args[at + 1]) : 1000;
  if (!(load >= 0)) throw new Error("--load needs a number of lines per second");
  const warmup = args.indexOf("--warmup");
  const warmupMs = warmup >= 0 ? Number(args[warmup + 1]) * 1000 : quick ? 60_000 : 300_000;
  return { quick, load, warmupMs, bursts: quick ? 2 : 4 };
}

const SERVICES = Array.from({ length: 20 }, (_, i) => `app${i}`);

/** One second of background container lines, as Promtail labels them. */
function backgroundBatch(load: number, second: number): { stream: Record<string, string>; values: [string, string][] }[] {
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const perService = Math.max(1, Math.round(load / SERVICES.length));
  return SERVICES.map((service, s) => ({
    stream: { compose_project: "aixcl", compose_service: service, container: `aixcl-${service}-1`, stream: "stdout", job: "containers" },
    values: Array.from({ length: perService }, (_, i): [string, string] => {
      const n = second * perService + i;
      // One error line per service a minute: 5 in any 5 minutes, below the threshold (10).
      const line = i === 0 && (second + s) % 60 === 0 ? `ERROR request ${n} failed: upstream timeout` : `level=info msg="request ${n} served" duration_ms=${n % 250} path=/api/v1/items/${n % 997}`;
      return [String(nowNs - BigInt(perService - i) * 1000n), line];
    }),
  }));
}

/** The ruler's own query lines in Loki's log: duration and bytes of each rule evaluation's query. */
function rulerQueries(log: string): { rule: string; ms: number; bytes: number; lines: number }[] {
  const out: { rule: string; ms: number; bytes: number; lines: number }[] = [];
  for (const line of log.split("\n")) {
    if (!line.includes("component=ruler") || !line.includes("caller=metrics.go")) continue;
    const rule = /query="\(sum by \((\w+)\)/.exec(line)?.[1] === "service" ? "ApplicationErrorBurst" : "ContainerErrorBurst";
    const duration = /\bduration=([\d.]+)(µs|ms|s)\b/.exec(line);
    const ms = duration ? Number(duration[1]) * (duration[2] === "s" ? 1000 : duration[2] === "ms" ? 1 : 0.001) : Number.NaN;
    const bytes = /\btotal_bytes=([\d.]+)(B|kB|MB|GB)\b/.exec(line);
    const scale: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 };
    out.push({ rule, ms, bytes: bytes ? Number(bytes[1]) * (scale[bytes[2] as string] as number) : Number.NaN, lines: Number(/\btotal_lines=(\d+)/.exec(line)?.[1]) });
  }
  return out;
}

const pct = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length - 1) * p))] ?? Number.NaN;

async function main(): Promise<void> {
  const opts = options();
  const testkit = await import("@aixcl/testkit");
  const { startBus } = await import("@aixcl/bus-harness");
  const need = testkit.requireComponents("loki", "alertmanager");
  if (need.skip) throw new Error(need.skip);
  console.log(`Log alert benchmark${opts.quick ? " (quick)" : ""}: ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}; background ${opts.load} lines/s`);
  const alertmanager = await testkit.startAlertmanager();
  const loki = await testkit.startLoki({ rulesDir: testkit.shippedConfig.lokiRules, alertmanagerUrl: alertmanager.url });
  const bus = await startBus({ lokiUrl: loki.url });
  const lokiPid = findPid(need.paths.loki, loki.dataDir);
  let stopLoad = false;
  const loadDone = (async () => {
    for (let second = 0; !stopLoad; second++) {
      const started = Date.now();
      if (opts.load > 0) await loki.push(backgroundBatch(opts.load, second));
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
  })();
  try {
    console.log(`  filling the rules' 5-minute window: ${opts.warmupMs / 1000} s of background lines...`);
    const cpuBefore = cpuMicros(lokiPid);
    await sleep(opts.warmupMs);
    const cpuWarm = cpuMicros(lokiPid);
    const burstsStarted = Date.now();
    const latencies: number[] = [];
    for (let b = 0; b < opts.bursts; b++) {
      // A different moment of the ruler's 1-minute cycle for each burst.
      await sleep(7_000 + Math.floor(Math.random() * 20_000));
      const service = `burst_${b}_${Date.now() % 100_000}`;
      const logger = createLogger({ subsystem: service, module: "bench", endpoint: bus.pubEndpoint });
      for (let i = 0; i < 11; i++) logger.error(`payment ${i} failed`);
      await logger.close();
      const published = Date.now();
      await alertmanager.waitForAlert((a) => a.labels.service === service, 120_000);
      latencies.push(Date.now() - published);
      console.log(`  burst ${b + 1}: alert in Alertmanager after ${((Date.now() - published) / 1000).toFixed(1)} s`);
    }
    const cpuEnd = cpuMicros(lokiPid);
    const burstsMs = Date.now() - burstsStarted;
    const queries = rulerQueries(loki.logs()).slice(-20);
    const byRule = new Map<string, typeof queries>();
    for (const q of queries) byRule.set(q.rule, [...(byRule.get(q.rule) ?? []), q]);
    const sum = await testkit.metricSample(loki.url, 'loki_prometheus_rule_evaluation_duration_seconds_sum{user="fake"}');
    const count = await testkit.metricSample(loki.url, 'loki_prometheus_rule_evaluation_duration_seconds_count{user="fake"}');
    console.log("");
    console.log(`burst -> alert in Alertmanager (ruler evaluation every 1 m, as shipped): ${latencies.map((l) => `${(l / 1000).toFixed(1)} s`).join(", ")}; max ${(Math.max(...latencies) / 1000).toFixed(1)} s`);
    console.log(`rule evaluations: ${count}, mean ${(((sum ?? 0) / (count ?? 1)) * 1000).toFixed(1)} ms (Loki's loki_prometheus_rule_evaluation_duration_seconds)`);
    for (const [rule, qs] of byRule) {
      console.log(
        `  ${rule}: query p50 ${pct(qs.map((q) => q.ms), 0.5).toFixed(1)} ms, max ${Math.max(...qs.map((q) => q.ms)).toFixed(1)} ms, ` +
          `${Math.round(pct(qs.map((q) => q.lines), 0.5)).toLocaleString("en-US")} lines / ${(pct(qs.map((q) => q.bytes), 0.5) / 1e6).toFixed(1)} MB read per evaluation (from Loki's query log)`,
      );
    }
    const share = (micros: number, ms: number) => `${(micros / ms / 10).toFixed(1)}%`;
    console.log(
      `Loki CPU (ingesting ${opts.load} lines/s, evaluating every minute): ${share(cpuWarm - cpuBefore, opts.warmupMs)} of one core while the window filled, ` +
        `${share(cpuEnd - cpuWarm, burstsMs)} with it full`,
    );
  } finally {
    stopLoad = true;
    await loadDone;
    await bus.stop();
    await loki.stop();
    await alertmanager.stop();
  }
}

/** PID of the Loki process the testkit started: argv[0] is the binary and an argument names its data dir. */
function findPid(bin: string, marker: string): number {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv[0] === bin && argv.some((a) => a.includes(marker))) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return Number.NaN;
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  },
);
