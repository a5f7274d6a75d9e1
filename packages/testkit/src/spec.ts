import { readFileSync } from "node:fs";
import { repoRoot } from "./components.js";

/** A spec/wire file, as both languages' test suites read it (spec/wire/README.md). */
export function readSpec<T>(file: string): T {
  return JSON.parse(readFileSync(`${repoRoot}spec/wire/${file}`, "utf8")) as T;
}

/** A text in a spec file: a string, or parts that are strings or one string repeated (for long texts). */
export type SpecText = string | (string | { repeat: string; times: number })[];

export function specText(text: SpecText): string {
  return typeof text === "string" ? text : text.map((part) => (typeof part === "string" ? part : part.repeat.repeat(part.times))).join("");
}
