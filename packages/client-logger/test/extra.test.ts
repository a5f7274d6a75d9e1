import { describe, expect, it } from "vitest";
import { extraText, extraTexts } from "../src/index.js";

describe("extra values as text", () => {
  it("strings as they are, everything else as JSON, BigInts as their digits, even nested", () => {
    expect(extraTexts({ s: "plain", n: 7, b: true, o: { k: [1, "ü"] }, big: 12345678901234567890n, nested: { id: 9n, none: null } })).toEqual({
      s: "plain",
      n: "7",
      b: "true",
      o: '{"k":[1,"ü"]}',
      big: "12345678901234567890",
      nested: '{"id":"9","none":null}',
    });
    expect([extraText(undefined), extraText(Symbol("s"))]).toEqual(["undefined", "Symbol(s)"]);
    // Numbers as JSON writes them, the ones it has no number for too.
    expect([-0, 1e21, 0.1 + 0.2, Number.MIN_VALUE, Number.NaN, Infinity, -Infinity, false].map(extraText)).toEqual(["0", "1e+21", "0.30000000000000004", "5e-324", "null", "null", "null", "false"]);
  });

  it("a field that is null or undefined is no field, not the text \"null\" (spec/wire/records.json)", () => {
    expect(extraTexts({ nil: null, missing: undefined, empty: "", zero: 0 })).toEqual({ empty: "", zero: "0" });
  });

  it("a value JSON cannot take becomes a placeholder saying why, instead of an exception", () => {
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    const badToJson = { toJSON: () => { throw new Error("no JSON for you\nsecond line"); } };
    const badGetter = { get field(): unknown { throw new TypeError("getter failed"); } };
    const badThrow = { toJSON: () => { throw { get message(): string { throw new Error("nor this"); } }; } };
    expect(extraText(circular)).toMatch(/^\[unserializable: Converting circular structure to JSON/);
    expect(extraText(badToJson)).toBe("[unserializable: no JSON for you]");
    expect(extraText(badGetter)).toBe("[unserializable: getter failed]");
    expect(extraText(badThrow)).toBe("[unserializable: [object Object]]");
  });

  it("a field whose own getter throws becomes the placeholder; the other fields are kept", () => {
    const extra = { ok: 1, get broken(): unknown { throw new Error("nope"); } };
    expect(extraTexts(extra)).toEqual({ ok: "1", broken: "[unserializable: nope]" });
  });
});
