/**
 * The benchmark's log traffic: 20 services x 5 levels, messages of 80-400 bytes, each carrying its run id, a
 * sequence number and its publish time in the text (`run=<id> blk=<block> seq=<n> t=<epoch ms> ...`), so every
 * sink -- the decoding receiver, Loki through LogQL, Promtail's files -- can count loss, duplication and latency
 * from the line alone. Entry n is the same for every pipeline (only `t` differs).
 *
 * Payloads are encoded by hand (fixed fields encoded once per stream), because the publishers share the two
 * cores with what is being measured; `checkEncoding` proves the bytes decode to the intended entry with the
 * consumer's own decoder before a run starts.
 */
import type { LogEntry, LogLevelName } from "@aixcl/wire";
import { decodeLogMessage, levelNumber } from "@aixcl/wire";

export const SERVICES = [
  "api_gateway", "auth", "billing", "catalog", "checkout", "chat", "embeddings", "frontend", "inference", "ingest",
  "mailer", "memory", "notifier", "orders", "planner", "scheduler", "search", "storage", "voice", "worker",
] as const;

/** Levels by share of traffic (per thousand): most lines are info/debug, as in real services. */
const LEVEL_SHARES: readonly [LogLevelName, number][] = [["debug", 250], ["info", 550], ["warning", 120], ["error", 60], ["critical", 20]];
export const LEVELS = LEVEL_SHARES.map(([level]) => level);

export const MIN_LINE_BYTES = 80;
export const MAX_LINE_BYTES = 400;

/** A cheap, well-mixed 32-bit hash of (n, salt): which service, level, length and filler entry n gets. */
function mix(n: number, salt: number): number {
  let h = Math.imul(n ^ salt, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca77);
  h ^= h >>> 13;
  return h >>> 0;
}

const WORDS = (
  "request handled user session cache miss hit upstream timeout retry status ok token refreshed query rows " +
  "returned latency ms queue depth batch flushed bytes written connection pool acquired released payment " +
  "authorized order created item reserved inventory updated model loaded prompt tokens completion stream " +
  "closed websocket opened client disconnected backoff scheduled job finished worker idle shard replica " +
  "GET POST /v1/items /v1/orders /api/chat /health 200 201 204 400 404 500 503 id=4711 took=12ms size=2kB"
).split(" ");

/** Pseudo-random ASCII prose; entry n reads its filler as a slice of it. */
const CORPUS = (() => {
  let text = "";
  for (let i = 0; text.length < 64 * 1024; i++) text += `${WORDS[mix(i, 7) % WORDS.length]} `;
  return text;
})();

export interface EntryShape {
  service: string;
  level: LogLevelName;
  /** Length of the whole message in bytes (ASCII), MIN_LINE_BYTES..MAX_LINE_BYTES. */
  lineBytes: number;
}

export function shapeOf(seq: number): EntryShape {
  const service = SERVICES[mix(seq, 1) % SERVICES.length] as string;
  let pick = mix(seq, 2) % 1000;
  let level: LogLevelName = "info";
  for (const [name, share] of LEVEL_SHARES) {
    if (pick < share) {
      level = name;
      break;
    }
    pick -= share;
  }
  return { service, level, lineBytes: MIN_LINE_BYTES + (mix(seq, 3) % (MAX_LINE_BYTES - MIN_LINE_BYTES + 1)) };
}

/** Publish time as it is written into lines: epoch milliseconds with microseconds. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The message text of entry `seq` of a run, published at `tMs`. */
export function messageOf(run: string, blockSize: number, seq: number, tMs: number): string {
  const shape = shapeOf(seq);
  const head = `run=${run} blk=${Math.floor(seq / blockSize)} seq=${seq} t=${tMs.toFixed(3)} `;
  const fill = Math.max(0, shape.lineBytes - head.length);
  const at = mix(seq, 4) % (CORPUS.length - MAX_LINE_BYTES);
  return head + CORPUS.slice(at, at + fill);
}

// --- protobuf by hand: aico.core.LogEntry ------------------------------------------------------------------------

const LENGTH_DELIMITED = 2;
const VARINT = 0;

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(value: number): void {
    while (value > 0x7f) {
      this.buf[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buf[this.pos++] = value;
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  string(field: number, text: string): void {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(Buffer.byteLength(text));
    this.pos += this.buf.write(text, this.pos);
  }

  /** One map<string,string> entry: a length-delimited message of key = 1, value = 2 (all ASCII here). */
  mapEntry(field: number, key: string, value: string): void {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(2 + key.length + 2 + value.length);
    this.string(1, key);
    this.string(2, value);
  }

  bytes(chunk: Uint8Array): void {
    this.buf.set(chunk, this.pos);
    this.pos += chunk.length;
  }
}

// What every entry carries beside its message, on the bus as LogEntry fields and in the files as JSON fields.
const MODULE = "handler";
const FUNCTION = "handle_request";
const filePathOf = (service: string) => `src/${service}/handler.py`;
const topicOf = (service: string) => `logs.${service}.${MODULE}`;
const lineNumberOf = (seq: number) => 100 + (seq % 400);
const requestIdOf = (seq: number) => `req-${(mix(seq, 5) % 1e8).toString(36)}`;
const sessionIdOf = (seq: number) => `sess-${mix(seq, 6) % 5000}`;
const httpStatusOf = (level: LogLevelName) => (level === "error" || level === "critical" ? "500" : "200");

/** Largest payload this workload produces, with room to spare. */
const MAX_PAYLOAD_BYTES = 2048;

/** The fields that are the same for every entry of a stream (service x level), encoded once. */
function streamFields(service: string, level: LogLevelName): Buffer {
  const w = new Writer(Buffer.alloc(512));
  w.tag(2, VARINT);
  w.varint(levelNumber(level));
  w.string(3, service);
  w.string(4, MODULE);
  w.string(5, FUNCTION);
  w.string(9, filePathOf(service));
  return Buffer.from(w.buf.subarray(0, w.pos));
}

export class EntryEncoder {
  private readonly fixed = new Map<string, Buffer>();
  private readonly topics = new Map<string, Buffer>();

  constructor(
    readonly run: string,
    readonly blockSize: number,
  ) {
    for (const service of SERVICES) {
      this.topics.set(service, Buffer.from(topicOf(service)));
      for (const level of LEVELS) this.fixed.set(`${service}/${level}`, streamFields(service, level));
    }
  }

  /** The two bus frames of entry `seq` published at `tMs`: topic and LogEntry payload. */
  frames(seq: number, tMs: number): [Buffer, Buffer] {
    const { service, level } = shapeOf(seq);
    const w = new Writer(Buffer.allocUnsafe(MAX_PAYLOAD_BYTES));
    const ms = Math.floor(tMs);
    const seconds = Math.floor(ms / 1000);
    const nanos = (ms % 1000) * 1_000_000 + Math.floor((tMs - ms) * 1e6);
    w.tag(1, LENGTH_DELIMITED);
    w.varint(1 + varintSize(seconds) + (nanos > 0 ? 1 + varintSize(nanos) : 0));
    w.tag(1, VARINT);
    w.varint(seconds);
    if (nanos > 0) {
      w.tag(2, VARINT);
      w.varint(nanos);
    }
    w.bytes(this.fixed.get(`${service}/${level}`) as Buffer);
    w.string(6, messageOf(this.run, this.blockSize, seq, tMs));
    w.mapEntry(8, "request_id", requestIdOf(seq));
    w.tag(10, VARINT);
    w.varint(lineNumberOf(seq));
    w.string(12, sessionIdOf(seq));
    w.string(13, traceId(seq));
    w.mapEntry(14, "http_status", httpStatusOf(level));
    return [this.topics.get(service) as Buffer, w.buf.subarray(0, w.pos)];
  }
}

function varintSize(value: number): number {
  let size = 1;
  while (value > 0x7f) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function traceId(seq: number): string {
  return (mix(seq, 8).toString(16).padStart(8, "0") + mix(seq, 9).toString(16).padStart(8, "0")).repeat(2);
}

/**
 * Decodes a few entries with the consumer's own decoder and compares them with what was meant; throws on any
 * difference, so a mistake in the hand encoding cannot pass for a pipeline result.
 */
export function checkEncoding(encoder: EntryEncoder): void {
  for (const seq of [0, 1, 2, 77, 1234, 99_999]) {
    const t = nowMs();
    const decoded = decodeLogMessage(encoder.frames(seq, t));
    if (!decoded.ok) throw new Error(`workload encoding of entry ${seq} does not decode: ${decoded.reason} ${decoded.detail}`);
    const shape = shapeOf(seq);
    const expected: Partial<LogEntry> = {
      subsystem: shape.service,
      level: shape.level,
      module: MODULE,
      message: messageOf(encoder.run, encoder.blockSize, seq, t),
      lineNumber: lineNumberOf(seq),
      traceId: traceId(seq),
    };
    for (const [key, value] of Object.entries(expected)) {
      const actual = decoded.entry[key as keyof LogEntry];
      if (actual !== value) throw new Error(`workload entry ${seq}: ${key} decodes as ${String(actual)}, meant ${String(value)}`);
    }
    const tNs = BigInt(Math.floor(t)) * 1_000_000n + BigInt(Math.floor((t - Math.floor(t)) * 1e6));
    if (decoded.entry.timestampNs !== tNs) throw new Error(`workload entry ${seq}: timestamp ${decoded.entry.timestampNs}, meant ${tNs}`);
    if (decoded.entry.extra.http_status === undefined || decoded.entry.metadata.request_id === undefined) {
      throw new Error(`workload entry ${seq}: metadata/extra maps did not decode`);
    }
  }
}

/**
 * The fields the consumer sends with entry `seq` (its LogEntry fields, `meta_` + its metadata map, `extra_` + its
 * extra map), under the names it gives them in Loki; with every field as structured metadata (fields: all
 * metadata) those are its structured metadata. The file shippers' lines carry the same fields under the same
 * names, so a collector that keeps them as attributes hands Loki what that consumer would, byte for byte.
 */
export function fieldsOf(seq: number): Record<string, string> {
  const { service, level } = shapeOf(seq);
  return {
    module: MODULE,
    function: FUNCTION,
    file_path: filePathOf(service),
    line_number: String(lineNumberOf(seq)),
    topic: topicOf(service),
    session_id: sessionIdOf(seq),
    trace_id: traceId(seq),
    meta_request_id: requestIdOf(seq),
    extra_http_status: httpStatusOf(level),
  };
}

/** Entry `seq` as the JSON line an application writes to its log file (what the file shippers ship). */
export function jsonLine(run: string, blockSize: number, seq: number, tMs: number): string {
  const { service, level } = shapeOf(seq);
  return JSON.stringify({ level, service, msg: messageOf(run, blockSize, seq, tMs), ...fieldsOf(seq) });
}
