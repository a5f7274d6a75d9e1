/**
 * The architecture as the imports draw it: which package may import which (lower floors never import higher ones),
 * no module cycle inside a package, and the entry point the npm client bundles (@aixcl/shared/client) free of what
 * only the services need. Read from the sources' `import/export ... from "..."` statements and `import("...")` calls.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

/** Each package's folder and the @aixcl packages it may import. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  "packages/shared": [],
  "clients/node": ["@aixcl/shared"],
  "services/broker": ["@aixcl/shared"],
  "services/log-consumer": ["@aixcl/shared"],
  "packages/cli": ["@aixcl/shared"],
  // The one arrow left upward: the testkit starts the real services in-process (issue 24 names it).
  "packages/testkit": ["@aixcl/shared", "@aixcl/broker", "@aixcl/log-consumer"],
  bench: ["@aixcl/shared", "@aixcl/broker", "@aixcl/testkit"],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") && !path.endsWith(".d.ts") ? [path] : [];
  });
}

interface Module {
  relative: string[];
  packages: string[];
  /** npm packages other than ours, and not Node's own (`node:`). */
  external: string[];
}

function read(file: string): Module {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/gms), ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] ?? "");
  return {
    relative: specs.filter((s) => s.startsWith(".")).map((s) => resolve(dirname(file), s.replace(/\.js$/, ".ts"))),
    packages: specs.filter((s) => s.startsWith("@aixcl/")),
    external: specs.filter((s) => !s.startsWith(".") && !s.startsWith("@aixcl/") && !s.startsWith("node:")),
  };
}

const modules = new Map(Object.keys(ALLOWED).flatMap((pkg) => sources(join(root, pkg, "src")).map((f) => [f, read(f)] as const)));
const shown = (file: string) => relative(root, file);

/** Every cycle found by a depth-first walk, as the files along it. */
function cycles(): string[][] {
  const state = new Map<string, "open" | "done">();
  const found: string[][] = [];
  const walk = (file: string, path: string[]) => {
    state.set(file, "open");
    path.push(file);
    for (const next of modules.get(file)?.relative ?? []) {
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), next].map(shown));
      else if (!state.has(next)) walk(next, path);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const file of modules.keys()) if (!state.has(file)) walk(file, []);
  return found;
}

describe("imports", () => {
  it("each package imports only the packages below it", () => {
    const wrong = [...modules].flatMap(([file, m]) => {
      const pkg = Object.keys(ALLOWED).find((p) => shown(file).startsWith(`${p}/`)) ?? "";
      return m.packages.filter((spec) => !ALLOWED[pkg]?.includes(spec.split("/").slice(0, 2).join("/"))).map((spec) => `${shown(file)} imports ${spec}`);
    });
    expect(wrong).toEqual([]);
  });

  it("no two modules import each other, directly or round a longer cycle", () => {
    expect(cycles()).toEqual([]);
  });

  it("what @aixcl/shared/client pulls in uses none of the services' dependencies (the npm package does not carry them)", () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const next of modules.get(file)?.relative ?? []) visit(next);
    };
    visit(join(root, "packages/shared/src/client.ts"));
    const services = ["yaml", "prom-client"];
    const used = [...seen].flatMap((file) => (modules.get(file)?.external ?? []).filter((spec) => services.includes(spec)).map((spec) => `${shown(file)}: ${spec}`));
    expect(used).toEqual([]);
    // It must still see the logger itself, or this test reads nothing.
    expect([...seen].map(shown)).toContain("packages/shared/src/logger/logger.ts");
  });
});
