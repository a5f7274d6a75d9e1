/**
 * Log data for checking the dashboards' queries against a real Loki.
 *
 * Application logs take the real paths: createLogger -> broker -> log consumer -> Loki, and the OpenTelemetry SDK
 * -> OTLP/HTTP -> Loki (its otlp_config as shipped). Container logs are
 * pushed with the labels Promtail's shipped config gives them (compose_project, compose_service, container,
 * stream, job and, for JSON lines, level): Promtail discovers containers through a Docker engine, which these
 * machines do not have. One container line is authentic Loki output: the query log Loki writes for a search,
 * as the Loki container's own log would carry it.
 */
import { randomUUID } from "node:crypto";
import { context, trace as traces, TraceFlags } from "@opentelemetry/api";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { createLogger } from "@aixcl/client-logger";
import type { LokiHandle, LokiStream } from "@aixcl/testkit";
import { startLoki } from "@aixcl/testkit";
import type { BusHandle } from "@aixcl/bus-harness";
import { startBus } from "@aixcl/bus-harness";

/** AIXCL's own compose project, whose containers the fixture's api and db stand for. */
export const PROJECT = "aixcl";
/** The logging stack's compose project (`name:` in docker-compose.yml): its loki container. */
export const STACK_PROJECT = "aixcl-logging";
/** Text a user searches for; it also ends up in Loki's own query log. */
export const SEARCH = "checkout failed";

/** What is logged on the bus, in order; `traced` entries carry the fixture's trace id. */
export const BUS_ENTRIES = [
  { service: "checkout", module: "payment", level: "info", message: "charging card", traced: true },
  { service: "checkout", module: "payment", level: "error", message: "card declined by issuer", traced: true },
  { service: "checkout", module: "cart", level: "debug", message: "cart loaded", traced: false },
  { service: "checkout", module: "cart", level: "warning", message: "cart service slow", traced: false },
  { service: "inventory", module: "stock", level: "critical", message: "stock database unreachable", traced: false },
] as const;

/**
 * A bus entry's line in Loki: the message, then the fields the consumer's default `fields` puts in the line
 * (config/log_consumer.yaml), the fixture's trace id last on traced entries; module is structured metadata.
 */
export function busLine(e: (typeof BUS_ENTRIES)[number], trace: string): string {
  return `${e.message} function=handle file_path=src/${e.module}.ts line_number=7 topic=logs.${e.service}.${e.module}${e.traced ? ` trace_id=${trace}` : ""}`;
}

/** What an application sends over OTLP (service.name "storefront", instrumentation scope "web"), in order. */
export const OTLP_RECORDS = [
  { severity: SeverityNumber.INFO, text: "INFO", message: "product page rendered", traced: false },
  { severity: SeverityNumber.WARN, text: "WARN", message: "recommendations slow", traced: false },
  { severity: SeverityNumber.ERROR, text: "ERROR", message: "payment provider timed out", traced: true },
] as const;

export const CONTAINERS = {
  api: { project: PROJECT, service: "api", container: "aixcl-api-1", stream: "stdout" },
  db: { project: PROJECT, service: "db", container: "aixcl-db-1", stream: "stderr" },
  loki: { project: STACK_PROJECT, service: "loki", container: "aixcl-logging-loki-1", stream: "stderr" },
} as const;
/** A `docker run` container: no compose project or service. */
export const PLAIN_CONTAINER = "eager_turing";

export interface LogFixture {
  loki: LokiHandle;
  /** Trace id carried by two bus entries and one OTLP record (structured metadata) and two api container lines (JSON field). */
  trace: string;
  /** The Loki query-log line pushed as the loki container's log. */
  queryEcho: string;
  stop(): Promise<void>;
}

function ns(ms: number): string {
  return `${BigInt(ms) * 1_000_000n}`;
}

async function pushContainerLogs(loki: LokiHandle, trace: string, queryEcho: string): Promise<void> {
  const t = Date.now() - 5_000;
  const labels = (c: (typeof CONTAINERS)[keyof typeof CONTAINERS], extra: Record<string, string> = {}) => ({
    compose_project: c.project,
    compose_service: c.service,
    container: c.container,
    stream: c.stream,
    job: "containers",
    ...extra,
  });
  const streams: LokiStream[] = [
    {
      stream: labels(CONTAINERS.api, { level: "info" }),
      values: [
        [ns(t), JSON.stringify({ level: "info", msg: "GET /orders 200", trace_id: trace })],
        [ns(t + 2), JSON.stringify({ level: "info", msg: "GET /health 200" })],
      ],
    },
    {
      stream: labels(CONTAINERS.api, { level: "error" }),
      values: [[ns(t + 1), JSON.stringify({ level: "error", msg: `${SEARCH}: card declined`, trace_id: trace })]],
    },
    {
      // logfmt, as Prometheus/Loki/Grafana write it: Promtail promotes no level, Loki detects one.
      stream: labels(CONTAINERS.db),
      values: [
        [ns(t + 3), 'ts=2026-11-21T03:00:00Z level=error msg="could not write checkpoint: disk full"'],
        [ns(t + 4), 'ts=2026-11-21T03:00:01Z level=info msg="checkpoint complete"'],
      ],
    },
    { stream: labels(CONTAINERS.loki), values: [[ns(t + 5), queryEcho]] },
    {
      // Another compose project on the same machine.
      stream: { compose_project: "other", compose_service: "api", container: "other-api-1", stream: "stdout", job: "containers" },
      values: [[ns(t + 6), `${SEARCH} in another project, error`]],
    },
    { stream: { container: PLAIN_CONTAINER, stream: "stdout", job: "containers" }, values: [[ns(t + 7), "plain docker run output"]] },
  ];
  await loki.push(streams);
}

/**
 * Runs a search like the dashboard's through Loki and returns the line Loki logged about it: what the loki
 * container would ship to itself in the stack.
 */
async function lokiQueryEcho(loki: LokiHandle): Promise<string> {
  const marker = randomUUID();
  const query = `{job="containers"} |~ "(?i)${SEARCH}" != "${marker}"`;
  await loki.queryRange(query);
  for (let waited = 0; waited < 5_000; waited += 100) {
    const line = loki.logs().split("\n").find((l) => l.includes(marker) && l.includes("query_hash="));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Loki logged no query line for ${query}; its log:\n${loki.logs().slice(-3000)}`);
}

async function sendOtlp(loki: LokiHandle, trace: string): Promise<void> {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ "service.name": "storefront", "service.instance.id": randomUUID() }),
    processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${loki.url}/otlp/v1/logs` }) })],
  });
  const logger = provider.getLogger("web");
  const span = traces.setSpanContext(context.active(), { traceId: trace, spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED });
  for (const r of OTLP_RECORDS) logger.emit({ severityNumber: r.severity, severityText: r.text, body: r.message, ...(r.traced ? { context: span } : {}) });
  await provider.shutdown();
}

export async function startLogFixture(): Promise<LogFixture> {
  const loki = await startLoki();
  let bus: BusHandle | undefined;
  const stop = async () => {
    await bus?.stop();
    await loki.stop();
  };
  try {
    const trace = randomUUID().replaceAll("-", "");
    const queryEcho = await lokiQueryEcho(loki);
    await pushContainerLogs(loki, trace, queryEcho);

    bus = await startBus({ lokiUrl: loki.url });
    const loggers = new Map<string, ReturnType<typeof createLogger>>();
    for (const e of BUS_ENTRIES) {
      const key = `${e.service}/${e.module}`;
      let logger = loggers.get(key);
      if (!logger) {
        logger = createLogger({ subsystem: e.service, module: e.module, endpoint: bus.broker.pubEndpoint });
        loggers.set(key, logger);
      }
      logger.log(e.level, e.message, {}, { function: "handle", filePath: `src/${e.module}.ts`, lineNumber: 7, ...(e.traced ? { traceId: trace } : {}) });
    }
    await Promise.all([...loggers.values()].map((l) => l.close()));
    await sendOtlp(loki, trace);
    await loki.waitFor('{service=~".+"}', BUS_ENTRIES.length, 20_000);
    await loki.waitFor('{service_name="storefront"}', OTLP_RECORDS.length, 20_000);
    await loki.waitFor(`{job="containers"}`, 8, 10_000);
    return { loki, trace, queryEcho, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
