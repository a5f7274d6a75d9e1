import type { LogEntry } from "@aixcl/shared";
import type { LabelPair } from "./labels.js";
import { formatLabels, labelNameProblem, sanitizeLabelName, toWellFormed } from "./labels.js";

/**
 * How a LogEntry becomes a Loki entry. Only `service` (the subsystem) and `level` are stream labels, plus the
 * configured static labels: everything per-request or per-call site is high-cardinality and would explode the
 * number of Loki streams, so it goes into structured metadata, which LogQL filters on without indexing.
 */
export const RESERVED_LABELS = ["service", "level"] as const;

/** Structured metadata names for the LogEntry's own fields (the proto field names). */
export const METADATA_FIELDS = [
  ["module", (e: LogEntry) => e.module],
  ["function", (e: LogEntry) => e.function],
  ["file_path", (e: LogEntry) => e.filePath],
  ["line_number", (e: LogEntry) => (e.lineNumber === 0 ? "" : String(e.lineNumber))],
  ["topic", (e: LogEntry) => e.topic],
  ["user_uuid", (e: LogEntry) => e.userUuid],
  ["session_id", (e: LogEntry) => e.sessionId],
  ["trace_id", (e: LogEntry) => e.traceId],
] as const;

/** Prefixes that keep producer-chosen map keys apart from the fields above and from each other. */
export const METADATA_PREFIX = "meta_";
export const EXTRA_PREFIX = "extra_";

/** Fixed per-entry overhead counted into sizes: the timestamp and protobuf framing. */
const ENTRY_OVERHEAD_BYTES = 16;

/** A Loki stream identity: the canonical label text sent to Loki plus the pairs it was built from. */
export interface StreamKey {
  readonly text: string;
  readonly labels: ReadonlyMap<string, string>;
}

export interface LokiEntry {
  readonly stream: StreamKey;
  readonly timestampNs: bigint;
  readonly line: string;
  readonly metadata: readonly LabelPair[];
  /** Size estimate (UTF-8 bytes of line and metadata plus overhead) used for batch and buffer limits. */
  readonly bytes: number;
}

/** Why the static labels cannot be used, or undefined. Checked at config load so bad labels stop the start. */
export function staticLabelProblem(name: string): string | undefined {
  if ((RESERVED_LABELS as readonly string[]).includes(name)) return `"${name}" is set from each entry and cannot be static`;
  return labelNameProblem(name);
}

/** Streams and metadata names seen are cached; the caps only matter if producers invent unbounded names. */
const STREAM_CACHE_LIMIT = 10_000;
const NAME_CACHE_LIMIT = 10_000;

export class EntryMapper {
  private readonly staticPairs: LabelPair[];
  private readonly streams = new Map<string, StreamKey>();
  private readonly names = new Map<string, string>();

  constructor(staticLabels: Readonly<Record<string, string>>) {
    for (const name of Object.keys(staticLabels)) {
      const problem = staticLabelProblem(name);
      if (problem) throw new Error(`static label ${JSON.stringify(name)}: ${problem}`);
    }
    this.staticPairs = Object.entries(staticLabels);
  }

  map(entry: LogEntry): LokiEntry {
    const line = toWellFormed(entry.message);
    const metadata: LabelPair[] = [];
    let bytes = ENTRY_OVERHEAD_BYTES + Buffer.byteLength(line);
    for (const [name, get] of METADATA_FIELDS) {
      const raw = get(entry);
      if (raw === "") continue;
      const value = toWellFormed(raw);
      metadata.push([name, value]);
      bytes += name.length + Buffer.byteLength(value);
    }
    bytes += this.addMap(metadata, entry.metadata, METADATA_PREFIX);
    bytes += this.addMap(metadata, entry.extra, EXTRA_PREFIX);
    return { stream: this.stream(entry.subsystem, entry.level), timestampNs: entry.timestampNs, line, metadata, bytes };
  }

  /** Appends a producer map under `prefix`; keys that sanitize to the same name get _2, _3, ... Returns bytes added. */
  private addMap(out: LabelPair[], map: Readonly<Record<string, string>>, prefix: string): number {
    let bytes = 0;
    const used = new Set<string>();
    for (const key in map) {
      const raw = map[key];
      if (!raw) continue;
      const base = this.metadataName(prefix, key);
      let name = base;
      for (let n = 2; used.has(name); n++) name = `${base}_${n}`;
      used.add(name);
      const value = toWellFormed(raw);
      out.push([name, value]);
      bytes += name.length + Buffer.byteLength(value);
    }
    return bytes;
  }

  private metadataName(prefix: string, key: string): string {
    const cacheKey = prefix + key;
    let name = this.names.get(cacheKey);
    if (name === undefined) {
      name = prefix + sanitizeLabelName(key);
      if (this.names.size >= NAME_CACHE_LIMIT) this.names.clear();
      this.names.set(cacheKey, name);
    }
    return name;
  }

  private stream(service: string, level: string): StreamKey {
    const cacheKey = `${service}\u0000${level}`;
    let key = this.streams.get(cacheKey);
    if (key) return key;
    const pairs: LabelPair[] = [...this.staticPairs, ["service", service], ["level", level]];
    key = { text: formatLabels(pairs), labels: new Map(pairs) };
    if (this.streams.size >= STREAM_CACHE_LIMIT) this.streams.clear();
    this.streams.set(cacheKey, key);
    return key;
  }
}
