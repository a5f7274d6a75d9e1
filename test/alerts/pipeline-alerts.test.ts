/**
 * A pipeline rule firing on a real fault: the real Loki refuses an entry as too old, the real consumer drops
 * it (counted by Loki's reason), the real Prometheus, running the shipped prometheus.yml and rule files with
 * only the compose addresses mapped, scrapes that and sends LogConsumerDroppingEntries, and Loki's own count
 * LokiDiscardingSamples, to the real Alertmanager. Nothing in the rules is shortened: the scrape and
 * evaluation intervals are the shipped 15 s, and these rules have no `for:`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { XPublisher } from "zeromq";
import { encodeLogEntry } from "@aixcl/wire";
import {
  printComponentLogsOnFailure,
  requireComponents,
  shippedConfig,
  startAlertmanager,
  startLoki,
  startPrometheus,
  type AlertmanagerHandle,
  type LokiHandle,
  type PrometheusHandle,
} from "@aixcl/testkit";
import { startBus, type BusHandle } from "@aixcl/bus-harness";

const need = requireComponents("loki", "prometheus", "alertmanager");
if (need.skip) console.warn(`[skipped] pipeline alerts on a real fault: ${need.skip}`);
printComponentLogsOnFailure();

describe.skipIf(need.skip !== undefined)("pipeline alerts: a real fault reaches Alertmanager through Prometheus", () => {
  let alertmanager: AlertmanagerHandle;
  let loki: LokiHandle;
  let bus: BusHandle;
  let prometheus: PrometheusHandle;

  beforeAll(async () => {
    alertmanager = await startAlertmanager();
    // With the shipped log rules: a Loki that runs none is itself a pipeline fault (LogAlertRulesNotLoaded), which
    // Prometheus reports as pending from its first evaluation on, 15 s after the start.
    loki = await startLoki({ rulesDir: shippedConfig.lokiRules });
    bus = await startBus({ lokiUrl: loki.url });
    prometheus = await startPrometheus({
      targets: {
        "loki:3100": `127.0.0.1:${loki.httpPort}`,
        "log-consumer:9465": new URL(bus.consumer.opsUrl).host,
        "broker:9464": new URL(bus.broker.ops.url).host,
        // Both the scrape job and alerting.alertmanagers name it.
        "alertmanager:9093": `127.0.0.1:${alertmanager.httpPort}`,
      },
    });
    await prometheus.waitForTargetsUp(["loki", "log-consumer", "alertmanager"]);
  });
  afterAll(async () => {
    await prometheus?.stop();
    await bus?.stop();
    await loki?.stop();
    await alertmanager?.stop();
  });

  it("nothing fires while the pipeline is healthy", async () => {
    // Past the first evaluation, so that a rule that fires from the start would show.
    await new Promise((resolve) => setTimeout(resolve, 16_000));
    const res = (await (await fetch(`${prometheus.url}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string> }[] } };
    // Only the stack's services this test did not start (Promtail, Grafana) are down, and not yet for 2 minutes.
    expect(res.data.alerts.filter((a) => a.labels.alertname !== "TargetDown")).toEqual([]);
    expect(await alertmanager.alerts()).toEqual([]);
  });

  it("an entry Loki refuses as too old: LogConsumerDroppingEntries and LokiDiscardingSamples reach Alertmanager", { timeout: 150_000 }, async () => {
    const raw = new XPublisher({ linger: 1000 });
    raw.connect(bus.pubEndpoint);
    // Wait until the consumer's subscription has reached this publisher.
    for (;;) {
      const [frame] = await raw.receive();
      if (frame?.[0] === 1 && "logs.".startsWith(frame.subarray(1).toString())) break;
    }
    const eightDaysAgo = (BigInt(Date.now()) - 8n * 86_400_000n) * 1_000_000n;
    const faultAt = Date.now();
    await raw.send([
      "logs.pipeline_alerts.old",
      encodeLogEntry({
        timestampNs: eightDaysAgo, level: "info", subsystem: "pipeline_alerts", module: "old", function: "", message: "too old for Loki",
        topic: "logs.pipeline_alerts.old", metadata: {}, filePath: "", lineNumber: 0, userUuid: "", sessionId: "", traceId: "", extra: {},
      }),
    ]);
    raw.close();

    const dropped = await alertmanager.waitForAlert((a) => a.labels.alertname === "LogConsumerDroppingEntries", 120_000);
    console.log(`[measured] consumer drop -> LogConsumerDroppingEntries in Alertmanager: ${Date.now() - faultAt} ms (scrape and evaluation every 15 s)`);
    expect(dropped.labels).toEqual({ alertname: "LogConsumerDroppingEntries", job: "log-consumer", reason: "greater_than_max_sample_age", severity: "critical" });
    expect(dropped.annotations.summary).toBe("The log consumer dropped 1 entries in 5 minutes (reason greater_than_max_sample_age)");
    expect(dropped.generatorURL).toContain("/graph?g0.expr=");

    const discarded = await alertmanager.waitForAlert((a) => a.labels.alertname === "LokiDiscardingSamples", 60_000);
    expect(discarded.labels).toMatchObject({ job: "loki", reason: "greater_than_max_sample_age", severity: "warning" });
  });
});
