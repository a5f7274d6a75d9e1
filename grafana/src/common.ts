import {
  GraphDrawStyle,
  LegendDisplayMode,
  LegendPlacement,
  LogsDedupStrategy,
  LogsSortOrder,
  StackingConfigBuilder,
  StackingMode,
  VizLegendOptionsBuilder,
} from "@grafana/grafana-foundation-sdk/common";
import type { DataSourceRef } from "@grafana/grafana-foundation-sdk/common";
import { PanelBuilder as LogsPanel } from "@grafana/grafana-foundation-sdk/logs";
import { DataqueryBuilder as LokiQuery, LokiQueryType } from "@grafana/grafana-foundation-sdk/loki";
import { DataqueryBuilder as PromQuery } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as TimeSeriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";
import {
  CustomVariableBuilder,
  QueryVariableBuilder,
  TextBoxVariableBuilder,
  VariableRefresh,
  VariableSort,
} from "@grafana/grafana-foundation-sdk/dashboard";

/**
 * Datasources are referenced by the fixed uids provisioned in provisioning/datasources/datasources.yml.
 * A reference by name or by a generated uid is what produced AIXCL's "data source not found".
 */
export const LOKI: DataSourceRef = { type: "loki", uid: "loki" };
export const PROMETHEUS: DataSourceRef = { type: "prometheus", uid: "prometheus" };

/** Every dashboard carries this tag, so `tag:aixcl` in Grafana's search lists exactly ours. */
export const TAG = "aixcl";

/** Compose project the logging stack runs as (`name:` in docker-compose.yml). */
export const STACK_PROJECT = "aixcl-logging";

/**
 * The values of Loki label `label` as dashboard variable `name` (titled `title`). `stream` narrows the values
 * to streams matching a selector, which chains the variable to the ones before it.
 */
export function lokiLabelValues(name: string, title: string, label: string, stream = ""): QueryVariableBuilder {
  return new QueryVariableBuilder(name)
    .label(title)
    .datasource(LOKI)
    // Loki's variable query model: type 1 = label values (0 would be label names).
    .query({ refId: `${name}-values`, type: 1, label, stream })
    .definition(stream === "" ? `label_values(${label})` : `label_values(${stream}, ${label})`)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc);
}

/** Multi-select variant: "All" becomes `.+` so a `label=~"$var"` matcher keeps its meaning. */
export function lokiLabelValuesMulti(name: string, title: string, label: string, stream: string): QueryVariableBuilder {
  return lokiLabelValues(name, title, label, stream)
    .multi(true)
    .includeAll(true)
    .allValue(".+")
    .current({ selected: true, text: ["All"], value: ["$__all"] });
}

/**
 * Free-text variable. Its value goes into regular expressions, so an empty box must mean "match
 * everything": queries use it as `(?i)$search` or `.*$module.*`.
 */
export function textBox(name: string, label: string, description: string): TextBoxVariableBuilder {
  return new TextBoxVariableBuilder(name)
    .label(label)
    .description(description)
    .defaultValue("")
    .current({ selected: false, text: "", value: "" });
}

/** Fixed list of values with an "All" entry that matches any value. */
export function fixedValues(name: string, label: string, values: readonly string[]): CustomVariableBuilder {
  return new CustomVariableBuilder(name)
    .label(label)
    .values(values.join(","))
    .multi(true)
    .includeAll(true)
    .allValue(".+")
    .current({ selected: true, text: ["All"], value: ["$__all"] });
}

/** A LogQL range query against the provisioned Loki. */
export function logql(expr: string, legend?: string): LokiQuery {
  const query = new LokiQuery().datasource(LOKI).expr(expr).queryType(LokiQueryType.Range);
  return legend === undefined ? query : query.legendFormat(legend);
}

/** A PromQL range query against the provisioned Prometheus. */
export function promql(expr: string, legend: string): PromQuery {
  return new PromQuery().datasource(PROMETHEUS).expr(expr).legendFormat(legend).range();
}

/** Line counts over time as stacked bars: a volume reads as one total split by the legend. */
export function stackedBars(title: string, description: string): TimeSeriesPanel {
  return new TimeSeriesPanel()
    .datasource(LOKI)
    .title(title)
    .description(description)
    .unit("short")
    .drawStyle(GraphDrawStyle.Bars)
    .fillOpacity(80)
    .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.List)
        .placement(LegendPlacement.Bottom)
        .calcs([]),
    );
}

/** Rates and gauges over time as lines. */
export function lines(datasource: DataSourceRef, title: string, description: string, unit: string): TimeSeriesPanel {
  return new TimeSeriesPanel()
    .datasource(datasource)
    .title(title)
    .description(description)
    .unit(unit)
    .drawStyle(GraphDrawStyle.Line)
    .fillOpacity(10)
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.Table)
        .placement(LegendPlacement.Bottom)
        .calcs(["mean", "max", "lastNotNull"]),
    );
}

/** Log lines newest first, with labels and structured metadata in the details of each line. */
export function logLines(title: string, description: string): LogsPanel {
  return new LogsPanel()
    .datasource(LOKI)
    .title(title)
    .description(description)
    .showTime(true)
    .showLabels(true)
    .wrapLogMessage(true)
    .enableLogDetails(true)
    .sortOrder(LogsSortOrder.Descending)
    .dedupStrategy(LogsDedupStrategy.None);
}
