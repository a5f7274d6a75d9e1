import { crc32 } from "node:zlib";

/**
 * One spool file: magic "AXSP1\n", u32 header length, u32 body length, u32 CRC32 of header and body
 * (little-endian), then the header (JSON) and the body. The CRC makes a torn or damaged file detectable.
 */
const MAGIC = Buffer.from("AXSP1\n");
const PREFIX_BYTES = MAGIC.length + 12;

export interface SpoolRecord {
  /** JSON: what the owner needs to rebuild the item besides its body. */
  header: unknown;
  body: Uint8Array;
}

/** The parts of a spool file, to be written with one writev. */
export function encodeSpoolRecord(record: SpoolRecord): Buffer[] {
  const headerBytes = Buffer.from(JSON.stringify(record.header));
  const body = record.body;
  const prefix = Buffer.alloc(PREFIX_BYTES);
  MAGIC.copy(prefix);
  prefix.writeUInt32LE(headerBytes.length, MAGIC.length);
  prefix.writeUInt32LE(body.byteLength, MAGIC.length + 4);
  prefix.writeUInt32LE(crc32(body, crc32(headerBytes)), MAGIC.length + 8);
  return [prefix, headerBytes, Buffer.from(body.buffer, body.byteOffset, body.byteLength)];
}

/** The header and body stored in a spool file; throws with the reason when the file is damaged. */
export function decodeSpoolRecord(data: Buffer): { header: unknown; body: Buffer } {
  if (data.length < PREFIX_BYTES || !data.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error("not a spool file");
  const headerLength = data.readUInt32LE(MAGIC.length);
  const bodyLength = data.readUInt32LE(MAGIC.length + 4);
  if (PREFIX_BYTES + headerLength + bodyLength !== data.length) throw new Error(`truncated: ${data.length} bytes, expected ${PREFIX_BYTES + headerLength + bodyLength}`);
  const headerBytes = data.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength);
  const body = data.subarray(PREFIX_BYTES + headerLength);
  if (crc32(body, crc32(headerBytes)) !== data.readUInt32LE(MAGIC.length + 8)) throw new Error("checksum mismatch");
  return { header: JSON.parse(headerBytes.toString("utf8")) as unknown, body };
}
