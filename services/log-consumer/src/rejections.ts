import type { SealedBatch, StreamSummary } from "./encode.js";
import { readLabelSet } from "./labels.js";

/**
 * Reads the body of a 400 from Loki's push endpoint. Loki writes every valid stream and entry of the request
 * and answers 400 naming what it refused, so the batch must not be sent again: we only need to know how many
 * entries were refused and why.
 *
 * Formats (grafana/loki pkg/validation/validate.go, pkg/util GroupedErrors, pkg/ingester/stream.go):
 * - distributor validation: one message per refused entry (or per refused stream), identical messages grouped,
 *   groups joined by "; ", a group of more than one prefixed "<n> errors like: ";
 * - ingester: "entry with timestamp <t> ignored, reason: '<why>',\n" lines (at most 10), then
 *   "user '<tenant>', total ignored: <n> out of <m> for stream: <labels>" (older: "total ignored: <n> out of <m>").
 * Label sets inside messages are parsed as Go-quoted label text, so label values cannot confuse the parser.
 * Messages are matched without regard to case: Loki 3.7 writes "max entry size" where validate.go once had "Max".
 */

type Scope = "entry" | "stream";

interface Pattern {
  readonly shape: RegExp;
  readonly reason: string;
  /** "entry": the message stands for one refused entry; "stream": for every entry of the named stream. */
  readonly scope: Scope;
}

/** `\0` stands for the label set found in the message. Reasons are Loki's own discarded_samples reasons. */
const PATTERNS: readonly Pattern[] = [
  { shape: /^entry for stream '\0' has timestamp too old/i, reason: "greater_than_max_sample_age", scope: "entry" },
  { shape: /^entry for stream '\0' has timestamp too new/i, reason: "too_far_in_future", scope: "entry" },
  { shape: /^Max entry size '\d+' bytes exceeded for stream '\0'/i, reason: "line_too_long", scope: "entry" },
  { shape: /^entry for stream '\0' has \d+ label names; limit/i, reason: "max_label_names_per_series", scope: "stream" },
  { shape: /^stream '\0' has label name too long/i, reason: "label_name_too_long", scope: "stream" },
  { shape: /^stream '\0' has label value too long/i, reason: "label_value_too_long", scope: "stream" },
  { shape: /^stream '\0' has duplicate label name/i, reason: "duplicate_label_names", scope: "stream" },
  { shape: /^stream '\0' includes structured metadata, but this feature is disallowed/i, reason: "disallowed_structured_metadata", scope: "entry" },
  { shape: /^stream '\0' has structured metadata too large/i, reason: "structured_metadata_too_large", scope: "entry" },
  { shape: /^stream '\0' has too many structured metadata labels/i, reason: "structured_metadata_too_many", scope: "entry" },
  { shape: /^Maximum active stream limit exceeded when trying to create stream \0/i, reason: "stream_limit", scope: "stream" },
  { shape: /^missing required labels .* for stream \0/i, reason: "missing_enforced_labels", scope: "stream" },
  { shape: /^Error parsing labels '/i, reason: "invalid_labels", scope: "stream" },
  { shape: /^error at least one label pair is required per stream/i, reason: "missing_labels", scope: "stream" },
];

const INGESTER_TOTAL = /total ignored: (\d+) out of \d+/;
const INGESTER_REASONS: readonly (readonly [RegExp, string])[] = [
  [/reason: 'entry too far behind/, "too_far_behind"],
  [/reason: 'entry out of order/, "out_of_order"],
];

/** Starts of messages listed above; a "; " only separates groups when one of these follows. */
const ITEM_START = /^(?:\d+ errors like: |entry for stream '|max entry size '|stream '|maximum active stream limit|missing required labels|error parsing labels '|error at least one label pair|entry with timestamp |user '|total ignored: )/i;
const GROUP_COUNT = /^(\d+) errors like: /;

/** Splits a grouped error text at its "; " separators, stepping over label sets so their values cannot split it. */
function splitGroups(body: string): string[] {
  const groups: string[] = [];
  let start = 0;
  let i = 0;
  while (i < body.length) {
    if (body[i] === "{") {
      const set = readLabelSet(body, i);
      if (set) {
        i = set.end;
        continue;
      }
    }
    if (body.startsWith("; ", i) && ITEM_START.test(body.slice(i + 2, i + 40))) {
      groups.push(body.slice(start, i));
      start = i + 2;
      i = start;
      continue;
    }
    i++;
  }
  groups.push(body.slice(start));
  return groups.map((g) => g.trim()).filter((g) => g !== "");
}

/** The message with its first label set replaced by \0, plus that label set. */
function shapeOf(message: string): { shape: string; labels: Map<string, string> | undefined } {
  for (let i = message.indexOf("{"); i !== -1; i = message.indexOf("{", i + 1)) {
    const set = readLabelSet(message, i);
    if (set) return { shape: `${message.slice(0, i)}\0${message.slice(set.end)}`, labels: set.labels };
  }
  return { shape: message, labels: undefined };
}

/** The batch stream whose labels all appear in `labels` (Loki may add some, e.g. service_name). */
function findStream(batch: SealedBatch, labels: Map<string, string> | undefined): StreamSummary | undefined {
  if (!labels) return undefined;
  for (const stream of batch.streams) {
    let all = true;
    for (const [name, value] of stream.key.labels) {
      if (labels.get(name) !== value) {
        all = false;
        break;
      }
    }
    if (all) return stream;
  }
  return undefined;
}

export interface RejectionSummary {
  /** Refused entries by Loki's reason. */
  readonly byReason: ReadonlyMap<string, number>;
  /** Sum of byReason, never more than the batch's entries. */
  readonly rejected: number;
  /** Messages that matched no known format (logged for the operator). */
  readonly unrecognized: readonly string[];
}

/** Reason used when nothing in the body is recognised: then Loki most likely refused the request as a whole. */
export const UNRECOGNIZED_REASON = "unrecognized_400";

export function parseRejections(body: string, batch: SealedBatch): RejectionSummary {
  const byReason = new Map<string, number>();
  const rejectedPerStream = new Map<StreamSummary, number>();
  const unrecognized: string[] = [];
  let rejected = 0;

  const count = (reason: string, wanted: number, stream: StreamSummary | undefined) => {
    let n = Math.min(wanted, batch.entries - rejected);
    if (stream) n = Math.min(n, stream.entries - (rejectedPerStream.get(stream) ?? 0));
    if (n <= 0) return;
    byReason.set(reason, (byReason.get(reason) ?? 0) + n);
    if (stream) rejectedPerStream.set(stream, (rejectedPerStream.get(stream) ?? 0) + n);
    rejected += n;
  };

  for (const group of splitGroups(body)) {
    const grouped = GROUP_COUNT.exec(group);
    const times = grouped ? Number(grouped[1]) : 1;
    const message = grouped ? group.slice(grouped[0].length) : group;
    const { shape, labels } = shapeOf(message);
    const stream = findStream(batch, labels);

    const total = INGESTER_TOTAL.exec(message);
    if (total) {
      const reason = INGESTER_REASONS.find(([re]) => re.test(message))?.[1] ?? "ingester_rejected";
      count(reason, Number(total[1]) * times, stream);
      continue;
    }
    const pattern = PATTERNS.find((p) => p.shape.test(shape));
    if (!pattern) {
      unrecognized.push(message);
      continue;
    }
    const invalidLabelsStream = pattern.reason === "invalid_labels" ? findStreamByText(batch, message) : undefined;
    const target = stream ?? invalidLabelsStream;
    count(pattern.reason, pattern.scope === "stream" && target ? target.entries * times : times, target);
  }

  if (unrecognized.length > 0) count(UNRECOGNIZED_REASON, rejected === 0 ? batch.entries : unrecognized.length, undefined);
  return { byReason, rejected, unrecognized };
}

/** "Error parsing labels '<raw text>' ..." quotes our label text verbatim, which may not parse as a label set. */
function findStreamByText(batch: SealedBatch, message: string): StreamSummary | undefined {
  for (const stream of batch.streams) if (message.includes(`'${stream.key.text}'`)) return stream;
  return undefined;
}
