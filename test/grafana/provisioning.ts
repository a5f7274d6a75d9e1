/**
 * Reads what we provision to Grafana the way Grafana does: the datasource and dashboard-provider YAML (with
 * Grafana's `$$` -> `$` unescaping) and the dashboard JSON files, and lists every query in them. Also renders
 * a query as Grafana would send it for given variable values, so the real Loki/Prometheus can check it.
 */
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { parse } from "yaml";

export const grafanaDir = fileURLToPath(new URL("../../grafana/", import.meta.url));
export const dashboardsDir = join(grafanaDir, "dashboards");
export const datasourcesFile = join(grafanaDir, "provisioning/datasources/datasources.yml");
export const dashboardProvidersFile = join(grafanaDir, "provisioning/dashboards/dashboards.yml");

export interface DerivedField {
  name: string;
  matcherType?: "label" | "regex";
  matcherRegex: string;
  datasourceUid?: string;
  urlDisplayLabel?: string;
  url?: string;
}

export interface ProvisionedDatasource {
  name: string;
  uid: string;
  type: string;
  url: string;
  isDefault?: boolean;
  jsonData?: { derivedFields?: DerivedField[]; [key: string]: unknown };
}

export interface DashboardProvider {
  name: string;
  folder?: string;
  folderUid?: string;
  type: string;
  options: { path: string; foldersFromFilesStructure?: boolean };
}

/**
 * Grafana expands `$NAME` and `${NAME}` from its environment in every string value of a provisioning file
 * and turns `$$` into `$`. Our files use no environment variables, so anything but `$$` that would expand
 * is reported as an error.
 */
export function grafanaExpand(text: string): string {
  return text.replace(/\$\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match) => {
    if (match === "$$") return "$";
    throw new Error(`${match} would be expanded from Grafana's environment; write $${match} for a literal`);
  });
}

function expandValues(node: unknown): unknown {
  if (typeof node === "string") return grafanaExpand(node);
  if (Array.isArray(node)) return node.map(expandValues);
  if (node !== null && typeof node === "object") {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, expandValues(v)]));
  }
  return node;
}

function readProvisioningYaml(file: string): unknown {
  return expandValues(parse(readFileSync(file, "utf8")));
}

export function provisionedDatasources(): ProvisionedDatasource[] {
  return (readProvisioningYaml(datasourcesFile) as { datasources: ProvisionedDatasource[] }).datasources;
}

export function dashboardProviders(): DashboardProvider[] {
  return (readProvisioningYaml(dashboardProvidersFile) as { providers: DashboardProvider[] }).providers;
}

export type DashboardJson = { uid: string; title: string; panels?: PanelJson[]; templating?: { list?: VariableJson[] } } & Record<string, unknown>;
interface PanelJson {
  title?: string;
  type: string;
  datasource?: { uid?: string; type?: string };
  targets?: { expr?: string; queryType?: string; datasource?: { uid?: string; type?: string }; refId?: string; instant?: boolean; range?: boolean }[];
}
export interface VariableJson {
  name: string;
  type: string;
  datasource?: { uid?: string; type?: string };
  query?: unknown;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
  current?: { value?: string | string[] };
}

/** The checked-in dashboard files, by file name. */
export function checkedInDashboards(): Map<string, { text: string; json: DashboardJson }> {
  const out = new Map<string, { text: string; json: DashboardJson }>();
  for (const file of readdirSync(dashboardsDir).filter((f) => f.endsWith(".json")).sort()) {
    const text = readFileSync(join(dashboardsDir, file), "utf8");
    out.set(file, { text, json: JSON.parse(text) as DashboardJson });
  }
  return out;
}

/** Every `datasource.uid` anywhere in a dashboard (panels, targets, variables, annotations). */
export function referencedDatasourceUids(node: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(node)) {
    for (const item of node) referencedDatasourceUids(item, found);
  } else if (node !== null && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "datasource" && value !== null && typeof value === "object" && "uid" in value) {
        found.add(String((value as { uid: unknown }).uid));
      }
      referencedDatasourceUids(value, found);
    }
  }
  return found;
}

export interface PanelQuery {
  dashboard: string;
  panel: string;
  datasourceUid: string;
  expr: string;
  instant: boolean;
}

export function panelQueries(dashboard: DashboardJson): PanelQuery[] {
  return (dashboard.panels ?? []).flatMap((panel) =>
    (panel.targets ?? []).map((t) => {
      const datasourceUid = t.datasource?.uid ?? panel.datasource?.uid;
      if (datasourceUid === undefined) throw new Error(`${dashboard.title} / ${panel.title}: query without a datasource`);
      if (t.expr === undefined) throw new Error(`${dashboard.title} / ${panel.title}: query without expr`);
      return { dashboard: dashboard.title, panel: panel.title ?? "", datasourceUid, expr: t.expr, instant: t.queryType === "instant" || t.instant === true };
    }),
  );
}

/** Loki label-values variables: `label_values(stream, label)` in Loki's variable query model. */
export interface LabelValuesVariable {
  dashboard: string;
  name: string;
  label: string;
  stream: string;
}

export function lokiLabelValuesVariables(dashboard: DashboardJson): LabelValuesVariable[] {
  return (dashboard.templating?.list ?? [])
    .filter((v) => v.type === "query")
    .map((v) => {
      const q = v.query as { type?: number; label?: string; stream?: string } | undefined;
      if (v.datasource?.uid !== "loki" || q?.type !== 1 || typeof q.label !== "string") {
        throw new Error(`${dashboard.title} / $${v.name}: expected a Loki label-values query, got ${JSON.stringify(v.query)}`);
      }
      return { dashboard: dashboard.title, name: v.name, label: q.label, stream: q.stream ?? "" };
    });
}

/** A variable's value as the user picked it: one string, several, or "All". */
export type VariableValue = string | string[] | { all: true };

/**
 * Renders a query the way Grafana's Loki/Prometheus datasources interpolate it: multi-value and "All"
 * selections become a regex alternation (values regex-escaped) or the variable's allValue; single values go
 * in verbatim. Built-in interval/range variables take the given durations. Any `$name` left unresolved is
 * an error, so a query can never reach Loki with a literal variable in it.
 */
export function renderQuery(
  expr: string,
  variables: readonly VariableJson[],
  values: Readonly<Record<string, VariableValue>>,
  builtins: Readonly<Record<string, string>> = { __auto: "1m", __interval: "1m", __rate_interval: "1m", __range: "1h" },
): string {
  const byName = new Map(variables.map((v) => [v.name, v]));
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (match, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare) as string;
    if (name in builtins) return builtins[name] as string;
    const variable = byName.get(name);
    const value = values[name];
    if (!variable || value === undefined) throw new Error(`no value for ${match} in ${expr}`);
    if (typeof value === "object" && !Array.isArray(value)) {
      if (variable.allValue === undefined) throw new Error(`$${name} has no allValue`);
      return variable.allValue;
    }
    if (!variable.multi && !variable.includeAll) return String(value);
    const list = Array.isArray(value) ? value : [value];
    // Inside a LogQL/PromQL string a regex backslash is itself escaped: `a.b` becomes `a\\.b` in the query text.
    return list.map((v) => v.replace(/\\/g, "\\\\\\\\").replace(/[$^*{}[\]+?.()|]/g, "\\\\$&")).join("|");
  });
}
