// Builds the package as `npm pack` ships it: dist/ holds index.js, pino.js and winston.js with the logger of
// @aixcl/client-logger and the wire format of @aixcl/wire bundled in (the repository's one implementation; neither
// is on any registry) and a .d.ts for each. Runs as `prepack`; in the repository, `tsc -b` writes an unbundled
// dist/ that imports those packages instead, which works there and nowhere else.
//
//   node scripts/bundle.mjs           bundle into this package's dist/ (prepack)
//   node scripts/bundle.mjs <dir>     write the whole package (package.json, README.md, CHANGELOG.md, LICENSE, dist/) to <dir>, leaving
//                                     this folder alone, so tests can pack it while others use the tsc output
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { generateDtsBundle } from "dts-bundle-generator";

const dir = fileURLToPath(new URL("..", import.meta.url));
const root = fileURLToPath(new URL("../../..", import.meta.url));
const pkg = JSON.parse(readFileSync(`${dir}package.json`, "utf8"));
const entries = ["index", "pino", "winston"];
const target = process.argv[2] ? `${resolve(process.argv[2])}/` : dir;
const log = (message) => process.stderr.write(`bundle: ${message}\n`);

// Declarations come from tsc's output for the bundled packages, so they must be built (client-logger's build
// builds the wire first, its reference).
log("tsc -b (for @aixcl/client-logger's and @aixcl/wire's declarations)");
execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, "-b", `${root}packages/client-logger`], { stdio: "inherit" });

rmSync(`${target}dist`, { recursive: true, force: true });
// tsc -b would otherwise think its own dist/ still there and never write it again.
if (target === dir) rmSync(`${dir}tsconfig.tsbuildinfo`, { force: true });
log("esbuild: JavaScript");
const result = await build({
  absWorkingDir: dir,
  entryPoints: Object.fromEntries(entries.map((e) => [e, `src/${e}.ts`])),
  outdir: `${target}dist`,
  bundle: true,
  // One shared chunk for the logger, so the transports and the main entry do not each carry a copy.
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // The workspace's sources, not its tsc output.
  conditions: ["aixcl-source"],
  external: [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)],
  metafile: true,
  logLevel: "warning",
});

// Only our own sources may end up inside: anything else must be a declared dependency.
const bundled = ["client-logger", "wire"];
const foreign = Object.keys(result.metafile.inputs).filter((input) => !input.startsWith("src/") && !bundled.some((p) => input.startsWith(`../../packages/${p}/src/`)));
if (foreign.length > 0) throw new Error(`bundled files that are neither ours nor declared dependencies: ${foreign.join(", ")}`);
for (const p of bundled) {
  const modules = Object.keys(result.metafile.inputs).filter((input) => input.startsWith(`../../packages/${p}/src/`));
  log(`bundled ${modules.length} modules of @aixcl/${p}: ${modules.map((m) => relative(`../../packages/${p}/src`, m)).join(", ")}`);
}

log("dts-bundle-generator: declarations");
const declarations = generateDtsBundle(
  entries.map((e) => ({ filePath: `${dir}src/${e}.ts`, libraries: { inlinedLibraries: bundled.map((p) => `@aixcl/${p}`) }, output: { noBanner: true, exportReferencedTypes: false } })),
  { preferredConfigPath: `${dir}tsconfig.json` },
);
entries.forEach((e, i) => writeFileSync(`${target}dist/${e}.d.ts`, declarations[i]));
if (target !== dir) {
  mkdirSync(target, { recursive: true });
  for (const file of ["package.json", "README.md", "CHANGELOG.md"]) copyFileSync(`${dir}${file}`, `${target}${file}`);
}
// The repository's licence, which npm ships only from the package's own folder (git ignores the copy there).
copyFileSync(`${root}LICENSE`, `${target}LICENSE`);
log(`${target}dist/: ${entries.map((e) => `${e}.js, ${e}.d.ts`).join(", ")}`);
