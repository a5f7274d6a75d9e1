import type { AlertOut } from "./alertmanager.js";
import type { LogEntryOut, Series } from "./loki.js";

/**
 * Stream labels that name where a line came from: `service` (application logs from the bus), then
 * Promtail's `compose_service` and `container` (container logs), then `filename` (host /var/log files).
 */
const SOURCE_LABELS = ["service", "compose_service", "container", "filename", "job"];

export function isoTime(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

function source(labels: Record<string, string>): string {
  for (const name of SOURCE_LABELS) {
    const value = labels[name];
    if (value) return labels.level ? `${value} ${labels.level}` : value;
  }
  return "-";
}

/** One entry per line: `<ISO time> <source> [level]  <line>`, or a JSON object with everything. */
export function formatEntry(entry: LogEntryOut, json: boolean): string {
  if (json) {
    return JSON.stringify({ ts: String(entry.ts), time: isoTime(entry.ts), labels: entry.labels, metadata: entry.metadata, line: entry.line });
  }
  return `${isoTime(entry.ts)} ${source(entry.labels)}  ${entry.line.replace(/\n$/, "")}`;
}

function labelText(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(", ")}}`;
}

/** A metric query's series: one line per point in text mode, one JSON object per series otherwise. */
export function formatSeries(series: Series, json: boolean): string[] {
  if (json) return [JSON.stringify({ labels: series.labels, points: series.points })];
  const name = labelText(series.labels);
  return series.points.map(([t, v]) => `${new Date(t * 1000).toISOString()} ${name} ${v}`);
}

/** Labels that name what an alert is about: the bus subsystem, the container's compose service, the scrape job. */
const ALERT_SUBJECT_LABELS = ["service", "compose_service", "container", "job"];

export function alertSubject(labels: Record<string, string>): string {
  for (const name of ALERT_SUBJECT_LABELS) if (labels[name]) return labels[name];
  return "-";
}

/** How long ago, to the minute past the first minute: 45s, 12m, 3h05m, 2d04h. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, "0")}h`;
}

/**
 * Firing alerts as a table (SERVICE, ALERT, SINCE, SUMMARY; columns as wide as their widest cell), or one JSON
 * object per alert.
 */
export function formatAlerts(alerts: readonly AlertOut[], now: number, json: boolean): string[] {
  if (json) {
    return alerts.map((a) =>
      JSON.stringify({
        service: alertSubject(a.labels),
        alertname: a.labels.alertname ?? "",
        summary: a.annotations.summary ?? "",
        startsAt: a.startsAt,
        state: a.state,
        labels: a.labels,
        annotations: a.annotations,
      }),
    );
  }
  const rows = [
    ["SERVICE", "ALERT", "SINCE", "SUMMARY"],
    ...alerts.map((a) => [
      alertSubject(a.labels),
      a.labels.alertname ?? "-",
      `${a.startsAt.replace(/\.\d+Z$/, "Z")} (${formatAge(now - Date.parse(a.startsAt))} ago)`,
      a.annotations.summary ?? a.annotations.description ?? "",
    ]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  return rows.map((r) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] as number) : cell)).join("  ").trimEnd());
}
