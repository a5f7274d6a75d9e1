import { requiredBinary, shippedConfig } from "./components.js";
import { ComponentProcess, freePort, launchUntilReady, tempDir } from "./process.js";

export interface OtelcolHandle {
  /** The health_check extension: GET answers 200 once every pipeline runs. */
  healthUrl: string;
  /** The collector's own metrics (Prometheus format). */
  metricsUrl: string;
  /** The collector's process id while it runs (for its CPU time and memory in /proc), else undefined. */
  pid(): number | undefined;
  logs(): string;
  stop(): Promise<void>;
}

export interface StartOtelcolOptions {
  /** Base URL of the Loki to send to (e.g. LokiHandle.url); the config appends /otlp/v1/logs. */
  lokiUrl: string;
  /** Directory whose *.log files the file_log receiver tails (as Promtail's `system` job does). */
  logDir: string;
  /** Default: the shipped bench/otelcol/config.yaml. */
  configFile?: string;
  readyTimeoutMs?: number;
}

/**
 * Starts the OpenTelemetry Collector built from bench/otelcol/builder-config.yaml with the shipped config file,
 * unmodified. The Loki URL, the log directory and both ports come from the file's ${env:OTELCOL_*} references
 * (the collector expands them itself). Resolves once the health_check extension says every pipeline started.
 */
export async function startOtelcol(opts: StartOtelcolOptions): Promise<OtelcolHandle> {
  const bin = requiredBinary("otelcol");
  const { proc, url, metricsUrl } = await launchUntilReady("OpenTelemetry Collector", "/", opts.readyTimeoutMs ?? 30_000, async () => {
    const dir = tempDir("otelcol");
    const [healthPort, metricsPort] = [await freePort(), await freePort()];
    const proc = new ComponentProcess({
      name: "otelcol",
      bin,
      dir,
      args: [`--config=${opts.configFile ?? shippedConfig.otelcol}`],
      env: {
        OTELCOL_LOKI_URL: opts.lokiUrl,
        OTELCOL_LOG_DIR: opts.logDir,
        OTELCOL_HEALTH_PORT: String(healthPort),
        OTELCOL_METRICS_PORT: String(metricsPort),
      },
    });
    return { proc, url: `http://127.0.0.1:${healthPort}`, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
  });
  return { healthUrl: `${url}/`, metricsUrl, pid: () => proc.pid(), logs: () => proc.logs(), stop: () => proc.stop() };
}
