import { describe, expect, it } from "vitest";
import { pinoLevel, pinoRecord, winstonLevel, winstonRecord } from "../src/records.js";

describe("pino levels", () => {
  it.each([
    [10, "debug"],
    [20, "debug"],
    [30, "info"],
    [35, "info"],
    [40, "warning"],
    [50, "error"],
    [59, "error"],
    [60, "critical"],
    [5, "debug"],
  ])("%i -> %s (custom levels: the nearest standard level below)", (value, level) => {
    expect(pinoLevel(value)).toBe(level);
  });
});

describe("winston levels", () => {
  it.each([
    ["error", "error"],
    ["warn", "warning"],
    ["info", "info"],
    ["http", "info"],
    ["verbose", "debug"],
    ["debug", "debug"],
    ["silly", "debug"],
    ["emerg", "critical"],
    ["alert", "critical"],
    ["crit", "critical"],
    ["warning", "warning"],
    ["notice", "info"],
  ])("%s -> %s", (name, level) => {
    expect(winstonLevel(name)).toBe(level);
  });

  it("maps a custom level to the nearest standard level at or below it in severity", () => {
    const levels = { fatal: 0, error: 1, audit: 2, warn: 3, info: 4, trace: 9 };
    expect(winstonLevel("audit", levels)).toBe("warning");
    expect(winstonLevel("fatal", levels)).toBe("error");
    expect(winstonLevel("trace", levels)).toBe("debug");
    expect(winstonLevel("nobody-knows", levels)).toBe("unknown");
  });
});

describe("pinoRecord", () => {
  it("takes level, time and message from pino, the rest into extra, trace/session/user ids into their fields", () => {
    const record = pinoRecord({
      level: 30,
      time: 1_763_700_000_123,
      msg: "user signed in",
      pid: 42,
      hostname: "box",
      user: { id: 7 },
      trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
      span_id: "00f067aa0ba902b7",
      session_id: "sess-9",
      user_uuid: "5b0c3f0e",
    });
    expect(record).toEqual({
      level: "info",
      message: "user signed in",
      extra: { pid: 42, hostname: "box", user: { id: 7 }, span_id: "00f067aa0ba902b7" },
      context: { timestampNs: 1_763_700_000_123_000_000n, traceId: "4bf92f3577b34da6a3ce929d0e0e4736", sessionId: "sess-9", userUuid: "5b0c3f0e" },
    });
  });

  it("puts an error's stack after the message, and uses the keys pino was configured with", () => {
    const stack = "Error: disk full\n    at write (file.js:1:1)";
    expect(pinoRecord({ level: 50, time: 1, message: "save failed", error: { type: "Error", message: "disk full", stack } }, { messageKey: "message", errorKey: "error" })).toMatchObject({
      level: "error",
      message: `save failed\n${stack}`,
      extra: {},
    });
    // pino.error(err) alone: msg is the error's message, which the stack already starts with.
    expect(pinoRecord({ level: 50, msg: "disk full", err: { message: "disk full", stack } }).message).toBe(stack);
  });

  it("accepts an ISO time and a non-string message; a record without time gets none (the logger stamps it)", () => {
    expect(pinoRecord({ level: 30, time: "2026-11-25T10:00:00.5Z", msg: 42 })).toMatchObject({ message: "42", context: { timestampNs: 1_795_600_800_500_000_000n } });
    expect(pinoRecord({ level: 30, msg: "x" }).context.timestampNs).toBeUndefined();
  });
});

describe("winstonRecord", () => {
  it("maps level (the uncoloured one), message, timestamp and stack; the rest into extra", () => {
    const info = { level: "\u001b[31merror\u001b[39m", message: "save failed", timestamp: "2026-11-25T10:00:00.000Z", stack: "Error: disk full\n    at x", attempt: 3, trace_id: "abc", [Symbol.for("level")]: "error" };
    expect(winstonRecord(info)).toEqual({
      level: "error",
      message: "save failed\nError: disk full\n    at x",
      extra: { attempt: 3 },
      context: { timestampNs: 1_795_600_800_000_000_000n, traceId: "abc" },
    });
  });

  it("keeps a timestamp it cannot read as a field", () => {
    expect(winstonRecord({ level: "info", message: "m", timestamp: "yesterday" })).toMatchObject({ extra: { timestamp: "yesterday" }, context: {} });
  });
});

describe("records with values JSON cannot take", () => {
  it("winstonRecord: a message that is not JSON and a field whose getter throws become placeholders, not exceptions", () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const info = {
      level: "info",
      message: circular,
      n: 5n,
      get broken(): unknown {
        throw new Error("getter failed");
      },
    };
    expect(winstonRecord(info)).toMatchObject({
      message: expect.stringMatching(/^\[unserializable: Converting circular structure to JSON/),
      extra: { n: 5n, broken: "[unserializable: getter failed]" },
    });
    expect(winstonRecord({ level: "info", message: 7n }).message).toBe("7");
  });
});
