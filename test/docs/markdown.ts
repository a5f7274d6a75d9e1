import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const root = fileURLToPath(new URL("../../", import.meta.url));

/** The user documentation the docs tests check. */
export const DOCS = ["LOGGING.md", "QUICKSTART_LOGGING.md"];

/** The contents of the fenced code blocks in `text` whose language is one of `langs`. */
export function fencedBlocks(text: string, langs: string[]): string[] {
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter((m) => langs.includes(m[1] as string)).map((m) => m[2] as string);
}

/** Marks the LogQL block of LOGGING.md that holds seed 003's example queries (AIXCL's own). */
export const SEED_QUERIES_MARK = "<!-- seed 003's example queries -->";

/** Seed 003's example queries as LOGGING.md shows them: each `# title` line and the query after it. */
export function seedQueries(): { title: string; logql: string }[] {
  const text = readFileSync(join(root, "LOGGING.md"), "utf8");
  const at = text.indexOf(SEED_QUERIES_MARK);
  if (at < 0) throw new Error(`LOGGING.md has no ${SEED_QUERIES_MARK}`);
  const block = fencedBlocks(text.slice(at), ["logql"])[0] ?? "";
  const lines = block.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return lines.flatMap((line, i) => (line.startsWith("#") ? [{ title: line.replace(/^#\s*/, ""), logql: lines[i + 1] ?? "" }] : []));
}
