import type { SpoolCodec, SpoolItem } from "@aixcl/service-runtime";
import type { LaneName } from "./lanes.js";
import { LANES } from "./lanes.js";

/**
 * Held messages, packed into one buffer in arrival order: per message a u32 frame count, then per frame a u32
 * length and the bytes (little-endian). Packed, a held message costs its own bytes plus 12, instead of the two
 * Buffers and the array zeromq.js gave it; and a chunk is what the disk backlog writes as one file.
 */
export interface Chunk extends SpoolItem {
  readonly lane: LaneName;
  /** Messages in it. */
  readonly entries: number;
  /** data.length: what the memory bound counts. */
  readonly bytes: number;
  /** When its first message was held. */
  readonly createdAtMs: number;
  readonly data: Buffer;
}

/** Packed size of a message. */
export function packedSize(frames: readonly Uint8Array[]): number {
  let size = 4;
  for (const frame of frames) size += 4 + frame.length;
  return size;
}

/**
 * The chunk being filled for one lane; it can be read from while it fills. Its buffer is allocated at the size
 * chunks are sealed at, plus room for the message that crosses it, so a busy lane fills one buffer per chunk
 * instead of growing through many (which left the broker's RSS at twice what it held).
 */
export class OpenChunk {
  private buffer: Buffer;
  length = 0;
  entries = 0;
  createdAtMs = 0;

  constructor(private readonly capacity: number) {
    this.buffer = Buffer.allocUnsafe(capacity);
  }

  /** The message at `offset` (views into the buffer: valid until the next append). */
  read(offset: number): { frames: Buffer[]; next: number } {
    return readMessage(this.buffer, offset);
  }

  append(frames: readonly Uint8Array[], nowMs: number): void {
    const needed = packedSize(frames);
    if (this.length + needed > this.buffer.length) {
      let size = this.buffer.length * 2;
      while (size < this.length + needed) size *= 2;
      const grown = Buffer.allocUnsafe(size);
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    if (this.entries === 0) this.createdAtMs = nowMs;
    let at = this.buffer.writeUInt32LE(frames.length, this.length);
    for (const frame of frames) {
      at = this.buffer.writeUInt32LE(frame.length, at);
      this.buffer.set(frame, at);
      at += frame.length;
    }
    this.length = at;
    this.entries++;
  }

  /** Hands over what was appended from `offset` on (`skipped` messages lie before it) as a chunk and starts afresh. */
  seal(lane: LaneName, offset = 0, skipped = 0): Chunk {
    const used = this.buffer.subarray(offset, this.length);
    // A chunk sealed early (by time, or a slow lane) keeps an exact copy rather than pinning the whole buffer.
    const data = this.buffer.length > used.length * 1.5 ? Buffer.from(used) : used;
    const chunk: Chunk = { lane, entries: this.entries - skipped, bytes: data.length, createdAtMs: this.createdAtMs, data };
    this.clear();
    return chunk;
  }

  /** Forgets what was appended (it was all delivered). */
  clear(): void {
    // ZeroMQ sends larger frames straight from our memory, maybe after send() returned: never write over what was appended.
    if (this.length > 0) this.buffer = Buffer.allocUnsafe(this.capacity);
    this.length = 0;
    this.entries = 0;
  }
}

/** The message at `offset` of `data` (views into it, no copy) and where the next one starts. */
export function readMessage(data: Buffer, offset: number): { frames: Buffer[]; next: number } {
  const count = data.readUInt32LE(offset);
  let at = offset + 4;
  const frames: Buffer[] = new Array<Buffer>(count);
  for (let i = 0; i < count; i++) {
    const length = data.readUInt32LE(at);
    at += 4;
    frames[i] = data.subarray(at, at + length);
    at += length;
  }
  return { frames, next: at };
}

/** What is left of `chunk` from `offset` on, holding `entries` messages. */
export function restOf(chunk: Chunk, offset: number, entries: number): Chunk {
  const data = chunk.data.subarray(offset);
  return { lane: chunk.lane, entries, bytes: data.length, createdAtMs: chunk.createdAtMs, data };
}

interface Header {
  lane: LaneName;
  entries: number;
  createdAtMs: number;
}

/** A chunk as a spool file: the counts in the JSON header, the packed messages as the body. */
export const chunkCodec: SpoolCodec<Chunk> = {
  encode: (chunk) => ({ header: { lane: chunk.lane, entries: chunk.entries, createdAtMs: chunk.createdAtMs } satisfies Header, body: chunk.data }),
  decode(raw, body) {
    const header = raw as Header;
    if (!LANES.includes(header.lane)) throw new Error(`not a backlog chunk (lane ${JSON.stringify(header.lane)})`);
    return { lane: header.lane, entries: header.entries, bytes: body.length, createdAtMs: header.createdAtMs, data: body };
  },
};
