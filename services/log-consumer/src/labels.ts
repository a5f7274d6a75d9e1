/**
 * Loki stream labels: name validation, value escaping and the label-set text format.
 *
 * Stream labels travel as text (`{level="info", service="api"}`) that Loki parses, so every value is quoted
 * exactly the way Go's strconv.Quote does it. That makes injection impossible (a quote or backslash in a value
 * is escaped, never closes the string) and makes our text identical to the label sets Loki prints in its
 * error messages, which the 400-body parser relies on.
 */

export type LabelPair = readonly [name: string, value: string];

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Loki's default limits_config.max_label_name_length / max_label_value_length. */
export const MAX_LABEL_NAME_LENGTH = 1024;
export const MAX_LABEL_VALUE_LENGTH = 2048;

/** Why `name` cannot be a stream label name, or undefined when it can. */
export function labelNameProblem(name: string): string | undefined {
  if (!LABEL_NAME.test(name)) return "must match [a-zA-Z_][a-zA-Z0-9_]* (Prometheus label name)";
  if (name.startsWith("__")) return "names starting with __ are reserved for Loki's internal use";
  if (name.length > MAX_LABEL_NAME_LENGTH) return `longer than Loki's limit of ${MAX_LABEL_NAME_LENGTH} characters`;
  return undefined;
}

/** ES2024 string methods (Node >= 20); TypeScript's ES2023 lib does not declare them yet. */
interface WellFormed {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/** Replaces unpaired UTF-16 surrogates with U+FFFD, so the string encodes to valid UTF-8 (Loki requires it). */
export function toWellFormed(text: string): string {
  const s = text as unknown as WellFormed;
  return s.isWellFormed() ? text : s.toWellFormed();
}

/** Characters Go's strconv.IsPrint accepts: categories L, M, N, P, S and the ASCII space. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;
const NEEDS_ESCAPE = /["\\]|[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/u;
const GO_SHORT_ESCAPES: Record<number, string> = { 7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v" };

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

/** Quotes a label value like Go's strconv.Quote (what Prometheus' labels.String() and Loki's parser use). */
export function quoteLabelValue(raw: string): string {
  const value = toWellFormed(raw);
  if (!NEEDS_ESCAPE.test(value)) return `"${value}"`;
  let out = '"';
  for (const ch of value) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (PRINTABLE.test(ch)) out += ch;
    else if (GO_SHORT_ESCAPES[cp] !== undefined) out += GO_SHORT_ESCAPES[cp];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${hex(cp, 2)}`;
    else if (cp < 0x10000) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return `${out}"`;
}

/** The canonical label-set text: sorted by name, `name="value"` joined by ", " (Prometheus' labels.String()). */
export function formatLabels(pairs: readonly LabelPair[]): string {
  const sorted = [...pairs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${sorted.map(([name, value]) => `${name}=${quoteLabelValue(value)}`).join(", ")}}`;
}

/** Turns an arbitrary key (metadata map keys, say) into a valid label name: invalid characters become `_`. */
export function sanitizeLabelName(raw: string): string {
  const cleaned = raw.replace(/[^a-zA-Z0-9_]/g, "_");
  return cleaned === "" || /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned;
}

const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "\\": 92, '"': 34, "'": 39 };

/**
 * Reads a Go-quoted string starting at `text[start] === '"'`. Returns the value and the index after the closing
 * quote, or undefined when the text there is not a complete quoted string.
 */
export function readQuoted(text: string, start: number): { value: string; end: number } | undefined {
  if (text[start] !== '"') return undefined;
  const bytes: number[] = [];
  const pushChar = (ch: string) => bytes.push(...Buffer.from(ch, "utf8"));
  let i = start + 1;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === '"') return { value: Buffer.from(bytes).toString("utf8"), end: i + 1 };
    if (ch === "\n") return undefined;
    if (ch !== "\\") {
      const cp = text.codePointAt(i) as number;
      const full = String.fromCodePoint(cp);
      pushChar(full);
      i += full.length;
      continue;
    }
    const esc = text[i + 1];
    if (esc === undefined) return undefined;
    if (SIMPLE_ESCAPES[esc] !== undefined) {
      bytes.push(SIMPLE_ESCAPES[esc] as number);
      i += 2;
    } else if (esc === "x" || esc === "u" || esc === "U") {
      const width = esc === "x" ? 2 : esc === "u" ? 4 : 8;
      const digits = text.slice(i + 2, i + 2 + width);
      if (!/^[0-9a-fA-F]+$/.test(digits) || digits.length !== width) return undefined;
      const n = parseInt(digits, 16);
      if (esc === "x") bytes.push(n);
      else if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return undefined;
      else pushChar(String.fromCodePoint(n));
      i += 2 + width;
    } else if (/[0-7]/.test(esc)) {
      const digits = text.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(digits)) return undefined;
      bytes.push(parseInt(digits, 8) & 0xff);
      i += 4;
    } else {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Parses a label set `{name="value", ...}` starting at `text[start] === '{'`, as Loki prints them in error
 * messages. Returns the pairs and the index after `}`, or undefined when the text there is not a label set.
 */
export function readLabelSet(text: string, start: number): { labels: Map<string, string>; end: number } | undefined {
  if (text[start] !== "{") return undefined;
  const labels = new Map<string, string>();
  let i = start + 1;
  const skipSpaces = () => {
    while (text[i] === " ") i++;
  };
  skipSpaces();
  if (text[i] === "}") return { labels, end: i + 1 };
  for (;;) {
    const name = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i, i + MAX_LABEL_NAME_LENGTH + 1))?.[0];
    if (!name) return undefined;
    i += name.length;
    skipSpaces();
    if (text[i] !== "=") return undefined;
    i++;
    skipSpaces();
    const quoted = readQuoted(text, i);
    if (!quoted) return undefined;
    labels.set(name, quoted.value);
    i = quoted.end;
    skipSpaces();
    if (text[i] === "}") return { labels, end: i + 1 };
    if (text[i] !== ",") return undefined;
    i++;
    skipSpaces();
  }
}
