import { DashboardBuilder } from "@grafana/grafana-foundation-sdk/dashboard";
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import {
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
 * Application logs arrive two ways: on the bus (the log consumer labels them `service` and `level`) and over OTLP
 * (Loki's otlp_config labels them `service_name`, ...). Both carry `service_name` (for bus streams Loki copies it
 * from `service`: discover_service_name) and the structured metadata `detected_level` (Loki's, from the bus's level
 * label or the OTLP severity), so one selector and one level filter cover both. Promtail's container and file
 * streams all carry `job`: `job=""` leaves them out.
 */
const APPLICATIONS = 'service_name=~"$service", job=""';

/** Loki's detected_level values (the bus's `warning` is `warn` there, OTLP's FATAL is `fatal`), in severity order. */
export const DETECTED_LEVELS = ["trace", "debug", "info", "warn", "error", "critical", "fatal", "unknown"] as const;

/**
 * `module` (bus) and `scope_name` (OTLP's instrumentation scope) are structured metadata, not labels (one stream per
 * module would multiply Loki's streams), so they are filtered after the selector; an entry has one or the other,
 * the missing one reads as empty, and `.*$module.*` makes an empty box match every line.
 */
const BY_MODULE = '| module=~".*$module.*" or scope_name=~".*$module.*"';
const SELECTED = `{${APPLICATIONS}} | detected_level=~"$level" |~ "(?i)$search" ${BY_MODULE}`;
const ERRORS = `{${APPLICATIONS}} | detected_level=~"error|critical|fatal" ${BY_MODULE}`;

export function applicationLogsDashboard(): Dashboard {
  return new DashboardBuilder("AIXCL - Application Logs")
    .uid(APPLICATION_LOGS_UID)
    .description("Logs applications sent on the message bus (through the log consumer) or over OTLP, side by side")
    .tags([TAG, "logs"])
    .time({ from: "now-1h", to: "now" })
    .refresh("10s")
    .withVariable(
      lokiLabelValuesMulti("service", "Service", "service_name", '{service_name=~".+", job=""}').description(
        "The bus entry's subsystem or the OTLP resource's service.name",
      ),
    )
    .withVariable(fixedValues("level", "Level", DETECTED_LEVELS))
    .withVariable(textBox("module", "Module", "Regular expression matched anywhere in the bus module or the OTLP instrumentation scope"))
    .withVariable(textBox("search", "Search", "Case-insensitive regular expression; empty shows every line"))
    .withPanel(
      stackedBars("Volume by level", "Entries per interval")
        .span(12)
        .height(8)
        .withTarget(logql(`sum by (detected_level) (count_over_time(${SELECTED} [$__auto]))`, "{{detected_level}}")),
    )
    .withPanel(
      lines(LOKI, "Error rate by service", "Entries per second at level error, critical or fatal", "reqps")
        .span(12)
        .height(8)
        .withTarget(logql(`sum by (service_name) (rate(${ERRORS} [$__auto]))`, "{{service_name}}")),
    )
    .withPanel(
      logLines(
        "Logs",
        "Bus entries and OTLP records; module or scope, trace_id and attributes are in each line's details, a bus entry's function, file, line and extra fields at the end of its first line",
      )
        .span(24)
        .height(20)
        .withTarget(logql(SELECTED)),
    )
    .build();
}
