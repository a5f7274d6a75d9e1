import type { LogEntry } from "@aixcl/wire";
import type { LabelPair } from "./labels.js";
import { formatLabels, labelNameProblem, sanitizeLabelName, toWellFormed } from "./labels.js";
import { keysInText, logfmtPair, withLineFields } from "./line-fields.js";

/**
 * How a LogEntry becomes a Loki entry. Only `service` (the subsystem) and `level` are stream labels, plus the
 * configured static labels: everything per-request or per-call site is high-cardinality and would explode the
 * number of Loki streams. Each other field goes where FieldPlaces says: structured metadata (LogQL filters on it
 * directly, Loki stores and indexes every pair), the line (logfmt, read by `| logfmt`; costs Loki only its bytes),
 * or nowhere.
 */
export const RESERVED_LABELS = ["service", "level"] as const;

export const FIELD_PLACES = ["metadata", "line", "drop"] as const;
export type FieldPlace = (typeof FIELD_PLACES)[number];
type KeptPlace = Exclude<FieldPlace, "drop">;

/** Where each field goes; `meta` and `extra` stand for every `meta_<key>` and `extra_<key>`. */
export interface FieldPlaces {
  readonly module: FieldPlace;
  readonly function: FieldPlace;
  readonly file_path: FieldPlace;
  readonly line_number: FieldPlace;
  readonly topic: FieldPlace;
  readonly user_uuid: FieldPlace;
  readonly session_id: FieldPlace;
  readonly trace_id: FieldPlace;
  readonly meta: FieldPlace;
  readonly extra: FieldPlace;
}

/**
 * The consumer's default (config/log_consumer.yaml, fields): `module`, which the dashboards filter on and which has
 * few values, stays metadata; the ids (a new value nearly every entry, the costliest metadata for Loki), the call
 * site and the producer's maps ride in the line, where Loki only stores their bytes.
 */
export const DEFAULT_FIELD_PLACES: FieldPlaces = {
  module: "metadata",
  function: "line",
  file_path: "line",
  line_number: "line",
  topic: "line",
  user_uuid: "line",
  session_id: "line",
  trace_id: "line",
  meta: "line",
  extra: "line",
};

/** Where every field is structured metadata: what the consumer sent before FieldPlaces existed. */
export const ALL_METADATA: FieldPlaces = {
  module: "metadata",
  function: "metadata",
  file_path: "metadata",
  line_number: "metadata",
  topic: "metadata",
  user_uuid: "metadata",
  session_id: "metadata",
  trace_id: "metadata",
  meta: "metadata",
  extra: "metadata",
};

/** Names in Loki for the LogEntry's own fields (the proto field names). */
export const ENTRY_FIELDS = [
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
  /** The LogEntry's own fields that are kept, with their places. */
  private readonly fields: (readonly [string, (e: LogEntry) => string, KeptPlace])[] = [];
  /** Stream keys by service, then level: two lookups on strings the decoder already holds, no key building. */
  private readonly streams = new Map<string, Map<string, StreamKey>>();
  private readonly metaNames = new Map<string, string>();
  private readonly extraNames = new Map<string, string>();

  constructor(
    staticLabels: Readonly<Record<string, string>>,
    private readonly places: FieldPlaces = DEFAULT_FIELD_PLACES,
  ) {
    for (const name of Object.keys(staticLabels)) {
      const problem = staticLabelProblem(name);
      if (problem) throw new Error(`static label ${JSON.stringify(name)}: ${problem}`);
    }
    this.staticPairs = Object.entries(staticLabels);
    for (const [name, get] of ENTRY_FIELDS) {
      const place = places[name];
      if (place !== "drop") this.fields.push([name, get, place]);
    }
  }

  map(entry: LogEntry): LokiEntry {
    const message = toWellFormed(entry.message);
    const out: MappedEntry = { message, messageKeys: undefined, pairs: [], sizes: [0], bytes: ENTRY_OVERHEAD_BYTES, lineFields: "" };
    for (const [name, get, place] of this.fields) add(out, name, get(entry), place);
    const { meta, extra } = this.places;
    if (meta !== "drop") this.addMap(out, entry.metadata, METADATA_PREFIX, this.metaNames, meta);
    if (extra !== "drop") this.addMap(out, entry.extra, EXTRA_PREFIX, this.extraNames, extra);
    const line = withLineFields(message, out.lineFields);
    const lineBytes = Buffer.byteLength(line);
    out.sizes[0] = lineBytes;
    return {
      stream: this.stream(entry.subsystem, entry.level),
      timestampNs: entry.timestampNs,
      line,
      metadata: out.pairs,
      sizes: out.sizes,
      bytes: out.bytes + lineBytes,
    };
  }

  /** Adds a producer map under `prefix`; keys that sanitize to the same name get _2, _3, ... */
  private addMap(out: MappedEntry, map: Readonly<Record<string, string>>, prefix: string, cache: Map<string, string>, place: KeptPlace): void {
    // Maps are small: a linear look at the names given so far beats building a Set per entry.
    const names: string[] = [];
    for (const key in map) {
      const raw = map[key];
      if (!raw) continue;
      const base = this.metadataName(prefix, key, cache);
      let name = base;
      for (let n = 2; names.includes(name); n++) name = `${base}_${n}`;
      names.push(name);
      add(out, name, raw, place);
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

interface MappedEntry {
  /** The message, well-formed; the line is it with lineFields. */
  readonly message: string;
  /** keysInText(message), found when the first field goes to the line. */
  messageKeys: string[] | undefined;
  pairs: LabelPair[];
  /** sizes[0], the line's, is set once the line is complete. */
  sizes: number[];
  /** Overhead and metadata so far; the line's bytes are added last. */
  bytes: number;
  lineFields: string;
}

/**
 * Adds one field, unless its value is empty, as structured metadata or to the line. A message that itself holds
 * `name=` would give `| logfmt` two values for the name (it takes the message's, the first); the field then goes
 * into metadata, which `| logfmt | name="..."` reads first (Loki renames the line's to name_extracted).
 */
function add(out: MappedEntry, name: string, raw: string, place: KeptPlace): void {
  if (raw === "") return;
  const value = toWellFormed(raw);
  if (place === "line" && !(out.messageKeys ??= keysInText(out.message)).includes(name)) {
    out.lineFields += logfmtPair(name, value);
    return;
  }
  const size = Buffer.byteLength(value);
  out.pairs.push([name, value]);
  out.sizes.push(size);
  out.bytes += name.length + size;
}
