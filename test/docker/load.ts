/**
 * Numbered lines sent to the running stack's published broker port while a fault happens, and counted afterwards by
 * LogQL: our logger (it holds while the broker is away) and plain ZeroMQ PUB publishers in our wire format and in
 * AICO's (they know nothing of holding: what they send while no broker runs is lost).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { metricSample, queryAll, queryInstant } from "@aixcl/testkit";
import { countSeqs, missing, SteadyLogger, SteadyPublisher, type SteadySource } from "../../services/log-consumer/test/processes.js";

export const LOKI = "http://127.0.0.1:3100";
export const BUS = "tcp://127.0.0.1:5555";
/** Lines per second of each source. */
export const RATE = 2000;

export type SourceKind = "logger" | "plain" | "plain_aico";
export const ALL_SOURCES: readonly SourceKind[] = ["logger", "plain", "plain_aico"];

export interface SourceResult {
  kind: SourceKind;
  total: number;
  /** Sequence numbers Loki lacks. */
  lost: number[];
  /** Sequence numbers Loki holds more than once. */
  twice: number;
}

/** Starts one numbered source per kind, each with a service (Loki label) of its own. */
export function startSources(kinds: readonly SourceKind[], name: string, run: string): Map<SourceKind, SteadySource> {
  return new Map(
    kinds.map((kind) => {
      const service = `dockertier_${name}_${kind}_${run}`;
      const source = kind === "logger" ? new SteadyLogger(BUS, service, RATE) : new SteadyPublisher(BUS, service, RATE, kind === "plain_aico" ? "aico" : "aixcl");
      return [kind, source];
    }),
  );
}

/** Stops every source and counts what reached Loki. */
export async function collect(sources: Map<SourceKind, SteadySource>): Promise<SourceResult[]> {
  const totals = await Promise.all([...sources].map(async ([kind, source]) => [kind, source.service, await source.stop()] as const));
  const results: SourceResult[] = [];
  for (const [kind, service, total] of totals) {
    const counts = await settled(service, total);
    results.push({ kind, total, lost: missing(counts, total), twice: [...counts.values()].filter((n) => n > 1).length });
  }
  return results;
}

/**
 * Waits until the consumer holds nothing more (its buffer, in-flight batches included, is empty; a batch can wait
 * out a retry backoff of many seconds after a Loki outage) and Loki's count for the service stands still, or until
 * every line is there; returns each sequence number's count.
 */
export async function settled(service: string, expected: number, timeoutMs = 180_000): Promise<Map<number, number>> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let stableSince = Date.now();
  for (;;) {
    const [sample] = await queryInstant(LOKI, `sum(count_over_time({service="${service}"}[1h]))`);
    const count = sample?.value ?? 0;
    if (count !== last) [last, stableSince] = [count, Date.now()];
    const pending = await metricSample("http://127.0.0.1:9465", "aixcl_log_consumer_buffer_entries").catch(() => undefined);
    if (count >= expected || (pending === 0 && Date.now() - stableSince > 3000) || Date.now() > deadline) break;
    await sleep(1000);
  }
  return countSeqs(await queryAll(LOKI, `{service="${service}"}`));
}

/** "1,204 lost (seq 4028..5231)" */
export function describeLoss(r: SourceResult): string {
  return `${r.kind}: ${r.total} sent, ${r.lost.length} lost${r.lost.length ? ` (seq ${r.lost[0]}..${r.lost.at(-1)})` : ""}, ${r.twice} stored twice`;
}
