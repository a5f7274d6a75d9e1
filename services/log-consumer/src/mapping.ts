import type { LogEntry } from "@aixcl/wire";
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
  ["line_number", (e: LogEntry) => (e.lineNumber === 0 ? "" : lineNumberText(e.lineNumber))],
  ["topic", (e: LogEntry) => e.topic],
  ["user_uuid", (e: LogEntry) => e.userUuid],
  ["session_id", (e: LogEntry) => e.sessionId],
  ["trace_id", (e: LogEntry) => e.traceId],
] as const;

/** Line numbers repeat; their text is made once. */
const LINE_NUMBERS = Array.from({ length: 4096 }, (_, n) => String(n));

function lineNumberText(n: number): string {
  return LINE_NUMBERS[n] ?? String(n);
}

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
  /** UTF-8 sizes: the line's, then each metadata value's in order (names are ASCII); the encoder needs them. */
  readonly sizes: readonly number[];
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
  /** Stream keys by service, then level: two lookups on strings the decoder already holds, no key building. */
  private readonly streams = new Map<string, Map<string, StreamKey>>();
  private readonly metaNames = new Map<string, string>();
  private readonly extraNames = new Map<string, string>();

  constructor(staticLabels: Readonly<Record<string, string>>) {
    for (const name of Object.keys(staticLabels)) {
      const problem = staticLabelProblem(name);
      if (problem) throw new Error(`static label ${JSON.stringify(name)}: ${problem}`);
    }
    this.staticPairs = Object.entries(staticLabels);
  }

  map(entry: LogEntry): LokiEntry {
    const line = toWellFormed(entry.message);
    const lineBytes = Buffer.byteLength(line);
    const out: MappedMetadata = { pairs: [], sizes: [lineBytes], bytes: ENTRY_OVERHEAD_BYTES + lineBytes };
    for (const [name, get] of METADATA_FIELDS) add(out, name, get(entry));
    this.addMap(out, entry.metadata, METADATA_PREFIX, this.metaNames);
    this.addMap(out, entry.extra, EXTRA_PREFIX, this.extraNames);
    return { stream: this.stream(entry.subsystem, entry.level), timestampNs: entry.timestampNs, line, metadata: out.pairs, sizes: out.sizes, bytes: out.bytes };
  }

  /** Appends a producer map under `prefix`; keys that sanitize to the same name get _2, _3, ... */
  private addMap(out: MappedMetadata, map: Readonly<Record<string, string>>, prefix: string, cache: Map<string, string>): void {
    const first = out.pairs.length;
    for (const key in map) {
      const raw = map[key];
      if (!raw) continue;
      const base = this.metadataName(prefix, key, cache);
      let name = base;
      // Maps are small: a linear look at the names added so far beats building a Set per entry.
      for (let n = 2; hasName(out.pairs, first, name); n++) name = `${base}_${n}`;
      add(out, name, raw);
    }
  }

  private metadataName(prefix: string, key: string, cache: Map<string, string>): string {
    let name = cache.get(key);
    if (name === undefined) {
      name = prefix + sanitizeLabelName(key);
      if (cache.size >= NAME_CACHE_LIMIT) cache.clear();
      cache.set(key, name);
    }
    return name;
  }

  private stream(service: string, level: string): StreamKey {
    let byLevel = this.streams.get(service);
    if (!byLevel) {
      if (this.streams.size >= STREAM_CACHE_LIMIT) this.streams.clear();
      byLevel = new Map();
      this.streams.set(service, byLevel);
    }
    let key = byLevel.get(level);
    if (!key) {
      const pairs: LabelPair[] = [...this.staticPairs, ["service", service], ["level", level]];
      key = { text: formatLabels(pairs), labels: new Map(pairs) };
      byLevel.set(level, key);
    }
    return key;
  }
}

interface MappedMetadata {
  pairs: LabelPair[];
  sizes: number[];
  bytes: number;
}

/** Adds one structured metadata pair unless the value is empty. */
function add(out: MappedMetadata, name: string, raw: string): void {
  if (raw === "") return;
  const value = toWellFormed(raw);
  const size = Buffer.byteLength(value);
  out.pairs.push([name, value]);
  out.sizes.push(size);
  out.bytes += name.length + size;
}

function hasName(pairs: readonly LabelPair[], from: number, name: string): boolean {
  for (let i = from; i < pairs.length; i++) if ((pairs[i] as LabelPair)[0] === name) return true;
  return false;
}
