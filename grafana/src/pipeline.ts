import { BigValueColorMode, BigValueGraphMode } from "@grafana/grafana-foundation-sdk/common";
import { DashboardBuilder, RowBuilder, ThresholdsConfigBuilder, ThresholdsMode } from "@grafana/grafana-foundation-sdk/dashboard";
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { PanelBuilder as StatPanel } from "@grafana/grafana-foundation-sdk/stat";
import { PROMETHEUS, TAG, lines, promql } from "./common.js";

export const PIPELINE_UID = "aixcl-logging-pipeline";

const RATE = "[$__rate_interval]";

export function pipelineDashboard(): Dashboard {
  return new DashboardBuilder("AIXCL - Logging Pipeline")
    .uid(PIPELINE_UID)
    .description("Health of every hop: message bus broker, log consumer, Promtail, Loki")
    .tags([TAG, "pipeline"])
    .time({ from: "now-1h", to: "now" })
    .refresh("30s")
    .withRow(new RowBuilder("Alerts"))
    .withPanel(
      alertCount("Alerts firing", "red")
        .description(
          "Alerts Alertmanager holds that are firing: log alerts from Loki's ruler (loki/rules) and pipeline alerts from " +
            "Prometheus (prometheus/rules). Which ones: ./aixcl alerts, or Alerting > Alert groups with the Alertmanager datasource.",
        )
        .withTarget(promql('sum(alertmanager_alerts{state=~"active|unprocessed"})', "firing")),
    )
    .withPanel(
      alertCount("Silenced or inhibited", "blue")
        .description("Alerts that fire but are muted by a silence or an inhibition rule in Alertmanager")
        .withTarget(promql('sum(alertmanager_alerts{state="suppressed"})', "suppressed")),
    )
    .withPanel(
      lines(PROMETHEUS, "Pipeline alerts", "Prometheus' pipeline rules that are firing, by alert name (1 per firing series)", "short")
        .span(12)
        .height(6)
        .withTarget(promql('sum by (alertname) (ALERTS{alertstate="firing"})', "{{alertname}}")),
    )
    .withRow(new RowBuilder("Message bus"))
    .withPanel(
      lines(PROMETHEUS, "Broker throughput", "Messages per second through the broker, by topic family", "msg/s")
        .span(8)
        .height(8)
        .withTarget(promql(`sum by (family) (rate(aixcl_broker_messages_total${RATE}))`, "{{family}}")),
    )
    .withPanel(
      lines(
        PROMETHEUS,
        "Broker backlog",
        "Log messages the broker holds while no consumer takes them (a restart, a late start), and how many per second go in and out; they are forwarded in order once one does",
        "short",
      )
        .span(8)
        .height(8)
        .withTarget(promql("sum(aixcl_broker_backlog_messages)", "held"))
        .withTarget(promql(`sum(rate(aixcl_broker_backlog_held_messages_total${RATE}))`, "held/s"))
        .withTarget(promql(`sum(rate(aixcl_broker_backlog_forwarded_messages_total${RATE}))`, "forwarded/s")),
    )
    .withPanel(
      lines(PROMETHEUS, "Broker dropped messages", "Messages the broker lost, by topic family and reason (backlog_full, backlog_corrupt, stopped, subscriber_full)", "short")
        .span(8)
        .height(8)
        .withTarget(promql(`sum by (family, reason) (increase(aixcl_broker_dropped_messages_total${RATE}))`, "{{family}} {{reason}}")),
    )
    .withPanel(
      new StatPanel()
        .datasource(PROMETHEUS)
        .title("Broker backlog fill")
        .description("Bytes held as a share of broker.backlog.max_bytes; at 100% the oldest held messages are dropped")
        .span(4)
        .height(8)
        .unit("percentunit")
        .min(0)
        .max(1)
        .withTarget(promql("sum(aixcl_broker_backlog_bytes) / sum(aixcl_broker_backlog_limit_bytes)", "fill")),
    )
    .withPanel(
      new StatPanel()
        .datasource(PROMETHEUS)
        .title("Oldest held message")
        .description("How long the broker has held its oldest log message: how long no consumer has taken them")
        .span(4)
        .height(8)
        .unit("s")
        .withTarget(promql("max(aixcl_broker_backlog_oldest_age_seconds)", "oldest")),
    )
    .withPanel(
      lines(PROMETHEUS, "Consumer throughput", "Messages received from the bus and entries Loki accepted, per second", "reqps")
        .span(8)
        .height(8)
        .withTarget(promql(`sum(rate(aixcl_log_consumer_messages_received_total${RATE}))`, "received"))
        .withTarget(promql(`sum(rate(aixcl_log_consumer_entries_pushed_total${RATE}))`, "pushed")),
    )
    .withPanel(
      lines(PROMETHEUS, "Push latency p99", "99th percentile of push attempts to Loki, by HTTP status", "s")
        .span(8)
        .height(8)
        .withTarget(
          promql(
            `histogram_quantile(0.99, sum by (le, status_code) (rate(aixcl_log_consumer_push_duration_seconds_bucket${RATE})))`,
            "{{status_code}}",
          ),
        ),
    )
    .withPanel(
      lines(PROMETHEUS, "Push retries", "Push attempts that will be retried, by reason", "short")
        .span(8)
        .height(8)
        .withTarget(promql(`sum by (reason) (increase(aixcl_log_consumer_push_retries_total${RATE}))`, "{{reason}}")),
    )
    .withPanel(
      lines(PROMETHEUS, "Dropped entries", "Entries that will never reach Loki, by reason", "short")
        .span(8)
        .height(8)
        .withTarget(promql(`sum by (reason) (increase(aixcl_log_consumer_dropped_entries_total${RATE}))`, "{{reason}}")),
    )
    .withPanel(
      lines(PROMETHEUS, "Decode errors", "Bus messages that could not be decoded, by reason", "short")
        .span(8)
        .height(8)
        .withTarget(promql(`sum by (reason) (increase(aixcl_log_consumer_decode_errors_total${RATE}))`, "{{reason}}")),
    )
    .withPanel(
      new StatPanel()
        .datasource(PROMETHEUS)
        .title("Consumer buffer fill")
        .description("Bytes buffered in memory as a share of buffer.max_bytes; at 100% the oldest batches are dropped")
        .span(8)
        .height(8)
        .unit("percentunit")
        .min(0)
        .max(1)
        .withTarget(
          promql(
            "sum(aixcl_log_consumer_buffer_bytes) / sum(aixcl_log_consumer_buffer_limit_bytes)",
            "fill",
          ),
        ),
    )
    .withRow(new RowBuilder("Loki"))
    .withPanel(
      lines(PROMETHEUS, "Loki ingestion (lines)", "Lines received by Loki's distributor per second", "reqps")
        .span(8)
        .height(8)
        .withTarget(promql(`sum(rate(loki_distributor_lines_received_total${RATE}))`, "lines/s")),
    )
    .withPanel(
      lines(PROMETHEUS, "Loki ingestion (bytes)", "Bytes received by Loki's distributor per second", "Bps")
        .span(8)
        .height(8)
        .withTarget(promql(`sum(rate(loki_distributor_bytes_received_total${RATE}))`, "bytes/s")),
    )
    .withPanel(
      lines(PROMETHEUS, "Loki discarded samples", "Entries Loki refused, by reason (rate limits, too old, line too long, ...)", "short")
        .span(8)
        .height(8)
        .withTarget(promql(`sum by (reason) (increase(loki_discarded_samples_total${RATE}))`, "{{reason}}")),
    )
    .withRow(new RowBuilder("Promtail"))
    .withPanel(
      new StatPanel()
        .datasource(PROMETHEUS)
        .title("Promtail targets")
        .description("Containers Promtail is currently reading")
        .span(8)
        .height(8)
        .unit("short")
        .withTarget(promql("sum(promtail_targets_active_total)", "targets")),
    )
    .withPanel(
      lines(PROMETHEUS, "Promtail sent entries", "Entries Promtail delivered to Loki per second", "reqps")
        .span(8)
        .height(8)
        .withTarget(promql(`sum(rate(promtail_sent_entries_total${RATE}))`, "sent")),
    )
    .withPanel(
      lines(PROMETHEUS, "Promtail dropped entries", "Entries Promtail gave up on, by reason", "short")
        .span(8)
        .height(8)
        .withTarget(promql(`sum by (reason) (increase(promtail_dropped_entries_total${RATE}))`, "{{reason}}")),
    )
    .build();
}

/** A count of alerts in one state: green at 0, `color` from 1 on. */
function alertCount(title: string, color: string): StatPanel {
  return new StatPanel()
    .datasource(PROMETHEUS)
    .title(title)
    .span(6)
    .height(6)
    .unit("short")
    .colorMode(BigValueColorMode.Background)
    .graphMode(BigValueGraphMode.None)
    .thresholds(
      new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
        { value: null, color: "green" },
        { value: 1, color },
      ]),
    );
}
