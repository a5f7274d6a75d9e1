import type { LogEntry } from "@aixcl/wire";

/**
 * The broker's default max_message_bytes (config/message_bus.yaml): ZeroMQ refuses a larger message while it arrives
 * and drops the publisher's connection, and with it whatever else was on its way. The Python client uses the same.
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Ends a text cut to fit: findable in Loki (`|= "truncated by aixcl-logging"`), and it says how long the text was. */
export function truncationMarker(originalBytes: number): string {
  return ` [truncated by aixcl-logging from ${originalBytes} bytes]`;
}

/** The first `bytes` bytes of UTF-8 text, less a character the cut would split. */
function utf8Prefix(text: Buffer, bytes: number): string {
  let end = bytes;
  while (end > 0 && ((text[end] as number) & 0xc0) === 0x80) end--;
  return text.toString("utf8", 0, end);
}

/**
 * The entry encoded within `maxPayloadBytes`: as it is when it fits; otherwise its longest texts (the message and
 * the values of `extra`) are cut, longest first, each ending in truncationMarker, until it fits. Undefined when
 * even that cannot make it fit: the rest of the entry alone is too large.
 */
export function fitEntry(entry: LogEntry, encode: (entry: LogEntry) => Buffer, maxPayloadBytes: number): { payload: Buffer; truncated: boolean } | undefined {
  let payload = encode(entry);
  if (payload.length <= maxPayloadBytes) return { payload, truncated: false };
  const cut: LogEntry = { ...entry, extra: { ...entry.extra } };
  const texts: { key: string | undefined; text: Buffer }[] = [{ key: undefined, text: Buffer.from(entry.message) }];
  for (const [key, value] of Object.entries(entry.extra)) texts.push({ key, text: Buffer.from(value) });
  texts.sort((a, b) => b.text.length - a.text.length);
  for (const { key, text } of texts) {
    const excess = payload.length - maxPayloadBytes;
    if (excess <= 0) break;
    const marker = truncationMarker(text.length);
    const markerBytes = Buffer.byteLength(marker);
    // The rest are no longer than their marker: cutting them would not make the entry smaller.
    if (text.length <= markerBytes) break;
    // The field's length prefix (and the envelope's) can only shrink with it: cutting `excess` bytes is enough.
    const shortened = utf8Prefix(text, Math.max(0, text.length - excess - markerBytes)) + marker;
    if (key === undefined) cut.message = shortened;
    else cut.extra[key] = shortened;
    payload = encode(cut);
  }
  return payload.length <= maxPayloadBytes ? { payload, truncated: true } : undefined;
}
