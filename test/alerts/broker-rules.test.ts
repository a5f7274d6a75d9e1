/**
 * The broker's alert rules (prometheus/rules/broker.yml), checked by the program that runs them: promtool accepts
 * the file and its unit tests (broker.rules.test.yml) pass in Prometheus' own evaluator; a rule changed so that
 * it misses a drop fails them.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { repoRoot, requireComponents, runComponent, tempDir } from "@aixcl/testkit";

const here = fileURLToPath(new URL(".", import.meta.url));
const rules = join(repoRoot, "prometheus/rules/broker.yml");
const unitTests = join(here, "broker.rules.test.yml");

const need = requireComponents("promtool");
if (need.skip) console.warn(`[skipped] broker alert rules: ${need.skip}`);

describe.skipIf(need.skip !== undefined)("the broker's alert rules in promtool", () => {
  it("check rules accepts the file", async () => {
    const r = await runComponent("promtool", ["check", "rules", rules]);
    expect(r.output).toContain("SUCCESS: 3 rules found");
    expect(r.status).toBe(0);
  });

  it("the unit tests pass", async () => {
    const r = await runComponent("promtool", ["test", "rules", unitTests]);
    expect(r.output).toContain("SUCCESS");
    expect(r.status).toBe(0);
  });

  it("the unit tests catch a rule that misses the first drops of a series Prometheus has not seen before", async () => {
    const dir = tempDir("broker-rules");
    writeFileSync(join(dir, "broker.yml"), readFileSync(rules, "utf8").replace(/\(aixcl_broker_dropped_messages_total unless aixcl_broker_dropped_messages_total offset 5m\)\s*or /, ""));
    writeFileSync(join(dir, "broker.rules.test.yml"), readFileSync(unitTests, "utf8").replace("../../prometheus/rules/broker.yml", "broker.yml"));
    const r = await runComponent("promtool", ["test", "rules", join(dir, "broker.rules.test.yml")]);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain("alertname: BrokerDroppingMessages");
  });
});
