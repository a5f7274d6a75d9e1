/**
 * OpenTelemetry into the real Loki, run from the shipped config: the OpenTelemetry JavaScript SDK exports log records
 * over OTLP/HTTP (both encodings: JSON and protobuf) to /otlp/v1/logs, and every record is found again by LogQL,
 * with the labels and structured metadata loki/loki-config.yml's otlp_config promises.
 */
import { randomUUID } from "node:crypto";
import { context, trace, TraceFlags } from "@opentelemetry/api";
import type { Logger } from "@opentelemetry/api-logs";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { OTLPLogExporter as JsonExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { OTLPLogExporter as ProtobufExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LokiHandle } from "@aixcl/testkit";
import { printComponentLogsOnFailure, requireComponent, startLoki } from "@aixcl/testkit";

const need = requireComponent("loki");
if (need.skip) console.warn(`[skipped] test/otlp/otlp.test.ts: ${need.skip}`);
printComponentLogsOnFailure();

const SEVERITIES = [
  [SeverityNumber.TRACE, "TRACE", "trace"],
  [SeverityNumber.DEBUG, "DEBUG", "debug"],
  [SeverityNumber.INFO, "INFO", "info"],
  [SeverityNumber.WARN, "WARN", "warn"],
  [SeverityNumber.ERROR, "ERROR", "error"],
  [SeverityNumber.FATAL, "FATAL", "fatal"],
] as const;
const RECORDS = 300;
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID = "00f067aa0ba902b7";

/** Emits RECORDS records through a provider exporting to Loki; every 10th inside a span. */
async function send(url: string, exporter: "json" | "protobuf", service: string, instance: string): Promise<void> {
  const Exporter = exporter === "json" ? JsonExporter : ProtobufExporter;
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({
      "service.name": service,
      "service.namespace": "shop",
      "deployment.environment.name": "dev",
      "service.instance.id": instance,
      "host.name": "dev-box",
    }),
    processors: [new BatchLogRecordProcessor({ exporter: new Exporter({ url: `${url}/otlp/v1/logs` }) })],
  });
  const logger: Logger = provider.getLogger("checkout", "1.2.0");
  const span = trace.setSpanContext(context.active(), { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED });
  for (let i = 0; i < RECORDS; i++) {
    const [severityNumber, severityText] = SEVERITIES[i % SEVERITIES.length]!;
    logger.emit({ severityNumber, severityText, body: `order ${i} placed`, attributes: { "order.id": i, "payment.method": "card" }, ...(i % 10 === 0 ? { context: span } : {}) });
  }
  await provider.shutdown();
}

describe.skipIf(need.skip !== undefined)("OTLP/HTTP logs into Loki with the shipped otlp_config", () => {
  let loki: LokiHandle;

  beforeAll(async () => {
    loki = await startLoki();
  });
  afterAll(async () => loki?.stop());

  for (const exporter of ["json", "protobuf"] as const) {
    it(`${exporter}: every record arrives, labelled by service and environment only, the rest as structured metadata`, async () => {
      const service = `storefront_${exporter}`;
      const instance = randomUUID();
      await send(loki.url, exporter, service, instance);

      const streams = await loki.waitFor(`{service_name="${service}"}`, RECORDS, 20_000);
      // One stream: the per-process service.instance.id is no label.
      expect(streams.map((s) => s.stream)).toEqual([{ service_name: service, service_namespace: "shop", deployment_environment_name: "dev" }]);
      const entries = streams.flatMap((s) => s.values);
      expect(entries.map(([, line]) => line).sort()).toEqual(Array.from({ length: RECORDS }, (_, i) => `order ${i} placed`).sort());

      const byLine = new Map(entries.map(([, line, meta]) => [line, meta ?? {}]));
      expect(byLine.get("order 0 placed")).toMatchObject({
        service_instance_id: instance,
        host_name: "dev-box",
        scope_name: "checkout",
        scope_version: "1.2.0",
        severity_text: "TRACE",
        detected_level: "trace",
        order_id: "0",
        payment_method: "card",
        trace_id: TRACE_ID,
        span_id: SPAN_ID,
      });
      expect(byLine.get("order 1 placed")).not.toHaveProperty("trace_id");

      // LogQL on the structured metadata finds each group exactly.
      for (const [, , level] of SEVERITIES) {
        const found = await loki.queryRange(`{service_name="${service}"} | detected_level="${level}"`);
        expect(found.flatMap((s) => s.values), level).toHaveLength(RECORDS / SEVERITIES.length);
      }
      const traced = await loki.queryRange(`{service_name=~".+"} | trace_id="${TRACE_ID}" | service_instance_id="${instance}"`);
      expect(traced.flatMap((s) => s.values)).toHaveLength(RECORDS / 10);
    });
  }
});
