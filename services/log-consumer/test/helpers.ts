import type { LogEntry } from "@aixcl/wire";
import { Batcher } from "../src/batch.js";
import type { PushEncoding, SealedBatch } from "../src/encode.js";
import { pushBuilder } from "../src/push-builder.js";
import type { FieldPlaces, LokiEntry } from "../src/mapping.js";
import { DEFAULT_FIELD_PLACES, EntryMapper } from "../src/mapping.js";

/** Maps entries, by default as the shipped config does. */
export function lokiEntries(entries: LogEntry[], staticLabels: Record<string, string> = {}, places: FieldPlaces = DEFAULT_FIELD_PLACES): LokiEntry[] {
  const mapper = new EntryMapper(staticLabels, places);
  return entries.map((e) => mapper.map(e));
}

/** One batch holding all the given entries, encoded as it waits in the queue. */
export function sealedOf(entries: LokiEntry[], encoding: PushEncoding = "protobuf", compress = true): SealedBatch {
  const batcher = new Batcher({ maxBytes: Number.MAX_SAFE_INTEGER, maxWaitMs: 1000 }, pushBuilder(encoding), () => compress);
  for (const entry of entries) batcher.add(entry, 0);
  const batch = batcher.flush();
  if (!batch) throw new Error("no entries");
  return batch;
}

/** A counter's or gauge's current values keyed by the value of `label` ("" when unlabelled). */
export async function valuesBy(metric: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> }, label = "reason"): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const { labels, value } of (await metric.get()).values) {
    const key = String(labels[label] ?? "");
    out[key] = (out[key] ?? 0) + value;
  }
  return out;
}

/** Sum over all label values. */
export async function total(metric: Parameters<typeof valuesBy>[0]): Promise<number> {
  return Object.values(await valuesBy(metric)).reduce((a, b) => a + b, 0);
}
