/**
 * What Loki keeps of a run, and what it received: the whole path's far end (bench/src/pipeline.ts runs it for every
 * run into Loki, ours and the reference shippers'). One Loki serves every run of an invocation, so each figure is a
 * difference between just before the run's lines start and just after they have landed.
 *
 * - Stored bytes: after the run's lines are all in Loki, POST /flush makes the ingester write every in-memory chunk
 *   (`loki_ingester_chunks_flushed_total{reason="forced"}`); once its flush queue is empty and neither the stored
 *   chunk count nor the disk changes for a second, the bytes added under the filesystem object store's chunks
 *   directory (testkit's startLoki: <data>/chunks/<tenant>/...) are the run's chunks.
 * - The TSDB index is not written by a flush: each flushed chunk's index entry is appended to the index head's WAL
 *   (<data>/tsdb-shipper-active/wal/...), and index files are built from the head only when it rotates, on Loki's
 *   own schedule, and then uploaded to <data>/chunks/index/. So the figure for the index is the WAL's growth, an
 *   entry per chunk rather than per line; index files appear only if a rotation lands in a run (they then hold
 *   earlier runs' index too, and the compactor may rewrite them), and are reported apart, in bytes.
 * - Received bytes: `loki_distributor_bytes_received_total` (line and structured metadata, as the distributor
 *   counts them after decoding the push) and `loki_distributor_structured_metadata_bytes_received_total` (names and
 *   values), Loki's own streams left out.
 * - The flush's CPU: Loki's utime+stime from the POST until the flush has landed (its answers to the polls of
 *   /metrics included), apart from its CPU while the lines came in (the run's). Every line is flushed once at
 *   some point (chunk full, idle or old), so it belongs to the whole path; here it is paid at once instead of
 *   spread over the run.
 * - The HA profile (`--loki-ha`: testkit's startLokiHa, three instances of loki/loki-ha.yml on one versitygw
 *   bucket): every instance is POSTed /flush (each ingester holds its own replica of every stream), and the flush
 *   has landed when all three queues are empty and the stored chunk counts and the disk are still. Chunks are the
 *   objects in the bucket's directory (versitygw's posix backend keeps an object as a file at its key; replicas
 *   cut alike have the same key, so the bucket holds one copy of those), index files its index/ prefix, and the
 *   index WAL the sum of the three instances' heads (the same rotation and upload schedule as the single
 *   instance's). CPU and memory are summed over the three Lokis and versitygw.
 */
import { readdirSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** Bytes on Loki's disk that hold logs, by kind. */
export interface LokiDisk {
  /** Chunk objects in the filesystem object store. */
  chunks: number;
  /** Index files uploaded to the object store (built when the TSDB head rotates). */
  indexFiles: number;
  /** The TSDB head's WAL, where a flush writes the index entries of the chunks it stored. */
  indexWal: number;
}

function filesUnder(dir: string): { path: string; size: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir, { recursive: true, encoding: "utf8" });
  } catch {
    return [];
  }
  const out: { path: string; size: number }[] = [];
  for (const name of names) {
    const path = join(dir, name);
    // A file can go between the listing and the stat (the compactor, a WAL segment being replaced).
    const st = statSync(path, { throwIfNoEntry: false });
    if (st?.isFile()) out.push({ path, size: st.size });
  }
  return out;
}

/**
 * Log-holding bytes in an object store directory (its index/ prefix apart) and in TSDB head WALs: the single
 * instance's filesystem store (<data>/chunks) and its <data>/tsdb-shipper-active/wal, or the HA profile's S3 bucket
 * (versitygw keeps each object as a file under the bucket's directory) and each instance's head WAL.
 */
export function storeDisk(objectsDir: string, dataDirs: string[]): LokiDisk {
  const disk: LokiDisk = { chunks: 0, indexFiles: 0, indexWal: 0 };
  for (const f of filesUnder(objectsDir)) {
    if (relative(objectsDir, f.path).startsWith(`index${sep}`)) disk.indexFiles += f.size;
    else disk.chunks += f.size;
  }
  for (const dataDir of dataDirs) for (const f of filesUnder(join(dataDir, "tsdb-shipper-active", "wal"))) disk.indexWal += f.size;
  return disk;
}

/** Loki's log-holding bytes under the data dir testkit's startLoki gives it (path prefix; chunks in <data>/chunks). */
export function lokiDisk(dataDir: string): LokiDisk {
  return storeDisk(join(dataDir, "chunks"), [dataDir]);
}

/** What the distributor counted as received, Loki's internal streams left out. */
export interface Received {
  lines: number;
  bytes: number;
  structuredMetadataBytes: number;
}

/** The sum over every series of a counter or gauge in Prometheus text, except Loki's internal streams. */
export function sumMetric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) continue;
    if (line.includes('is_internal_stream="true"')) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** Summed over instances' /metrics texts (in the HA cluster only the instance that takes the pushes distributes). */
export function receivedIn(...metricsTexts: string[]): Received {
  const sum = (name: string) => metricsTexts.reduce((n, text) => n + sumMetric(text, name), 0);
  return {
    lines: sum("loki_distributor_lines_received_total"),
    bytes: sum("loki_distributor_bytes_received_total"),
    structuredMetadataBytes: sum("loki_distributor_structured_metadata_bytes_received_total"),
  };
}

/** Per line of a run: stored on disk and received by the distributor, from the readings before and after it. */
export interface LokiStorePerLine {
  chunksBytesPerLine: number;
  indexWalBytesPerLine: number;
  /**
   * Bytes, not per line: non-zero only when a head rotation landed in the run, and then they index earlier runs'
   * lines too (see the header).
   */
  indexFilesBytes: number;
  receivedBytesPerLine: number;
  structuredMetadataBytesPerLine: number;
  /** Lines the distributor counted, per line the run delivered: above 1 when a shipper resent what Loki had. */
  receivedLinesPerLine: number;
  /** From POST /flush until it had landed. */
  flushSeconds: number;
}

export function storePerLine(before: { disk: LokiDisk; received: Received }, after: { disk: LokiDisk; received: Received }, lines: number, flushSeconds: number): LokiStorePerLine {
  return {
    chunksBytesPerLine: (after.disk.chunks - before.disk.chunks) / lines,
    indexWalBytesPerLine: (after.disk.indexWal - before.disk.indexWal) / lines,
    indexFilesBytes: after.disk.indexFiles - before.disk.indexFiles,
    receivedBytesPerLine: (after.received.bytes - before.received.bytes) / lines,
    structuredMetadataBytesPerLine: (after.received.structuredMetadataBytes - before.received.structuredMetadataBytes) / lines,
    receivedLinesPerLine: (after.received.lines - before.received.lines) / lines,
    flushSeconds,
  };
}

export async function lokiMetrics(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
}

/**
 * Makes Loki flush every in-memory chunk and waits until that has landed: every ingester's flush queue empty, and
 * the stored chunk count and the disk unchanged over 4 polls a quarter second apart. `urls` are the instances (one,
 * or the HA cluster's three: each ingester holds its own replica of every stream and flushes it itself). Returns the
 * seconds it took.
 */
export async function flushLoki(urls: string[], disk: () => LokiDisk, timeoutMs = 120_000): Promise<number> {
  const start = Date.now();
  await Promise.all(
    urls.map(async (url) => {
      const res = await fetch(`${url}/flush`, { method: "POST", signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`Loki ${url} POST /flush answered ${res.status}: ${(await res.text()).trim()}`);
    }),
  );
  let last = "";
  let stable = 0;
  let settledAt = Date.now();
  while (stable < 4) {
    if (Date.now() - start > timeoutMs) throw new Error(`Loki's flush had not settled after ${timeoutMs} ms`);
    await sleep(250);
    const texts = await Promise.all(urls.map(lokiMetrics));
    const queued = texts.reduce((n, text) => n + sumMetric(text, "loki_ingester_flush_queue_length"), 0);
    const now = JSON.stringify([queued, texts.map((text) => sumMetric(text, "loki_ingester_chunks_stored_total")), disk()]);
    if (queued === 0 && now === last) stable++;
    else {
      stable = 0;
      settledAt = Date.now();
    }
    last = now;
  }
  return (settledAt - start) / 1000;
}
