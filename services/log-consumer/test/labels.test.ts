import { describe, expect, it } from "vitest";
import {
  formatLabels,
  labelNameProblem,
  quoteLabelValue,
  readLabelSet,
  readQuoted,
  sanitizeLabelName,
  toWellFormed,
} from "../src/labels.js";

/** Parses a whole label-set text, failing the test when it is not exactly one label set. */
function parseAll(text: string): Map<string, string> {
  const set = readLabelSet(text, 0);
  expect(set, `not a label set: ${text}`).toBeDefined();
  expect(set?.end).toBe(text.length);
  return set?.labels ?? new Map();
}

describe("quoteLabelValue (Go strconv.Quote compatible)", () => {
  it.each([
    ["plain", '"plain"'],
    ['a"b', '"a\\"b"'],
    ["back\\slash", '"back\\\\slash"'],
    ["line\nbreak\r\ttab", '"line\\nbreak\\r\\ttab"'],
    ["nul\u0000bell\u0007del\u007f", '"nul\\x00bell\\adel\\x7f"'],
    ["nbsp\u00a0ls\u2028zw\u200bbom\ufeff", '"nbsp\\u00a0ls\\u2028zw\\u200bbom\\ufeff"'],
    ["c1\u0085", '"c1\\u0085"'],
    ["é ✓ 日本 😀", '"é ✓ 日本 😀"'],
    ["private\u{F0000}", '"private\\U000f0000"'],
  ])("quotes %j as %s", (value, quoted) => {
    expect(quoteLabelValue(value)).toBe(quoted);
  });

  it("turns unpaired surrogates (text that was not valid UTF-8) into U+FFFD", () => {
    expect(quoteLabelValue("a\ud800b\udc00c")).toBe('"a\ufffdb\ufffdc"');
    expect(toWellFormed("ok😀")).toBe("ok😀");
    expect(Buffer.from(toWellFormed("\udfff\ud83d"), "utf8").toString("utf8")).toBe("\ufffd\ufffd");
  });
});

describe("formatLabels", () => {
  it("sorts by name and joins like Prometheus' labels.String()", () => {
    expect(formatLabels([["service", "api"], ["level", "info"], ["env", "dev"]])).toBe('{env="dev", level="info", service="api"}');
  });

  it.each([
    ['api", level="critical'],
    ['api"} {service="evil'],
    ["api\\"],
    ["api\\\", x=\"y"],
    ["a\nlevel=\"critical\""],
    ["}, {"],
    ["\u0000\u0001\u001f"],
    ["\ud800 lone surrogate"],
  ])("value %j cannot add, change or break labels", (value) => {
    const text = formatLabels([["service", value], ["level", "info"]]);
    const parsed = parseAll(text);
    expect([...parsed.keys()]).toEqual(["level", "service"]);
    expect(parsed.get("level")).toBe("info");
    expect(parsed.get("service")).toBe(toWellFormed(value));
    expect(text).not.toContain("\n");
  });

  it("round-trips arbitrary values through the parser", () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let n = 0; n < 500; n++) {
      const chars = Array.from({ length: 1 + Math.floor(random() * 20) }, () =>
        String.fromCodePoint(random() < 0.5 ? Math.floor(random() * 128) : Math.floor(random() * 0x2ffff)),
      );
      const value = chars.join("");
      expect(parseAll(formatLabels([["v", value]])).get("v")).toBe(toWellFormed(value));
    }
  });
});

describe("readQuoted", () => {
  it("decodes every Go escape", () => {
    expect(readQuoted('"\\a\\b\\f\\n\\r\\t\\v\\\\\\"\\x41\\101\\u00e9\\U0001F600"', 0)?.value).toBe("\u0007\b\f\n\r\t\u000b\\\"AAé😀");
  });

  it("refuses unterminated and malformed strings", () => {
    expect(readQuoted('"open', 0)).toBeUndefined();
    expect(readQuoted('"bad \\q escape"', 0)).toBeUndefined();
    expect(readQuoted('"surrogate \\ud800"', 0)).toBeUndefined();
    expect(readQuoted("no quote", 0)).toBeUndefined();
  });
});

describe("label names", () => {
  it("accepts Prometheus names and refuses everything else", () => {
    expect(labelNameProblem("host")).toBeUndefined();
    expect(labelNameProblem("_x9")).toBeUndefined();
    for (const bad of ["", "9x", "a-b", "a.b", "a b", 'a"', "é", "__name__"]) expect(labelNameProblem(bad), bad).toBeDefined();
  });

  it("sanitizes metadata keys into valid names", () => {
    expect(sanitizeLabelName("request-id")).toBe("request_id");
    expect(sanitizeLabelName("9lives")).toBe("_9lives");
    expect(sanitizeLabelName("")).toBe("_");
    expect(sanitizeLabelName('x"} evil')).toBe("x___evil");
    for (const raw of ["a.b", "ü", "x y", "0", "日本"]) expect(sanitizeLabelName(raw)).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
  });
});
