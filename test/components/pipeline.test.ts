import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "@aixcl/cli";
import { createLogger } from "@aixcl/client-logger";
import type { LokiHandle, PrometheusHandle } from "@aixcl/testkit";
import { busEntry, printComponentLogsOnFailure, requireComponents, startLoki, startPrometheus } from "@aixcl/testkit";
import type { BusHandle } from "@aixcl/bus-harness";
import { startBus } from "@aixcl/bus-harness";

printComponentLogsOnFailure();
const need = requireComponents("loki", "prometheus");
if (need.skip) console.warn(`[skipped] pipeline tests: ${need.skip}`);

const hostPort = (url: string) => new URL(url).host;

describe.skipIf(need.skip !== undefined)("logger -> broker -> consumer -> real Loki", () => {
  let loki: LokiHandle;
  let bus: BusHandle;
  let prometheus: PrometheusHandle;

  beforeAll(async () => {
    loki = await startLoki();
    bus = await startBus({ lokiUrl: loki.url });
    prometheus = await startPrometheus({
      targets: {
        "loki:3100": `127.0.0.1:${loki.httpPort}`,
        "broker:9464": hostPort(bus.broker.ops.url),
        "log-consumer:9465": hostPort(bus.consumer.opsUrl),
      },
    });
  });
  afterAll(async () => {
    await prometheus?.stop();
    await bus?.stop();
    await loki?.stop();
  });

  it("LogQL query_range returns what a logger published, with labels and structured metadata", async () => {
    const service = `rt_${randomUUID().slice(0, 8)}`;
    const log = createLogger({ subsystem: service, module: "roundtrip", endpoint: bus.pubEndpoint });
    log.error("disk almost full", { free_mb: 12 }, { traceId: "abc123", function: "check_disk" });
    await log.close();
    const [stream] = await loki.waitFor(`{service="${service}"}`, 1);
    expect(stream?.stream).toMatchObject({ service, level: "error" });
    // The shipped `fields`: function, trace_id and extra_* at the end of the line, module structured metadata.
    expect(stream?.values[0]?.[1]).toBe("disk almost full function=check_disk topic=logs." + service + ".roundtrip trace_id=abc123 extra_free_mb=12");
    expect(stream?.values[0]?.[2]).toMatchObject({ module: "roundtrip" });
    expect(stream?.values[0]?.[2]?.["trace_id"]).toBeUndefined();
    expect(busEntry(stream?.values[0]?.[1] ?? "", stream?.values[0]?.[2]).fields).toMatchObject({ module: "roundtrip", function: "check_disk", trace_id: "abc123", extra_free_mb: "12" });
  });

  it("live tail (the CLI's `logs tail --follow` over Loki's websocket) shows entries as they are published", { timeout: 60_000 }, async () => {
    const service = `tail_${randomUUID().slice(0, 8)}`;
    let out = "";
    const controller = new AbortController();
    const io = {
      stdout: { write: (s: string) => ((out += s), true) },
      stderr: { write: (s: string) => ((out += s), true) },
      env: {},
      signal: controller.signal,
    };
    const tailing = run(["logs", "tail", `{service="${service}"}`, "--follow", "--loki", loki.url], io);
    const log = createLogger({ subsystem: service, module: "live", endpoint: bus.pubEndpoint });
    try {
      // The tail starts while nothing matches; keep logging until the websocket delivers, as a person would watch.
      for (let i = 0; i < 40 && !out.includes("live entry"); i++) {
        log.info(`live entry ${i}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      controller.abort();
      await log.close();
    }
    expect(await tailing).toBe(0);
    expect(out).toMatch(/live entry \d+/);
  });

  it("Prometheus, from the shipped scrape config, reports Loki, the broker and the consumer up", { timeout: 60_000 }, async () => {
    const up = await prometheus.waitForTargetsUp(["loki", "broker", "log-consumer", "prometheus"]);
    expect(up.map((t) => t.job).sort()).toEqual(["broker", "log-consumer", "loki", "prometheus"]);
  });
});
