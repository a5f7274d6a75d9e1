import { execFile, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./components.js";
import { tempDir } from "./process.js";

const run = promisify(execFile);

export interface ScriptResult {
  status: number;
  stdout: string;
  stderr: string;
}

export interface NodeClientProject {
  /** The scratch project: outside the repository, @aixcl/logging installed from the packed tarball. */
  dir: string;
  tarball: string;
  /** Files the tarball holds, as `npm pack` listed them. */
  files: string[];
  /** Runs `node <file>` (relative to dir) in the project with only PATH, HOME and `env`; never throws on a non-zero exit. */
  node(file: string, env?: Record<string, string>, timeoutMs?: number): Promise<ScriptResult>;
}

/** The version of a package installed in the repository, so the scratch project gets the same one. */
function repoVersion(name: string): string {
  return (JSON.parse(readFileSync(`${repoRoot}node_modules/${name}/package.json`, "utf8")) as { version: string }).version;
}

const say = (message: string) => process.stderr.write(`testkit: ${message}\n`);

/**
 * What a user of @aixcl/logging gets: the package built as `npm pack` ships it (clients/node/scripts/bundle.mjs, into
 * a staging dir so the repository's dist/ is left to the tests using it), packed, and installed with `npm install
 * <tarball>` into a fresh project outside the repository together with `extra` packages: a bare name at the
 * repository's version (pino and winston by default), `name@version` as given (applications the repository does
 * not use, such as fastify). Uses the npm registry (npm's cache first).
 */
export async function installNodeClient(extra: string[] = ["pino", "winston"]): Promise<NodeClientProject> {
  const stage = tempDir("logging-pack");
  const started = Date.now();
  say("bundling @aixcl/logging");
  await run(process.execPath, [`${repoRoot}clients/node/scripts/bundle.mjs`, join(stage, "package")], { cwd: repoRoot });
  const packed = await run("npm", ["pack", join(stage, "package"), "--ignore-scripts", "--json", "--pack-destination", stage], { cwd: stage });
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  if (!info) throw new Error(`npm pack printed no result: ${packed.stdout}`);
  const tarball = join(stage, info.filename);

  const dir = tempDir("app");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "scratch-app", private: true, type: "module" }));
  say(`npm install ${info.filename} ${extra.join(" ")} into ${dir}`);
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tarball, ...extra.map((p) => (p.lastIndexOf("@") > 0 ? p : `${p}@${repoVersion(p)}`))], {
    cwd: dir,
    timeout: 300_000,
  });
  say(`installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return {
    dir,
    tarball,
    files: info.files.map((f) => f.path),
    node: (file, env = {}, timeoutMs = 60_000) =>
      new Promise((resolve) => {
        // Not the test process' environment: vitest's NODE_OPTIONS and conditions are no user's.
        const clean = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? dir, ...env };
        execFile(process.execPath, [file], { cwd: dir, env: clean, timeout: timeoutMs }, (error, stdout, stderr) => {
          const code = (error as { code?: unknown } | null)?.code;
          resolve({ status: error ? (typeof code === "number" ? code : -1) : 0, stdout, stderr });
        });
      }),
  };
}

export type PythonRequirement = { python: string; skip?: undefined } | { python?: undefined; skip: string };

/**
 * The Python of the clients/python test venv (scripts/python.sh, which reinstalls the package first when the
 * checkout changed), or `{ skip }` saying how to create it. With CI=true a missing venv throws: CI never skips.
 */
export function requirePythonClient(): PythonRequirement {
  const result = spawnSync("bash", [`${repoRoot}scripts/python.sh`, "--path"], { encoding: "utf8", timeout: 300_000 });
  if (result.status === 0) return { python: result.stdout.trim() };
  const reason = result.stderr.trim() || `scripts/python.sh --path exited ${result.status}`;
  if (process.env["CI"] === "true") throw new Error(`CI=true and the Python client's venv is not usable: ${reason}`);
  return { skip: reason };
}
