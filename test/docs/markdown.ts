import { fileURLToPath } from "node:url";

/** The repository root. */
export const root = fileURLToPath(new URL("../../", import.meta.url));

/** The user documentation the docs tests check. */
export const DOCS = ["LOGGING.md", "QUICKSTART_LOGGING.md"];

/** The contents of the fenced code blocks in `text` whose language is one of `langs`. */
export function fencedBlocks(text: string, langs: string[]): string[] {
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter((m) => langs.includes(m[1] as string)).map((m) => m[2] as string);
}
