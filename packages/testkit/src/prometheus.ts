import { existsSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { parse, stringify } from "yaml";
import { requiredBinary, shippedConfig } from "./components.js";
import { ComponentProcess, freePort, launchUntilReady, tempDir } from "./process.js";

export interface ScrapeTarget {
  job: string;
  scrapeUrl: string;
  health: "up" | "down" | "unknown";
  lastError: string;
}

export interface PrometheusHandle {
  url: string;
  httpPort: number;
  /** The config Prometheus runs: the shipped file with only the mapped target addresses changed. */
  configFile: string;
  logs(): string;
  stop(): Promise<void>;
  targets(): Promise<ScrapeTarget[]>;
  /** Waits until every target of each job is up; the error lists each job's health and last scrape error. */
  waitForTargetsUp(jobs: string[], timeoutMs?: number): Promise<ScrapeTarget[]>;
}

export interface StartPrometheusOptions {
  /**
   * Shipped address -> address of the process the test started, e.g. `{ "loki:3100": "127.0.0.1:41234" }`,
   * for scrape targets and Alertmanagers alike. Every key must appear in the shipped file, so a renamed service
   * or port fails the test instead of silently scraping nothing. The `localhost:9090` self-scrape is mapped to
   * this Prometheus automatically. An Alertmanager left unmapped gets nothing (its name does not resolve).
   */
  targets?: Record<string, string>;
  /** Extra jobs for services the shipped file does not know (fault injection, test-only exporters). */
  extraScrapeConfigs?: { jobName: string; targets: string[]; metricsPath?: string }[];
  /** Default: the shipped prometheus/prometheus.yml. */
  configFile?: string;
  readyTimeoutMs?: number;
}

interface StaticConfigs {
  static_configs?: { targets?: string[] }[];
}

interface ScrapeConfig extends StaticConfigs {
  job_name: string;
  metrics_path?: string;
  dns_sd_configs?: { names: string[]; port: number }[];
}

/**
 * Prometheus has no environment expansion for targets and the stack's targets are compose service names, so a
 * test cannot run the shipped file byte for byte. This derives the smallest possible variant: the shipped
 * document with only mapped `static_configs` addresses replaced, of scrape jobs and Alertmanagers (plus any
 * extra jobs).
 */
export function mapScrapeTargets(shippedYaml: string, targets: Record<string, string>, extra: StartPrometheusOptions["extraScrapeConfigs"] = []): string {
  const doc = parse(shippedYaml) as { scrape_configs?: ScrapeConfig[]; alerting?: { alertmanagers?: StaticConfigs[] } };
  const unused = new Set(Object.keys(targets));
  // A job that finds its target by DNS (the broker: the stack may run none) gets the mapped address statically.
  for (const job of doc.scrape_configs ?? []) {
    // Names a test does not map are left out: the HA profile's Loki instances, which resolve only while it runs.
    const names = (job.dns_sd_configs ?? []).flatMap((d) => d.names.map((n) => `${n}:${d.port}`)).filter((n) => n in targets);
    if (names.length === 0) continue;
    delete job.dns_sd_configs;
    job.static_configs = [{ targets: names }];
  }
  for (const job of [...(doc.scrape_configs ?? []), ...(doc.alerting?.alertmanagers ?? [])]) {
    for (const sc of job.static_configs ?? []) {
      sc.targets = sc.targets?.map((t) => {
        const mapped = targets[t];
        if (mapped === undefined) return t;
        unused.delete(t);
        return mapped;
      });
    }
  }
  if (unused.size > 0) throw new Error(`targets not in the shipped Prometheus config: ${[...unused].join(", ")}`);
  for (const e of extra) {
    doc.scrape_configs = [...(doc.scrape_configs ?? []), { job_name: e.jobName, ...(e.metricsPath ? { metrics_path: e.metricsPath } : {}), static_configs: [{ targets: e.targets }] }];
  }
  return stringify(doc);
}

/**
 * Rule files are named relative to the config file (`rules/*.yml`). The derived config lives in a temp dir, so
 * each relative pattern's first folder is linked there to the folder beside the shipped file: Prometheus reads
 * the shipped rule files themselves.
 */
function linkRuleFolders(shippedYaml: string, shippedFile: string, dir: string): void {
  const doc = parse(shippedYaml) as { rule_files?: string[] };
  for (const pattern of doc.rule_files ?? []) {
    if (isAbsolute(pattern)) continue;
    const top = pattern.split("/")[0] as string;
    const link = join(dir, top);
    if (!existsSync(link)) symlinkSync(join(dirname(shippedFile), top), link);
  }
}

/**
 * Starts the real Prometheus on a free 127.0.0.1 port with a fresh TSDB in a temp dir, running the shipped rule
 * files; resolves once /-/ready is 200.
 */
export async function startPrometheus(opts: StartPrometheusOptions = {}): Promise<PrometheusHandle> {
  const bin = requiredBinary("prometheus");
  const shippedFile = opts.configFile ?? shippedConfig.prometheus;
  const shipped = readFileSync(shippedFile, "utf8");
  const { proc, url, httpPort, configFile } = await launchUntilReady("Prometheus", "/-/ready", opts.readyTimeoutMs ?? 30_000, async () => {
    const dir = tempDir("prometheus");
    const httpPort = await freePort();
    const configFile = join(dir, "prometheus.yml");
    writeFileSync(configFile, mapScrapeTargets(shipped, { "localhost:9090": `127.0.0.1:${httpPort}`, ...opts.targets }, opts.extraScrapeConfigs));
    linkRuleFolders(shipped, shippedFile, dir);
    const proc = new ComponentProcess({
      name: "prometheus",
      bin,
      dir,
      args: [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${httpPort}`],
    });
    return { proc, url: `http://127.0.0.1:${httpPort}`, httpPort, configFile };
  });
  const targets = async (): Promise<ScrapeTarget[]> => {
    const res = await fetch(`${url}/api/v1/targets?state=active`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`Prometheus /api/v1/targets answered ${res.status}`);
    const body = (await res.json()) as { data: { activeTargets: { labels: Record<string, string>; scrapeUrl: string; health: ScrapeTarget["health"]; lastError: string }[] } };
    return body.data.activeTargets.map((t) => ({ job: t.labels["job"] ?? "", scrapeUrl: t.scrapeUrl, health: t.health, lastError: t.lastError }));
  };
  return {
    url,
    httpPort,
    configFile,
    logs: () => proc.logs(),
    stop: () => proc.stop(),
    targets,
    async waitForTargetsUp(jobs, timeoutMs = 45_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const all = await targets();
        const wanted = all.filter((t) => jobs.includes(t.job));
        const missing = jobs.filter((j) => !wanted.some((t) => t.job === j));
        if (missing.length === 0 && wanted.every((t) => t.health === "up")) return wanted;
        if (Date.now() > deadline) {
          const state = jobs.map((j) => {
            const ts = wanted.filter((t) => t.job === j);
            return ts.length === 0 ? `${j}: no such job` : ts.map((t) => `${j} ${t.scrapeUrl}: ${t.health}${t.lastError ? ` (${t.lastError})` : ""}`).join("; ");
          });
          throw new Error(`Prometheus targets not up within ${timeoutMs} ms:\n${state.join("\n")}`);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    },
  };
}
