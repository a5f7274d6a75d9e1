import { DashboardBuilder } from "@grafana/grafana-foundation-sdk/dashboard";
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { PanelBuilder as BarGaugePanel } from "@grafana/grafana-foundation-sdk/bargauge";
import { BarGaugeDisplayMode, ReduceDataOptionsBuilder } from "@grafana/grafana-foundation-sdk/common";
import { LokiQueryType } from "@grafana/grafana-foundation-sdk/loki";
import {
  LOKI,
  STACK_PROJECT,
  TAG,
  logLines,
  logql,
  lokiLabelValuesMulti,
  stackedBars,
  textBox,
} from "./common.js";
import { CustomVariableBuilder } from "@grafana/grafana-foundation-sdk/dashboard";

export const CONTAINER_LOGS_UID = "aixcl-container-logs";

/**
 * Streams Promtail ships from the containers selected by the variables (labels: promtail/promtail-config.yml).
 * "All" of project and service is `.*`, which also matches the containers of no compose project (`docker run`).
 */
const SELECTED = 'compose_project=~"$project", compose_project!~"$own", compose_service=~"$service"';
const STREAMS = `{job="containers", ${SELECTED}, container=~"$container", stream=~"$stream"}`;

/** A value no compose project can have (names are lower-case): "show the stack" excludes nothing. */
const NO_PROJECT = "-";

/**
 * Loki logs every query it runs, query text included, in lines carrying `query_hash=`. Without this
 * filter a search finds its own echo in Loki's log (AIXCL's rules matching their own query text).
 */
const NOT_QUERY_ECHO = '!= "query_hash="';

const SEARCHED = `${STREAMS} |~ "(?i)$search" ${NOT_QUERY_ECHO}`;

/**
 * Error lines by level, never by text: a text match counts every line that merely mentions the word,
 * the stack's own query logs included. Promtail promotes `level` from JSON lines (normalized to the bus's
 * words: error, critical); for other lines Loki derives `detected_level` at ingestion (logfmt/JSON level
 * fields, else keywords).
 */
const ERROR_LEVELS = "error|critical|fatal|panic|alert|emerg|emergency";
const ERRORS = `${STREAMS} | level=~"${ERROR_LEVELS}" or detected_level=~"${ERROR_LEVELS}"`;

export function containerLogsDashboard(): Dashboard {
  return new DashboardBuilder("AIXCL - Container Logs")
    .uid(CONTAINER_LOGS_UID)
    .description("Logs of every container on the Docker engine, by compose project, service and container, shipped by Promtail")
    .tags([TAG, "logs"])
    .time({ from: "now-1h", to: "now" })
    .refresh("10s")
    .withVariable(
      lokiLabelValuesMulti("project", "Project", "compose_project", '{job="containers"}')
        .allValue(".*")
        .description("Compose project; All includes containers of no project (docker run)"),
    )
    .withVariable(
      new CustomVariableBuilder("own")
        .label("This stack")
        .description(`The logging stack's own containers (compose project ${STACK_PROJECT})`)
        .values(`shown : ${NO_PROJECT},hidden : ${STACK_PROJECT}`)
        .current({ selected: true, text: "shown", value: NO_PROJECT }),
    )
    .withVariable(
      lokiLabelValuesMulti("service", "Service", "compose_service", '{job="containers", compose_project=~"$project"}').allValue(
        ".*",
      ),
    )
    .withVariable(lokiLabelValuesMulti("container", "Container", "container", `{job="containers", ${SELECTED}}`))
    .withVariable(
      lokiLabelValuesMulti("stream", "Stream", "stream", `{job="containers", ${SELECTED}, container=~"$container"}`),
    )
    .withVariable(textBox("search", "Search", "Case-insensitive regular expression; empty shows every line"))
    .withPanel(
      stackedBars("Log volume by service", "Lines per interval matching the search")
        .span(16)
        .height(8)
        .withTarget(logql(`sum by (compose_service) (count_over_time(${SEARCHED} [$__auto]))`, "{{compose_service}}")),
    )
    .withPanel(
      new BarGaugePanel()
        .datasource(LOKI)
        .title("Noisiest containers")
        .description("Lines in the selected time range, top 10")
        .span(8)
        .height(8)
        .unit("short")
        .displayMode(BarGaugeDisplayMode.Gradient)
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(["lastNotNull"]).values(false))
        .withTarget(
          logql(`topk(10, sum by (container) (count_over_time(${STREAMS} [$__range])))`, "{{container}}").queryType(
            LokiQueryType.Instant,
          ),
        ),
    )
    .withPanel(
      stackedBars("Errors by service", "Lines at error level or above, from the level label or Loki's detected level")
        .span(24)
        .height(7)
        .withTarget(logql(`sum by (compose_service) (count_over_time(${ERRORS} [$__auto]))`, "{{compose_service}}")),
    )
    .withPanel(
      logLines("Logs", "Newest first; follows the dashboard refresh")
        .span(24)
        .height(18)
        .withTarget(logql(SEARCHED)),
    )
    .build();
}
