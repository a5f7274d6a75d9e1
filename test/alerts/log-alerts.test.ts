/**
 * The shipped log alert rules in the real Loki ruler, sending to the real Alertmanager (its shipped config),
 * with application logs arriving through the real broker and consumer (bus-harness's startBus).
 *
 * What is evaluated is the shipped rule file itself: Loki reads loki/rules (its rules folder set by the same
 * flag the tests use for every path), so the expressions, the 5-minute windows and the thresholds are exactly
 * what the stack runs. The only change is Loki's -ruler.evaluation-interval flag, 2 s instead of the shipped
 * 1 m, so that each check waits seconds, not minutes; the rules have no `for:`, so nothing else depends on time.
 *
 * Container logs are pushed with the labels Promtail gives a container's lines (its Docker discovery needs a
 * Docker engine, which these tests do not have); Loki's own lines are the real ones this Loki wrote.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUS_TEST_SUBSYSTEM, runAlerts } from "@aixcl/cli";
import { createLogger } from "@aixcl/client-logger";
import {
  metricSample,
  printComponentLogsOnFailure,
  requireComponents,
  shippedConfig,
  startAlertmanager,
  startLoki,
  type AlertmanagerAlert,
  type AlertmanagerHandle,
  type LokiHandle,
  type LokiStream,
} from "@aixcl/testkit";
import { startBus, type BusHandle } from "@aixcl/bus-harness";
import { lokiRule, stackProject, stackServices } from "./shipped.js";

const need = requireComponents("loki", "alertmanager");
if (need.skip) console.warn(`[skipped] log alerts in the real Loki ruler: ${need.skip}`);
printComponentLogsOnFailure();

const EVALUATION_INTERVAL_S = 2;

/** The number after `>` in a rule: the most entries per window that do not fire. */
function threshold(alert: string): number {
  const m = /\)\s*>\s*(\d+)\s*$/.exec(lokiRule(alert).expr.trim());
  if (!m) throw new Error(`${alert}: no "> N" threshold at the end of its expression`);
  return Number(m[1]);
}

const subject = (a: AlertmanagerAlert) => a.labels.service ?? a.labels.compose_service ?? a.labels.container ?? "";

/**
 * Promtail's labels for a line of container `service` of compose project `project` (promtail/promtail-config.yml);
 * by default the logging stack's own project. An empty project is a plain `docker run` container named `service`.
 */
function containerStream(service: string, lines: string[], level?: string, project = stackProject()): LokiStream {
  const now = BigInt(Date.now()) * 1_000_000n;
  const compose: Record<string, string> = project === "" ? {} : { compose_project: project, compose_service: service };
  return {
    stream: { ...compose, container: project === "" ? service : `${project}-${service}-1`, stream: "stderr", job: "containers", ...(level ? { level } : {}) },
    values: lines.map((line, i) => [String(now - BigInt(lines.length - i) * 1000n), line]),
  };
}

describe.skipIf(need.skip !== undefined)("log alerts: the shipped rules in the real Loki ruler and Alertmanager", () => {
  let alertmanager: AlertmanagerHandle;
  let loki: LokiHandle;
  let bus: BusHandle;

  async function publish(subsystem: string, level: "info" | "error" | "critical", count: number, text = "request failed"): Promise<void> {
    const logger = createLogger({ subsystem, module: "alerts_test", endpoint: bus.pubEndpoint });
    for (let i = 0; i < count; i++) logger[level](`${text} ${i}`);
    const stats = await logger.close();
    expect(stats.published).toBe(count);
  }

  async function instant(logql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await fetch(`${loki.url}/loki/api/v1/query?${new URLSearchParams({ query: logql })}`);
    const body = await res.text();
    expect(res.status, body).toBe(200);
    return (JSON.parse(body) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
  }

  /** Resolves after every rule group has been evaluated twice from now on: whatever is in Loki now was seen. */
  async function twoEvaluations(): Promise<void> {
    const groups = async () =>
      ((await (await fetch(`${loki.url}/prometheus/api/v1/rules`)).json()) as { data: { groups: { name: string; lastEvaluation: string }[] } }).data.groups;
    for (let round = 0; round < 2; round++) {
      const since = Date.now();
      await expect.poll(async () => (await groups()).every((g) => Date.parse(g.lastEvaluation) > since), { timeout: 20_000, interval: 250 }).toBe(true);
    }
  }

  beforeAll(async () => {
    alertmanager = await startAlertmanager();
    loki = await startLoki({ rulesDir: shippedConfig.lokiRules, alertmanagerUrl: alertmanager.url, args: [`-ruler.evaluation-interval=${EVALUATION_INTERVAL_S}s`] });
    bus = await startBus({ lokiUrl: loki.url });
  });
  afterAll(async () => {
    await bus?.stop();
    await loki?.stop();
    await alertmanager?.stop();
  });

  it("Loki runs both shipped rules", async () => {
    const body = (await (await fetch(`${loki.url}/prometheus/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string }[] }[] } };
    expect(body.data.groups.flatMap((g) => g.rules.map((r) => r.name)).sort()).toEqual(["ApplicationErrorBurst", "ContainerErrorBurst"]);
  });

  it("at the threshold nothing fires: 10 error entries of a service in 5 minutes, among info entries", { timeout: 60_000 }, async () => {
    const limit = threshold("ApplicationErrorBurst");
    expect(limit).toBe(10);
    await publish("payments", "info", 30, "request served");
    await publish("payments", "error", limit - 1);
    await publish("payments", "critical", 1);
    await loki.waitFor('{service="payments", level=~"error|critical"}', limit);
    await twoEvaluations();
    expect((await alertmanager.alerts()).filter((a) => subject(a) === "payments")).toEqual([]);
  });

  it("one more error fires ApplicationErrorBurst, which reaches Alertmanager with the service label", { timeout: 60_000 }, async () => {
    const published = Date.now();
    await publish("payments", "error", 1);
    const alert = await alertmanager.waitForAlert((a) => a.labels.alertname === "ApplicationErrorBurst" && a.labels.service === "payments", 30_000);
    const latencyMs = Date.now() - published;
    expect(alert.labels).toEqual({ alertname: "ApplicationErrorBurst", service: "payments", severity: "warning", source: "bus" });
    expect(alert.annotations.summary).toBe("payments logged 11 error or critical entries on the bus in 5 minutes");
    expect(alert.annotations.description).toBe(`./aixcl logs query '{service="payments", level=~"error|critical"}' --since 15m`);
    console.log(`[measured] bus burst -> alert in Alertmanager: ${latencyMs} ms (ruler evaluating every ${EVALUATION_INTERVAL_S} s; shipped: 1 m)`);

    // And ./aixcl alerts lists it.
    const out = { stdout: "", stderr: "" };
    const code = await runAlerts(
      { kind: "alerts", alertmanagerUrl: alertmanager.url, json: false },
      { stdout: { write: (s: string) => (out.stdout += s) }, stderr: { write: (s: string) => (out.stderr += s) }, env: {}, signal: new AbortController().signal },
    );
    expect(code).toBe(0);
    expect(out.stdout).toMatch(/\npayments +ApplicationErrorBurst +\S+ \(\d+s ago\) +payments logged 11 error or critical entries on the bus in 5 minutes\n/);
  });

  it("self-alerting is impossible: Loki's own query lines and error lines of every stack service fire nothing", { timeout: 120_000 }, async () => {
    const stack = stackServices();
    const above = threshold("ContainerErrorBurst") + 10;

    // Loki's own log: the ruler prints each rule's query (with "error", "critical", "exception", ...) several
    // times per evaluation. These real lines, labelled as Promtail labels the loki container's output.
    const queryLinesOf = (log: string) => log.split("\n").filter((l) => l.includes("ContainerErrorBurst") || l.includes("count_over_time"));
    await expect.poll(() => queryLinesOf(loki.logs()).length, { timeout: 30_000 }).toBeGreaterThan(above);
    const queryLines = queryLinesOf(loki.logs());
    expect(queryLines.some((l) => /error\|exception\|fatal\|panic\|critical\|traceback/.test(l))).toBe(true);
    const streams: LokiStream[] = [containerStream("loki", queryLines.slice(-200))];
    // Every stack service: JSON error lines (Promtail makes their level a label) and plain error lines.
    for (const service of stack) {
      streams.push(containerStream(service, Array.from({ length: above }, (_, i) => JSON.stringify({ level: "error", msg: `push failed ${i}`, error: "connection refused" })), "error"));
      streams.push(containerStream(service, Array.from({ length: above }, (_, i) => `level=error msg="query failed ${i}" err="ContainerErrorBurst exception"`)));
    }
    // Controls. AIXCL's own ollama (compose project aixcl) with as many plain error lines: must fire, proving these
    // lines would count; so must a plain `docker run` container of no project.
    streams.push(containerStream("ollama", Array.from({ length: above }, (_, i) => `ERROR: model load failed (${i})`), undefined, "aixcl"));
    streams.push(containerStream("eager_turing", Array.from({ length: above }, (_, i) => `Traceback (most recent call last): boom ${i}`), undefined, ""));
    // A user container whose JSON lines say level info while their text says error: must not fire.
    streams.push(containerStream("quiet_worker", Array.from({ length: above }, (_, i) => JSON.stringify({ level: "info", msg: `retried after error ${i}` })), "info", "shop"));
    await loki.push(streams);
    // On the bus: every stack service name and the bus test's subsystem, above the threshold.
    for (const subsystem of [...stack, BUS_TEST_SUBSYSTEM]) await publish(subsystem, "error", above);
    await loki.waitFor(`{service=~"${[...stack, BUS_TEST_SUBSYSTEM].join("|")}"}`, above * (stack.length + 1), 30_000);

    // Loki's query lines alone would fire the container rule, were Loki not left out by its label: the rule's
    // own line filter matches more of them than the threshold.
    const pattern = /\|~ `([^`]+)`/.exec(lokiRule("ContainerErrorBurst").expr)?.[1];
    expect(pattern).toBeDefined();
    const [byText] = await instant(`sum(count_over_time({compose_project="${stackProject()}", compose_service="loki", level=""} |~ \`${pattern}\` [5m]))`);
    expect(Number(byText?.value[1])).toBeGreaterThan(threshold("ContainerErrorBurst"));

    await alertmanager.waitForAlert((a) => a.labels.alertname === "ContainerErrorBurst" && a.labels.compose_service === "ollama" && a.labels.compose_project === "aixcl", 30_000);
    await alertmanager.waitForAlert((a) => a.labels.alertname === "ContainerErrorBurst" && a.labels.container === "eager_turing", 30_000);
    await twoEvaluations();
    const own = new Set([...stack, BUS_TEST_SUBSYSTEM]);
    const fired = (await alertmanager.alerts()).map((a) => `${a.labels.alertname} ${subject(a)}`);
    expect(fired.filter((f) => own.has(f.split(" ")[1] as string))).toEqual([]);
    expect(fired).toContain("ContainerErrorBurst ollama");
    expect(fired.filter((f) => f.endsWith(" quiet_worker"))).toEqual([]);
    // Loki's ruler agrees: no stack service is even pending.
    const ruler = (await (await fetch(`${loki.url}/prometheus/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string> }[] } };
    expect(ruler.data.alerts.map((a) => a.labels.service ?? a.labels.compose_service).filter((s) => own.has(s ?? ""))).toEqual([]);
  });

  it("reports what evaluating the rules costs Loki (printed for LOGGING.md)", async () => {
    const sum = await metricSample(loki.url, 'loki_prometheus_rule_evaluation_duration_seconds_sum{user="fake"}');
    const count = await metricSample(loki.url, 'loki_prometheus_rule_evaluation_duration_seconds_count{user="fake"}');
    const failures = (await (await fetch(`${loki.url}/metrics`)).text()).match(/^loki_prometheus_rule_evaluation_failures_total\{.*\} (\d+)$/m)?.[1];
    expect(count).toBeGreaterThan(0);
    expect(failures).toBe("0");
    console.log(`[measured] rule evaluations: ${count}, mean ${(((sum ?? 0) / (count ?? 1)) * 1000).toFixed(2)} ms each (Loki's ruler metrics; small data set)`);
  });
});
