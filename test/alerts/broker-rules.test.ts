/**
 * The broker's alert rules (prometheus/rules/broker.yml): their unit tests (broker.rules.test.yml, which
 * test/alerts/rules.test.ts runs with every rule file's) catch a rule changed so that it misses a drop.
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
  it("the unit tests catch a rule that misses the first drops of a series Prometheus has not seen before", async () => {
    const dir = tempDir("broker-rules");
    writeFileSync(join(dir, "broker.yml"), readFileSync(rules, "utf8").replace(/\(aixcl_broker_dropped_messages_total unless aixcl_broker_dropped_messages_total offset 5m\)\s*or /, ""));
    writeFileSync(join(dir, "broker.rules.test.yml"), readFileSync(unitTests, "utf8").replace("../../prometheus/rules/broker.yml", "broker.yml"));
    const r = await runComponent("promtool", ["test", "rules", join(dir, "broker.rules.test.yml")]);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain("alertname: BrokerDroppingMessages");
  });
});
