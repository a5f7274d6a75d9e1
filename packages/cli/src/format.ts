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
