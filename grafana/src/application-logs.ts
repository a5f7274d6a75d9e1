import { DashboardBuilder } from "@grafana/grafana-foundation-sdk/dashboard";
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import {
  BUS_LEVELS,
  BUS_SERVICE,
  LOKI,
  TAG,
  fixedValues,
  lines,
  logLines,
  logql,
  lokiLabelValuesMulti,
  stackedBars,
  textBox,
} from "./common.js";

export const APPLICATION_LOGS_UID = "aixcl-application-logs";

/**
 * `module` is structured metadata, not a label (one stream per module would multiply Loki's streams),
 * so it is filtered after the selector; `.*$module.*` makes an empty box match every line.
 */
const BY_MODULE = '| module=~".*$module.*"';
const SELECTED = `{${BUS_SERVICE}, level=~"$level"} |~ "(?i)$search" ${BY_MODULE}`;
const ERRORS = `{${BUS_SERVICE}, level=~"error|critical"} ${BY_MODULE}`;

export function applicationLogsDashboard(): Dashboard {
  return new DashboardBuilder("AIXCL - Application Logs")
    .uid(APPLICATION_LOGS_UID)
    .description("Logs published on the message bus, pushed to Loki by the log consumer")
    .tags([TAG, "logs"])
    .time({ from: "now-1h", to: "now" })
    .refresh("10s")
    .withVariable(
      lokiLabelValuesMulti("service", "Service", "service", '{service=~".+"}').description("Subsystem that logged"),
    )
    .withVariable(fixedValues("level", "Level", BUS_LEVELS))
    .withVariable(textBox("module", "Module", "Regular expression matched anywhere in the module name"))
    .withVariable(textBox("search", "Search", "Case-insensitive regular expression; empty shows every line"))
    .withPanel(
      stackedBars("Volume by level", "Entries per interval")
        .span(12)
        .height(8)
        .withTarget(logql(`sum by (level) (count_over_time(${SELECTED} [$__auto]))`, "{{level}}")),
    )
    .withPanel(
      lines(LOKI, "Error rate by service", "Entries per second at level error or critical", "reqps")
        .span(12)
        .height(8)
        .withTarget(logql(`sum by (service) (rate(${ERRORS} [$__auto]))`, "{{service}}")),
    )
    .withPanel(
      logLines("Logs", "Message lines; module, function, file, line and trace_id are in each line's details")
        .span(24)
        .height(20)
        .withTarget(logql(SELECTED)),
    )
    .build();
}
