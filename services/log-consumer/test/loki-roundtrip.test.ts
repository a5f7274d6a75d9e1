/**
 * Round trip through real parts: logger (both wire formats) and raw publishers -> broker -> consumer -> the real
 * Loki binary; LogQL must return every entry with the right labels, structured metadata and timestamps.
 */
import { fileURLToPath } from "node:url";
import type { LogEntry } from "@aixcl/wire";
import { encodeAicoMessage, encodeLogEntry } from "@aixcl/wire";
import { createLogger } from "@aixcl/client-logger";
import { loadMessageBusConfig, serviceLog } from "@aixcl/service-runtime";
import type { RunningBroker } from "@aixcl/broker";
import { startBroker } from "@aixcl/broker";
import type { LokiHandle, LokiStream } from "@aixcl/testkit";
import { fullEntry, requireComponent, startLoki } from "@aixcl/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningConsumer } from "../src/index.js";
import { startConsumer } from "../src/index.js";
import type { FieldPlaces } from "../src/mapping.js";
import { ALL_METADATA, DEFAULT_FIELD_PLACES } from "../src/mapping.js";
import { total, valuesBy } from "./helpers.js";
import { captureLog, connectRawPublisher, consumerConfig, until } from "./support.js";

const loki = requireComponent("loki");
if (loki.skip) console.warn(`skipping the Loki round trip: ${loki.skip}`);

/** A static label value full of what label text must escape; Loki must give it back unchanged. */
const AWKWARD = 'he said "hi"\\ then\nleft, level="critical"} ✓';

function values(streams: LokiStream[]) {
  return streams.flatMap((s) => s.values.map(([ts, line, metadata]) => ({ labels: s.stream, ts, line, metadata: metadata ?? {} })));
}

describe.skipIf(loki.skip !== undefined)("round trip to a real Loki", () => {
  let lokiHandle: LokiHandle;
  let broker: RunningBroker;
  const consumers: RunningConsumer[] = [];

  /** Every field as structured metadata unless told: the encoders' metadata pairs are what most tests here check. */
  async function consumer(staticLabels: Record<string, string>, encoding: "protobuf" | "json", compress: "always" | "when_queued" = "always", fields: FieldPlaces = ALL_METADATA) {
    const subPort = Number(/:(\d+)$/.exec(broker.subEndpoint)?.[1]);
    const config = consumerConfig({
      bus: { host: "127.0.0.1", sub_port: subPort },
      loki: { url: lokiHandle.url, encoding, compress },
      batch: { max_wait: "200ms" },
      labels: { static: staticLabels },
      fields,
      ops: { port: 0 },
    });
    const started = await startConsumer(config, { log: captureLog().log });
    consumers.push(started);
    return started;
  }

  beforeAll(async () => {
    lokiHandle = await startLoki();
    // The shipped config/message_bus.yaml, on free ports.
    const busConfig = loadMessageBusConfig({
      MESSAGE_BUS_CONFIG: fileURLToPath(new URL("../../../config/message_bus.yaml", import.meta.url)),
      MESSAGE_BUS_PUB_PORT: "0",
      MESSAGE_BUS_SUB_PORT: "0",
      MESSAGE_BUS_METRICS_PORT: "0",
    });
    broker = await startBroker(busConfig, serviceLog("broker", "error"));
  });

  afterAll(async () => {
    for (const c of consumers) await c.stop();
    await broker?.close();
    await lokiHandle?.stop();
  });

  it("logger -> broker -> consumer -> Loki, both wire formats, every field", async () => {
    const consumerA = await consumer({ run: "loggers", note: AWKWARD }, "protobuf");
    const endpoint = broker.pubEndpoint;
    const ours = createLogger({ subsystem: "api_gateway", module: "auth", endpoint, format: "aixcl" });
    const aico = createLogger({ subsystem: "Voice Engine", module: "stt", endpoint, format: "aico" });
    const before = BigInt(Date.now()) * 1_000_000n;
    const context = {
      function: "verify",
      filePath: "src/auth.ts",
      lineNumber: 42,
      traceId: "trace-1",
      sessionId: "sess-1",
      userUuid: "user-1",
      metadata: { request_id: "r-1", "odd key": 'quote" and\nnewline' },
    };
    for (let n = 0; n < 150; n++) {
      ours.log(n % 3 === 0 ? "error" : "info", `ours ${n}`, { attempt: n, nested: { ok: true } }, context);
      aico.warning(`aico ${n}`, { n }, context);
    }
    await Promise.all([ours.close(), aico.close()]);
    const after = BigInt(Date.now()) * 1_000_000n;

    const got = values(await lokiHandle.waitFor('{run="loggers"}', 300, 20_000));
    expect(got).toHaveLength(300);
    expect(await total(consumerA.metrics.pushedEntries)).toBe(300);

    const oursGot = got.filter((v) => v.line.startsWith("ours "));
    expect(oursGot.map((v) => v.line).sort()).toEqual(Array.from({ length: 150 }, (_, n) => `ours ${n}`).sort());
    for (const v of got) {
      expect(BigInt(v.ts) >= before && BigInt(v.ts) <= after, `timestamp ${v.ts}`).toBe(true);
      expect(v.labels).toMatchObject({ run: "loggers", note: AWKWARD });
      expect(v.metadata).toMatchObject({
        function: "verify",
        file_path: "src/auth.ts",
        line_number: "42",
        trace_id: "trace-1",
        session_id: "sess-1",
        user_uuid: "user-1",
        meta_request_id: "r-1",
        meta_odd_key: 'quote" and\nnewline',
      });
    }
    const first = oursGot.find((v) => v.line === "ours 0");
    expect(first?.labels).toMatchObject({ service: "api_gateway", level: "error" });
    expect(first?.metadata).toMatchObject({ module: "auth", topic: "logs.api_gateway.auth", extra_attempt: "0", extra_nested: '{"ok":true}' });
    const aicoFirst = got.find((v) => v.line === "aico 0");
    expect(aicoFirst?.labels).toMatchObject({ service: "voice_engine", level: "warning" });
    expect(aicoFirst?.metadata).toMatchObject({ module: "stt", topic: "logs/voice_engine/stt/v1", extra_n: "0" });
    // Only service, level and the static labels are stream labels (Loki may add service_name itself).
    for (const v of got) expect(Object.keys(v.labels).filter((k) => k !== "service_name").sort()).toEqual(["level", "note", "run", "service"]);
  });

  it.each([
    ["protobuf", "always"],
    ["protobuf", "when_queued"],
    ["json", "always"],
  ] as const)("both topic styles x both payload styles keep exact timestamps (%s push, compressed: %s)", async (encoding, compress) => {
    const run = `styles_${encoding}_${compress}`;
    const consumerB = await consumer({ run }, encoding, compress);
    const publisher = connectRawPublisher(broker.pubEndpoint);
    await publisher.waitForSubscriber("logs.");
    const base = (BigInt(Date.now()) - 60_000n) * 1_000_000n + 123_456_789n;
    const sent: LogEntry[] = [];
    const styles = [
      ["logs.billing.invoice", false],
      ["logs/billing/invoice/v1", false],
      ["logs.billing.invoice", true],
      ["logs/billing/invoice/v1", true],
    ] as const;
    for (let n = 0; n < 200; n++) {
      const [topic, envelope] = styles[n % 4] ?? styles[0];
      const entry = fullEntry({ subsystem: "billing", module: "invoice", level: "info", message: `${run} ${n} ${topic} ${envelope}`, timestampNs: base + BigInt(n) * 1_000_001n, topic: "" });
      sent.push(entry);
      const payload = envelope ? encodeAicoMessage(entry, { messageId: `m${n}`, timestampNs: entry.timestampNs, source: "test" }) : encodeLogEntry(entry);
      await publisher.publish(topic, payload);
    }
    const got = values(await lokiHandle.waitFor(`{run="${run}"}`, 200, 20_000));
    expect(got).toHaveLength(200);
    const byLine = new Map(got.map((v) => [v.line, v]));
    for (const entry of sent) {
      const v = byLine.get(entry.message);
      expect(v, entry.message).toBeDefined();
      expect(v?.ts).toBe(entry.timestampNs.toString());
      expect(v?.labels).toMatchObject({ service: "billing", level: "info", run });
      expect(v?.metadata).toMatchObject({ module: "invoice", function: "verify_token", trace_id: entry.traceId, extra_path: "/v1/login", meta_region_name: "local" });
      expect(v?.metadata.topic).toMatch(/^logs[./]billing[./]invoice/);
    }
    expect(await total(consumerB.metrics.decodeErrors)).toBe(0);
    publisher.close();
  });

  it("the default fields: those in the line are read by | logfmt, quoted values, a traceback's and all", async () => {
    const run = "line_fields";
    await consumer({ run }, "protobuf", "always", DEFAULT_FIELD_PLACES);
    const log = createLogger({ subsystem: "api_gateway", module: "auth", endpoint: broker.pubEndpoint, format: "aixcl" });
    const context = { function: "verify", filePath: "src/my auth.py", lineNumber: 42, traceId: "trace-2", metadata: { "odd key": 'quote" and\nnewline' } };
    log.error('failed: "x"\nTraceback (most recent call last):\n  File "a.py", line 1, in <module>\nValueError: bad', { attempt: 3 }, context);
    log.info("retry with function=other", { attempt: 1 }, context);
    await log.close();
    await lokiHandle.waitFor(`{run="${run}"}`, 2, 20_000);
    const query = async (pipeline: string) => values(await lokiHandle.queryRange(`{run="${run}"} ${pipeline}`));

    const byFunction = await query('| logfmt | function="verify"');
    expect(byFunction.map((v) => v.line.split("\n")[0]).sort()).toEqual([
      'failed: "x" function=verify file_path="src/my auth.py" line_number=42 topic=logs.api_gateway.auth trace_id=trace-2 meta_odd_key="quote\\" and\\nnewline" extra_attempt=3',
      "retry with function=other file_path=\"src/my auth.py\" line_number=42 topic=logs.api_gateway.auth trace_id=trace-2 meta_odd_key=\"quote\\\" and\\nnewline\" extra_attempt=1",
    ]);
    // The traceback's other lines are as logged.
    expect(byFunction.find((v) => v.line.startsWith("failed"))?.line.split("\n").slice(1)).toEqual(["Traceback (most recent call last):", '  File "a.py", line 1, in <module>', "ValueError: bad"]);
    // The message holding "function=other" kept the field in metadata, which the filter above read.
    const retry = byFunction.find((v) => v.line.startsWith("retry"));
    expect(retry?.metadata).toMatchObject({ module: "auth", function: "verify" });
    expect(retry?.metadata.trace_id).toBeUndefined();
    expect((await query('| logfmt | meta_odd_key="quote\\" and\\nnewline" | extra_attempt > 2')).map((v) => v.line.slice(0, 7))).toEqual(["failed:"]);
    expect((await query('| logfmt | line_number="42" | line_format "{{.file_path}}:{{.line_number}}"')).map((v) => v.line)).toEqual(["src/my auth.py:42", "src/my auth.py:42"]);
    // An id in the line: a line filter finds it, `| logfmt` makes it a label beside the metadata's module.
    expect((await query('|= "trace_id=trace-2"')).length).toBe(2);
    expect((await query('| logfmt | trace_id="trace-2" | module="auth"')).length).toBe(2);
  });

  it("a real 400: Loki's refusals are counted by reason and the valid entries are written once", async () => {
    const run = "refusals";
    const consumerC = await consumer({ run }, "protobuf");
    const publisher = connectRawPublisher(broker.pubEndpoint);
    await publisher.waitForSubscriber("logs.");
    const now = BigInt(Date.now()) * 1_000_000n;
    const entries = [
      fullEntry({ message: "good 1", timestampNs: now }),
      fullEntry({ message: "too old", timestampNs: now - 30n * 86_400n * 1_000_000_000n }),
      fullEntry({ message: `too long ${"x".repeat(300 * 1024)}`, timestampNs: now + 1n }),
      fullEntry({ message: "good 2", timestampNs: now + 2n, level: "error" }),
    ];
    for (const entry of entries) await publisher.publish("logs.api_gateway.auth", encodeLogEntry(entry));
    await until("4 entries settled", async () => (await total(consumerC.metrics.pushedEntries)) + (await total(consumerC.metrics.dropped)) === 4);
    expect(await valuesBy(consumerC.metrics.dropped)).toEqual({ greater_than_max_sample_age: 1, line_too_long: 1 });
    expect(await total(consumerC.metrics.pushedEntries)).toBe(2);
    expect(await total(consumerC.metrics.retries)).toBe(0);
    const got = values(await lokiHandle.waitFor(`{run="${run}"}`, 2));
    expect(got.map((v) => v.line).sort()).toEqual(["good 1", "good 2"]);
    publisher.close();
  });
});
