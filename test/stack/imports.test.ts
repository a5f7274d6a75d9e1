/**
 * The architecture as the imports draw it: which package may import which (lower floors never import higher ones),
 * no module cycle inside a package, and what the npm client bundles (@aixcl/client-logger and the @aixcl/wire under
 * it) free of what only the services need. Read from the sources' `import/export ... from "..."` statements and
 * `import("...")` calls.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

/** Each package's folder and the @aixcl packages it may import. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  "packages/wire": [],
  "packages/client-logger": ["@aixcl/wire"],
  "packages/service-runtime": ["@aixcl/wire", "@aixcl/client-logger"],
  "clients/node": ["@aixcl/wire", "@aixcl/client-logger"],
  "services/broker": ["@aixcl/wire", "@aixcl/client-logger", "@aixcl/service-runtime"],
  "services/log-consumer": ["@aixcl/wire", "@aixcl/client-logger", "@aixcl/service-runtime"],
  // The broker and the consumer in one process: above both.
  "services/bus": ["@aixcl/service-runtime", "@aixcl/broker", "@aixcl/log-consumer"],
  "packages/cli": ["@aixcl/wire", "@aixcl/client-logger", "@aixcl/service-runtime"],
  "packages/testkit": ["@aixcl/wire", "@aixcl/client-logger", "@aixcl/service-runtime"],
  "packages/bus-harness": ["@aixcl/wire", "@aixcl/client-logger", "@aixcl/service-runtime", "@aixcl/broker", "@aixcl/log-consumer", "@aixcl/testkit"],
  bench: ["@aixcl/wire", "@aixcl/client-logger", "@aixcl/service-runtime", "@aixcl/broker", "@aixcl/testkit", "@aixcl/bus-harness"],
};

/** Where each package's sources start, by the name the others import it by. */
const ENTRY = new Map(
  Object.keys(ALLOWED).map((pkg) => [(JSON.parse(readFileSync(join(root, pkg, "package.json"), "utf8")) as { name: string }).name, join(root, pkg, "src/index.ts")]),
);

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

  it("what @aixcl/client-logger pulls in, the wire included, uses none of the services' dependencies (the npm package does not carry them)", () => {
    const seen = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const m = modules.get(file);
      for (const next of m?.relative ?? []) visit(next);
      for (const spec of m?.packages ?? []) {
        packages.add(spec);
        const entry = ENTRY.get(spec);
        if (entry) visit(entry);
      }
    };
    visit(join(root, "packages/client-logger/src/index.ts"));
    // The logger may lean on the wire alone, and the wire on nothing of ours: the bundle holds these two packages.
    expect([...packages]).toEqual(["@aixcl/wire"]);
    const services = ["yaml", "prom-client"];
    const used = [...seen].flatMap((file) => (modules.get(file)?.external ?? []).filter((spec) => services.includes(spec)).map((spec) => `${shown(file)}: ${spec}`));
    expect(used).toEqual([]);
    // It must still see the logger and the wire's encoder, or this test reads nothing.
    expect([...seen].map(shown)).toEqual(expect.arrayContaining(["packages/client-logger/src/logger.ts", "packages/wire/src/encode.ts"]));
  });
});
