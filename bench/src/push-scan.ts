/**
 * Reads a Loki push body (snappy raw block + protobuf PushRequest) the cheap way: walks the wire format and hands
 * over each entry's line as a byte range, without building objects or strings. The receiver shares the two
 * cores with the pipeline it measures, so it must cost far less per entry than the consumer does.
 */
import { uncompressSync } from "snappy";
import { Cursor } from "./proto-cursor.js";

export interface PushScan {
  streams: number;
  entries: number;
  /** Uncompressed protobuf size. */
  bytes: number;
}

/** Calls onLine(buf, start, end) for every entry's line; throws on a malformed body. */
export function scanPush(body: Buffer, onLine: (buf: Buffer, start: number, end: number) => void): PushScan {
  const raw = uncompressSync(body) as Buffer;
  let streams = 0;
  let entries = 0;
  // PushRequest.streams = 1; Stream.entries = 2; Entry.line = 2.
  new Cursor(raw, 0, raw.length).each(1, (stream) => {
    streams++;
    stream.each(2, (entry) => {
      entries++;
      entry.each(2, (line) => onLine(raw, line.pos, line.end));
    });
  });
  return { streams, entries, bytes: raw.length };
}
