import { describe, expect, it } from "vitest";
import type { LogEntry } from "../src/index.js";
import { decodeLogMessage, emptyLogEntry, encodeLogEntry, fitEntry, truncationMarker } from "../src/index.js";

const entry = (message: string, extra: Record<string, string> = {}): LogEntry => ({ ...emptyLogEntry(), level: "info", subsystem: "s", module: "m", topic: "logs.s.m", message, extra });
const decode = (payload: Buffer): LogEntry => {
  const r = decodeLogMessage([Buffer.from("logs.s.m"), payload]);
  if (!r.ok) throw new Error(r.reason);
  return r.entry;
};

describe("fitEntry: an entry within the bus' message size", () => {
  it("leaves an entry that fits as it is, to the byte", () => {
    const e = entry("x".repeat(1000));
    const size = encodeLogEntry(e).length;
    expect(fitEntry(e, encodeLogEntry, size)).toEqual({ payload: encodeLogEntry(e), truncated: false });
  });

  it("cuts the message of one that does not, ending it with a marker that says how long it was", () => {
    const e = entry("x".repeat(2 * 1024 * 1024));
    const fitted = fitEntry(e, encodeLogEntry, 1024 * 1024);
    expect(fitted?.truncated).toBe(true);
    expect(fitted?.payload.length).toBeLessThanOrEqual(1024 * 1024);
    expect(fitted?.payload.length).toBeGreaterThan(1024 * 1024 - 16);
    const message = decode(fitted?.payload as Buffer).message;
    expect(message.endsWith(truncationMarker(2 * 1024 * 1024))).toBe(true);
    expect(message.startsWith("xxx")).toBe(true);
  });

  it("cuts one byte over the limit too", () => {
    const e = entry("y".repeat(1000));
    const fitted = fitEntry(e, encodeLogEntry, encodeLogEntry(e).length - 1);
    expect(fitted?.truncated).toBe(true);
    expect(decode(fitted?.payload as Buffer).message).toMatch(/^y+ \[truncated by aixcl-logging from 1000 bytes\]$/);
  });

  it("never splits a character: the cut text is valid UTF-8", () => {
    const e = entry("é€😀".repeat(50_000));
    const fitted = fitEntry(e, encodeLogEntry, 64 * 1024);
    const message = decode(fitted?.payload as Buffer).message;
    expect(message).not.toContain("\uFFFD");
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(64 * 1024);
  });

  it("cuts the longest texts first, extra values as well as the message, leaving short ones alone", () => {
    const e = entry("short message", { body: "b".repeat(300_000), small: "kept", other: "o".repeat(200_000) });
    const fitted = fitEntry(e, encodeLogEntry, 100_000);
    const got = decode(fitted?.payload as Buffer);
    expect(fitted?.truncated).toBe(true);
    expect(got.message).toBe("short message");
    expect(got.extra.small).toBe("kept");
    expect(got.extra.body).toBe(truncationMarker(300_000));
    expect(got.extra.other?.endsWith(truncationMarker(200_000))).toBe(true);
  });

  it("gives up when the rest of the entry alone is too large: many short fields", () => {
    const extra = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, "v".repeat(20)]));
    expect(fitEntry(entry("m", extra), encodeLogEntry, 64 * 1024)).toBeUndefined();
  });
});
