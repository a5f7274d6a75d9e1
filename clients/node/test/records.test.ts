import { describe, expect, it } from "vitest";
import { pinoRecord, recordModuleKey, winstonLevel, winstonRecord } from "../src/records.js";

describe("winston levels", () => {
  // The standard names: spec/wire/levels.json (spec.test.ts).
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

describe("each record's module (one transport for a whole application)", () => {
  const pinoKeys = { messageKey: "msg", errorKey: "err", moduleKey: "module" };

  it("pinoRecord: a child logger's `module` binding becomes the record's module, not a field in extra", () => {
    expect(pinoRecord({ level: 30, msg: "paid", module: "billing", order: 7 }, pinoKeys)).toEqual({
      level: "info",
      message: "paid",
      extra: { order: 7 },
      context: { module: "billing" },
    });
  });

  it("pinoRecord: the field the application chose; a record without it has none (the logger's default applies)", () => {
    const keys = { ...pinoKeys, moduleKey: "component" };
    expect(pinoRecord({ level: 30, msg: "m", component: "Users API", module: "x" }, keys)).toMatchObject({ extra: { module: "x" }, context: { module: "Users API" } });
    expect(pinoRecord({ level: 30, msg: "m", pid: 1 }, keys)).toEqual({ level: "info", message: "m", extra: { pid: 1 }, context: {} });
  });

  it("pinoRecord: a module field that is not a non-empty string stays a field", () => {
    expect(pinoRecord({ level: 30, msg: "m", module: 42 }, pinoKeys)).toMatchObject({ extra: { module: 42 }, context: {} });
    expect(pinoRecord({ level: 30, msg: "m", module: "" }, pinoKeys)).toMatchObject({ extra: { module: "" }, context: {} });
  });

  it("without moduleKey (a transport with a fixed module) `module` stays in extra, as before", () => {
    expect(pinoRecord({ level: 30, msg: "m", module: "billing" })).toMatchObject({ extra: { module: "billing" }, context: {} });
    expect(winstonRecord({ level: "info", message: "m", module: "billing" })).toMatchObject({ extra: { module: "billing" }, context: {} });
  });

  it("winstonRecord: `logger.child({ module })` puts module on the info object; it becomes the record's module", () => {
    const info = { level: "warn", message: "slow", module: "billing", ms: 900, [Symbol.for("level")]: "warn" };
    expect(winstonRecord(info, { moduleKey: "module" })).toEqual({ level: "warning", message: "slow", extra: { ms: 900 }, context: { module: "billing" } });
  });

  it("recordModuleKey: none with a fixed module, `module` by default without one, an error when both are given", () => {
    expect(recordModuleKey({ module: "api" })).toBeUndefined();
    expect(recordModuleKey({})).toBe("module");
    expect(recordModuleKey({ moduleKey: "component" })).toBe("component");
    expect(() => recordModuleKey({ module: "api", moduleKey: "component" })).toThrow(/give "module" .* or "moduleKey" .*, not both/);
  });
});
