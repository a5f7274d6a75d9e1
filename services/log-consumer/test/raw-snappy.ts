/**
 * An independent decoder for snappy's raw block format (github.com/google/snappy format_description.txt), used to
 * prove the push body is raw blocks, as Loki expects, and not the framing format, which starts with a
 * stream identifier chunk (0xff 0x06 0x00 0x00 "sNaPpY") that this decoder refuses.
 */
export function decodeRawSnappy(input: Uint8Array): Buffer {
  let pos = 0;
  const varint = () => {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = input[pos++];
      if (byte === undefined) throw new Error("truncated length");
      result += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return result;
    }
    throw new Error("length varint too long");
  };
  const littleEndian = (bytes: number) => {
    let n = 0;
    for (let i = 0; i < bytes; i++) n += (input[pos++] ?? Number.NaN) * 2 ** (8 * i);
    if (Number.isNaN(n)) throw new Error("truncated element");
    return n;
  };
  const length = varint();
  const out = Buffer.alloc(length);
  let written = 0;
  while (pos < input.length) {
    const tag = input[pos++] as number;
    const type = tag & 3;
    if (type === 0) {
      let len = tag >> 2;
      if (len >= 60) len = littleEndian(len - 59);
      len += 1;
      if (pos + len > input.length || written + len > length) throw new Error("literal out of bounds");
      out.set(input.subarray(pos, pos + len), written);
      pos += len;
      written += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (type === 1) {
      len = ((tag >> 2) & 7) + 4;
      offset = ((tag >> 5) << 8) | littleEndian(1);
    } else {
      len = (tag >> 2) + 1;
      offset = littleEndian(type === 2 ? 2 : 4);
    }
    if (offset === 0 || offset > written || written + len > length) throw new Error("copy out of bounds");
    for (let i = 0; i < len; i++, written++) out[written] = out[written - offset] as number;
  }
  if (written !== length) throw new Error(`decoded ${written} bytes, header said ${length}`);
  return out;
}
