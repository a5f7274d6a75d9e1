/** Protobuf wire format, read in place: what the benchmark's sinks need to find lines in a push, and no more. */

export const LENGTH_DELIMITED = 2;

/** A position in a protobuf message: reads varints, skips fields, steps into length-delimited ones. */
export class Cursor {
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

  /** Calls visit with each length-delimited field numbered `field` from here to the end, skipping the others. */
  each(field: number, visit: (sub: Cursor) => void): void {
    while (this.pos < this.end) {
      const tag = this.varint();
      if (tag >>> 3 === field && (tag & 7) === LENGTH_DELIMITED) visit(this.sub());
      else this.skip(tag & 7);
    }
  }
}
