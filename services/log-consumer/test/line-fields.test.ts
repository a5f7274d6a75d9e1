import { describe, expect, it } from "vitest";
import { keysInText, logfmtPair, withLineFields } from "../src/line-fields.js";

describe("logfmtPair", () => {
  it.each([
    ["verify_token", " f=verify_token"],
    ["src/a-b.py:1", " f=src/a-b.py:1"],
    ["ü✓", " f=ü✓"],
    ["", " f="],
    ["a b", ' f="a b"'],
    ["a=b", ' f="a=b"'],
    ['say "hi"', ' f="say \\"hi\\""'],
    ["c:\\dir", ' f="c:\\\\dir"'],
    ["two\nlines", ' f="two\\nlines"'],
    ["bell\u0007", ' f="bell\\u0007"'],
    ["c1\u0085", ' f="c1\u0085"'],
    ["nbsp\u00a0", ' f="nbsp\u00a0"'],
  ])("%j -> %j", (value, pair) => {
    expect(logfmtPair("f", value)).toBe(pair);
  });
});

describe("withLineFields", () => {
  it("appends to a one-line message, to the first line of a longer one, and begins an empty first line", () => {
    expect(withLineFields("hello", " a=1 b=2")).toBe("hello a=1 b=2");
    expect(withLineFields("boom\n  at x\n  at y", " a=1")).toBe("boom a=1\n  at x\n  at y");
    expect(withLineFields("", " a=1")).toBe("a=1");
    expect(withLineFields("\nrest", " a=1")).toBe("a=1\nrest");
    expect(withLineFields("hello", "")).toBe("hello");
  });
});

describe("keysInText", () => {
  it("finds the name before each =, as far as it is made of label-name characters", () => {
    expect(keysInText("no pairs here")).toEqual([]);
    expect(keysInText("run=r1 blk=3 seq=9 t=1.5")).toEqual(["run", "blk", "seq", "t"]);
    expect(keysInText('a.function=x "file_path=y" == =z')).toEqual(["function", "file_path"]);
    expect(keysInText("xfunction=1")).toEqual(["xfunction"]);
  });
});
