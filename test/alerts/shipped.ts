/**
 * The shipped alert rules and what they must agree with, read the way Loki and Prometheus read them: Loki's
 * rule files (loki/rules/<tenant>/*.yaml), Prometheus' (prometheus/rules/*.yml) and the stack's services
 * (docker-compose.yml).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { repoRoot, shippedConfig } from "@aixcl/testkit";

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface ShippedRule {
  file: string;
  group: string;
  rule: AlertRule;
}

function rulesIn(dir: string, pattern: RegExp): ShippedRule[] {
  return readdirSync(dir)
    .filter((f) => pattern.test(f))
    .flatMap((f) => {
      const doc = parse(readFileSync(join(dir, f), "utf8")) as { groups: { name: string; rules: AlertRule[] }[] };
      return doc.groups.flatMap((g) => g.rules.map((rule) => ({ file: join(dir, f), group: g.name, rule })));
    });
}

/** Loki's rules for tenant "fake", the only tenant with auth_enabled: false. */
export const lokiRuleFiles = (): ShippedRule[] => rulesIn(join(shippedConfig.lokiRules, "fake"), /\.ya?ml$/);
export const prometheusRuleFiles = (): ShippedRule[] => rulesIn(shippedConfig.prometheusRules, /\.ya?ml$/);

export function lokiRule(alert: string): AlertRule {
  const found = lokiRuleFiles().find((r) => r.rule.alert === alert);
  if (!found) throw new Error(`no Loki rule ${alert} in ${shippedConfig.lokiRules}`);
  return found.rule;
}

/** Every service of docker-compose.yml: the stack's own, which the log rules must never alert on. */
export function stackServices(): string[] {
  const compose = parse(readFileSync(join(repoRoot, "docker-compose.yml"), "utf8"), { merge: true }) as { services: Record<string, unknown> };
  return Object.keys(compose.services);
}

/** The compose project the logging stack runs as (`name:` in docker-compose.yml). */
export function stackProject(): string {
  const compose = parse(readFileSync(join(repoRoot, "docker-compose.yml"), "utf8")) as { name: string };
  return compose.name;
}

/**
 * The values a negative regexp matcher on `label` excludes in a LogQL/PromQL selector (`label!~"a|b"`), or
 * undefined when there is none.
 */
export function excludedValues(expr: string, label: string): string[] | undefined {
  const m = new RegExp(`\\b${label}\\s*!~\\s*"([^"]*)"`).exec(expr);
  return m ? (m[1] as string).split("|") : undefined;
}

/**
 * alertmanager.yml with its commented examples switched on: a commented line whose text is YAML (starts with
 * `-` or a lower-case key followed by `:`) loses its `# `; prose comments (which start with a capital) stay.
 */
export function uncommentExamples(yamlText: string): string {
  return yamlText.replace(/^(\s*)# (\s*)((?:- |[a-z_]+:).*)$/gm, "$1$2$3");
}
