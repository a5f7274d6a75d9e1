/**
 * Reads a Loki push body (snappy raw block + protobuf PushRequest) the cheap way: walks the wire format and hands
 * over each entry's line as a byte range, without building objects or strings. The receiver shares the two
 * cores with the pipeline it measures, so it must cost far less per entry than the consumer does.
 */
import { uncompressSync } from "snappy";

const LENGTH_DELIMITED = 2;

class Cursor {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error("truncated varint");
      const b = this.buf[this.pos++] as number;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
      if (scale > 2 ** 63) throw new Error("varint too long");
    }
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === LENGTH_DELIMITED) {
      // Not `this.pos += this.varint()`: that adds to the position read before the length was.
      const length = this.varint();
      this.pos += length;
    }
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
    if (this.pos > this.end) throw new Error("field runs past its message");
  }

  /** The [start, end) of the length-delimited field the cursor is at, and moves past it. */
  sub(): Cursor {
    const length = this.varint();
    const start = this.pos;
    this.pos += length;
    if (this.pos > this.end) throw new Error("field runs past its message");
    return new Cursor(this.buf, start, this.pos);
  }
}

export interface PushScan {
  streams: number;
  entries: number;
  /** Uncompressed protobuf size. */
  bytes: number;
}

/** Calls onLine(buf, start, end) for every entry's line; throws on a malformed body. */
export function scanPush(body: Buffer, onLine: (buf: Buffer, start: number, end: number) => void): PushScan {
  const raw = uncompressSync(body) as Buffer;
  const request = new Cursor(raw, 0, raw.length);
  let streams = 0;
  let entries = 0;
  while (request.pos < request.end) {
    const tag = request.varint();
    if (tag >>> 3 !== 1 || (tag & 7) !== LENGTH_DELIMITED) {
      request.skip(tag & 7);
      continue;
    }
    streams++;
    const stream = request.sub();
    while (stream.pos < stream.end) {
      const streamTag = stream.varint();
      if (streamTag >>> 3 !== 2 || (streamTag & 7) !== LENGTH_DELIMITED) {
        stream.skip(streamTag & 7);
        continue;
      }
      entries++;
      const entry = stream.sub();
      while (entry.pos < entry.end) {
        const entryTag = entry.varint();
        if (entryTag >>> 3 === 2 && (entryTag & 7) === LENGTH_DELIMITED) {
          const line = entry.sub();
          onLine(raw, line.pos, line.end);
        } else {
          entry.skip(entryTag & 7);
        }
      }
    }
  }
  return { streams, entries, bytes: raw.length };
}
