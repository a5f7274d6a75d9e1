/**
 * Fields that travel in the line rather than as structured metadata: ` name=value` pairs in logfmt, which LogQL's
 * `| logfmt` reads. They go at the end of the message's first line, so a one-line message reads as message then
 * fields, and a multi-line one (a traceback) keeps its first line as the summary with its fields on it and the rest
 * untouched below.
 */

/** What logfmt reads back only when quoted: whitespace, `=`, `"`, `\` and control characters (C0, DEL, C1). */
const NEEDS_QUOTES = /[\s="\\\x00-\x1f\x7f-\x9f]/;

/** ` name=value`, the value quoted when logfmt needs it; names are label names (ASCII, no spaces or `=`). */
export function logfmtPair(name: string, value: string): string {
  // JSON's escapes (\" \\ \n \t \uXXXX) are the ones logfmt decoders unquote.
  return ` ${name}=${NEEDS_QUOTES.test(value) ? JSON.stringify(value) : value}`;
}

/** The message with `pairs` (logfmtPair's output, concatenated) at the end of its first line. */
export function withLineFields(message: string, pairs: string): string {
  if (pairs === "") return message;
  const end = message.indexOf("\n");
  // An empty first line would start with a space that looks like a typo; the pairs begin the line instead.
  if (end === -1) return message === "" ? pairs.slice(1) : message + pairs;
  return end === 0 ? pairs.slice(1) + message : message.slice(0, end) + pairs + message.slice(end);
}

/**
 * The names `| logfmt` could read as keys in `text`: the run of label-name characters before each `=` (for `a.b=`
 * that is `b`, more than logfmt reads, which only errs towards keeping a field out of the line).
 */
export function keysInText(text: string): string[] {
  const keys: string[] = [];
  for (let eq = text.indexOf("="); eq !== -1; eq = text.indexOf("=", eq + 1)) {
    let start = eq;
    while (start > 0 && isNameChar(text.charCodeAt(start - 1))) start--;
    if (start < eq) keys.push(text.slice(start, eq));
  }
  return keys;
}

function isNameChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95;
}
