/**
 * Every shipped alert rule and the Alertmanager config, checked by the programs that run them: Loki's ruler
 * loads the log rules (and refuses a broken one), Loki and Prometheus accept each expression, promtool checks
 * and unit-tests the pipeline rules, amtool checks the Alertmanager config with and without its examples.
 * Which rules fire on what, for real, is test/alerts/log-alerts.test.ts and pipeline-alerts.test.ts.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUS_TEST_SUBSYSTEM } from "@aixcl/cli";
import {
  printComponentLogsOnFailure,
  repoRoot,
  requireComponents,
  runComponent,
  shippedConfig,
  startLoki,
  startPrometheus,
  tempDir,
  type LokiHandle,
  type PrometheusHandle,
} from "@aixcl/testkit";
import { excludedValues, lokiRuleFiles, prometheusRuleFiles, stackProject, stackServices, uncommentExamples } from "./shipped.js";

printComponentLogsOnFailure();
const here = fileURLToPath(new URL(".", import.meta.url));

describe("the log rules leave out the stack's own services by label, never by text", () => {
  const rules = lokiRuleFiles();

  it("there are the two error-burst rules", () => {
    expect(rules.map((r) => r.rule.alert).sort()).toEqual(["ApplicationErrorBurst", "ContainerErrorBurst"]);
  });

  it.each([
    ["ApplicationErrorBurst", "service", () => [...stackServices(), BUS_TEST_SUBSYSTEM]],
    ["ContainerErrorBurst", "compose_project", () => [stackProject()]],
  ])("%s leaves out the stack (its services on the bus, its compose project among containers) in each selector on %s", (alert, label, stack) => {
    const expr = rules.find((r) => r.rule.alert === alert)?.rule.expr ?? "";
    const selectors = expr.match(/\{[^{}]*\}/g) ?? [];
    expect(selectors.length).toBeGreaterThan(0);
    for (const selector of selectors) {
      const excluded = excludedValues(selector, label);
      expect(excluded, `${alert}: ${selector}`).toBeDefined();
      for (const own of stack()) expect(excluded, `${alert} must leave out ${own}`).toContain(own);
    }
  });

  it("no rule leaves anything out by its text (a negative line filter): a query's text is what shows up in logs", () => {
    // Label matchers live inside the selector's braces; a line filter follows them.
    const lineFilters = (expr: string) => expr.replace(/\{[^{}]*\}/g, "{}");
    for (const { rule } of rules) expect(lineFilters(rule.expr), rule.alert).not.toMatch(/(!=|!~)\s*["`]/);
    expect(lineFilters('{compose_service!~"loki"} != "query="')).toMatch(/(!=|!~)\s*["`]/);
  });

  it("LOGGING.md shows each rule's expression as shipped", () => {
    // Spacing around parentheses and line breaks aside.
    const norm = (text: string) => text.replace(/\s*([()])\s*/g, "$1").replace(/\s+/g, " ").trim();
    const docs = readFileSync(join(repoRoot, "LOGGING.md"), "utf8").split("\n").map(norm);
    for (const { rule } of rules) expect(docs, `${rule.alert} in LOGGING.md, section Alerts`).toContain(norm(rule.expr));
  });

  it("the stack check can fail: a service missing from the exclusion is caught", () => {
    expect(excludedValues('{compose_service!~"loki|grafana"}', "compose_service")).not.toContain("promtail");
    expect(excludedValues('{compose_service=~".+"}', "compose_service")).toBeUndefined();
  });
});

const needLoki = requireComponents("loki");
if (needLoki.skip) console.warn(`[skipped] Loki rule validation: ${needLoki.skip}`);

describe.skipIf(needLoki.skip !== undefined)("Loki's ruler loads the shipped log rules", () => {
  let loki: LokiHandle;
  beforeAll(async () => {
    loki = await startLoki({ rulesDir: shippedConfig.lokiRules, args: ["-ruler.evaluation-interval=1s"] });
  });
  afterAll(async () => loki?.stop());

  it("lists every shipped rule, and each evaluates without an error", { timeout: 30_000 }, async () => {
    type Rules = { data: { groups: { name: string; file: string; rules: { name: string; health: string; lastError: string; query: string }[] }[] } };
    await expect
      .poll(async () => {
        const body = (await (await fetch(`${loki.url}/prometheus/api/v1/rules`)).json()) as Rules;
        return body.data.groups.flatMap((g) => g.rules.map((r) => `${g.file}:${g.name}:${r.name}:${r.health}:${r.lastError}`)).sort();
      }, { timeout: 20_000, interval: 500 })
      .toEqual(lokiRuleFiles().map((r) => `${r.file.split("/").at(-1)}:${r.group}:${r.rule.alert}:ok:`).sort());
  });

  it("accepts each rule's expression as a query", async () => {
    for (const { rule } of lokiRuleFiles()) {
      const res = await fetch(`${loki.url}/loki/api/v1/query?${new URLSearchParams({ query: rule.expr })}`);
      expect(res.status, `${rule.alert}: ${await res.text()}`).toBe(200);
    }
  });

  it("refuses a rule file that does not parse: it loads no rule at all and logs the file and the reason (the check can fail)", { timeout: 60_000 }, async () => {
    const dir = tempDir("loki-bad-rules");
    mkdirSync(join(dir, "fake"));
    for (const { file } of lokiRuleFiles()) copyFileSync(file, join(dir, "fake", file.split("/").at(-1) as string));
    writeFileSync(join(dir, "fake", "broken.yaml"), readFileSync(lokiRuleFiles()[0]!.file, "utf8").replace(/\)\s*>\s*10/, ") >"));
    const bad = await startLoki({ rulesDir: dir });
    try {
      await expect.poll(() => bad.logs(), { timeout: 20_000 }).toMatch(/unable to list rules.*broken\.yaml.*could not parse expression for alert/);
      const body = (await (await fetch(`${bad.url}/prometheus/api/v1/rules`)).json()) as { data: { groups: unknown[] } };
      expect(body.data.groups).toEqual([]);
    } finally {
      await bad.stop();
    }
  });
});

const needTools = requireComponents("promtool", "prometheus");
if (needTools.skip) console.warn(`[skipped] Prometheus rule checks: ${needTools.skip}`);

describe.skipIf(needTools.skip !== undefined)("the pipeline rules in promtool and Prometheus", () => {
  it("promtool check rules accepts every rule file", async () => {
    const files = [...new Set(prometheusRuleFiles().map((r) => r.file))];
    expect(files.length).toBeGreaterThan(0);
    const r = await runComponent("promtool", ["check", "rules", ...files]);
    expect(r.output, r.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });

  it("promtool check rules rejects a broken expression (the check can fail)", async () => {
    const bad = join(tempDir("prom-bad-rules"), "bad.yml");
    const file = prometheusRuleFiles().find((r) => r.rule.alert === "TargetDown")!.file;
    writeFileSync(bad, readFileSync(file, "utf8").replace("up == 0", "up == "));
    const r = await runComponent("promtool", ["check", "rules", bad]);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/TargetDown|parse error/);
  });

  // Each rule file prometheus/rules/<name>.yml has its unit tests here, in <name>.rules.test.yml.
  const unitTests = (ruleFile: string) => join(here, `${basename(ruleFile, ".yml")}.rules.test.yml`);

  it("promtool test rules: each rule fires and stays quiet when it should, `for:` included", async () => {
    for (const file of new Set(prometheusRuleFiles().map((r) => r.file))) {
      const r = await runComponent("promtool", ["test", "rules", unitTests(file)]);
      expect(r.output, r.output).toContain("SUCCESS");
      expect(r.status).toBe(0);
    }
  });

  it("the unit tests cover every pipeline rule", () => {
    for (const { file, rule } of prometheusRuleFiles()) expect(readFileSync(unitTests(file), "utf8"), rule.alert).toContain(`alertname: ${rule.alert}\n`);
  });

  describe("a Prometheus running the shipped config", () => {
    let prometheus: PrometheusHandle;
    beforeAll(async () => {
      prometheus = await startPrometheus();
    });
    afterAll(async () => prometheus?.stop());

    it("loads every shipped rule, each healthy once evaluated", { timeout: 60_000 }, async () => {
      type Rules = { data: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] } };
      await expect
        .poll(async () => {
          const body = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as Rules;
          return body.data.groups.flatMap((g) => g.rules.map((r) => `${g.name}:${r.name}:${r.health}:${r.lastError ?? ""}`)).sort();
        }, { timeout: 40_000, interval: 1000 })
        .toEqual(prometheusRuleFiles().map((r) => `${r.group}:${r.rule.alert}:ok:`).sort());
    });
  });
});

const needAmtool = requireComponents("amtool");
if (needAmtool.skip) console.warn(`[skipped] Alertmanager config checks: ${needAmtool.skip}`);

describe.skipIf(needAmtool.skip !== undefined)("alertmanager/alertmanager.yml in amtool", () => {
  it("check-config accepts it: one receiver, which notifies nobody", async () => {
    const r = await runComponent("amtool", ["check-config", shippedConfig.alertmanager]);
    expect(r.output).toContain("SUCCESS");
    expect(r.output).toContain(" - 1 receivers");
    expect(r.status).toBe(0);
    const route = await runComponent("amtool", ["config", "routes", "test", `--config.file=${shippedConfig.alertmanager}`, "alertname=ApplicationErrorBurst", "service=api"]);
    expect(route.output.trim()).toBe("local");
  });

  it("the commented webhook example is valid and routes the log alerts to the webhook when switched on", async () => {
    const file = join(tempDir("am-example"), "alertmanager.yml");
    const text = uncommentExamples(readFileSync(shippedConfig.alertmanager, "utf8"));
    writeFileSync(file, text);
    expect(text).toMatch(/^ {2}- name: webhook$/m);
    const r = await runComponent("amtool", ["check-config", file]);
    expect(r.output).toContain(" - 2 receivers");
    expect(r.status).toBe(0);
    const test = (labels: string[]) => runComponent("amtool", ["config", "routes", "test", `--config.file=${file}`, ...labels]);
    expect((await test(["alertname=ContainerErrorBurst", "compose_service=ollama"])).output.trim()).toBe("webhook");
    expect((await test(["alertname=TargetDown", "job=promtail"])).output.trim()).toBe("local");
  });

  it("check-config rejects a route to a receiver that does not exist (the check can fail)", async () => {
    const file = join(tempDir("am-bad"), "alertmanager.yml");
    writeFileSync(file, readFileSync(shippedConfig.alertmanager, "utf8").replace("receiver: local", "receiver: nowhere"));
    const r = await runComponent("amtool", ["check-config", file]);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain('undefined receiver "nowhere"');
  });
});
