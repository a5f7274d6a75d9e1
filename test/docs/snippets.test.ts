/**
 * The code the docs show to send an application's logs, run as written against the real broker, log consumer and
 * Loki: Python blocks in the clients/python venv, JavaScript blocks in a project outside the repository with
 * @aixcl/logging installed from `npm pack` (and pino, winston, the OpenTelemetry SDK from the registry), the raw
 * protocol's protoc command and script in a scratch directory. Each snippet must exit 0 with nothing on stderr,
 * and Loki must then hold exactly the entries it logs, under the service it names.
 *
 * Snippets use the documented endpoints; the test points them at its own components: tcp://127.0.0.1:5555 and
 * http://127.0.0.1:3100 in the text become the test broker's and Loki's, and MESSAGE_BUS_HOST/_PUB_PORT are set
 * for the clients' defaults.
 */
import { spawn } from "node:child_process";
import { readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LokiHandle, NodeClientProject, ScriptResult } from "@aixcl/testkit";
import { installNodeClient, printComponentLogsOnFailure, requireComponent, requirePythonClient, startLoki, tempDir } from "@aixcl/testkit";
import type { BusHandle } from "@aixcl/bus-harness";
import { startBus } from "@aixcl/bus-harness";
import { DOCS, fencedBlocks, root } from "./markdown.js";

interface Snippet {
  docs: string[];
  lang: "python" | "js";
  code: string;
  /** The service name Loki files its entries under. */
  service: string;
  /** Log calls in the code: the entries Loki must hold. */
  entries: number;
}

/** Where a snippet names its service: BusHandler("x", ...), subsystem: "x", "service.name": "x", topic b"logs.x.". */
const SERVICE = /BusHandler\("([a-z_]+)"|subsystem: "([a-z_]+)"|"service\.name": "([a-z_]+)"|b"logs\.([a-z_]+)\./;
const LOG_CALL = /\.(debug|info|warn|warning|error|exception|critical|emit|send_multipart)\(/g;

function snippets(): Snippet[] {
  const found = new Map<string, Snippet>();
  for (const doc of DOCS) {
    const text = readFileSync(join(root, doc), "utf8");
    for (const lang of ["python", "js"] as const) {
      for (const code of fencedBlocks(text, [lang])) {
        const known = found.get(code);
        if (known) {
          known.docs.push(doc);
          continue;
        }
        const match = SERVICE.exec(code);
        if (!match) throw new Error(`${doc}: a ${lang} snippet names no service the test can look for:\n${code}`);
        found.set(code, { docs: [doc], lang, code, service: match.slice(1).find((g) => g !== undefined) as string, entries: code.match(LOG_CALL)?.length ?? 0 });
      }
    }
  }
  return [...found.values()];
}

/** The shell commands the raw-protocol section runs before its script (protoc from grpcio-tools). */
function protocCommands(): string[] {
  return DOCS.flatMap((doc) => fencedBlocks(readFileSync(join(root, doc), "utf8"), ["bash"]))
    .flatMap((block) => block.split("\n"))
    .filter((line) => line.startsWith("python -m grpc_tools.protoc"));
}

function run(command: string, args: string[], cwd: string, env: Record<string, string>): Promise<ScriptResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? cwd, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status: status ?? -1, stdout, stderr });
    });
  });
}

const loki = requireComponent("loki");
const python = loki.skip === undefined ? requirePythonClient() : { skip: loki.skip };
if (python.skip) console.warn(`[skipped] test/docs/snippets.test.ts: ${python.skip}`);
printComponentLogsOnFailure();

describe.skipIf(python.skip !== undefined)("the docs' code for sending an application's logs, run against the real stack", () => {
  const all = snippets();
  let lokiHandle: LokiHandle;
  let bus: BusHandle;
  let project: NodeClientProject;
  let env: Record<string, string>;

  beforeAll(async () => {
    project = await installNodeClient(["pino", "winston", "@opentelemetry/api-logs", "@opentelemetry/exporter-logs-otlp-proto", "@opentelemetry/resources", "@opentelemetry/sdk-logs"]);
    lokiHandle = await startLoki();
    bus = await startBus({ lokiUrl: lokiHandle.url });
    env = { MESSAGE_BUS_HOST: "127.0.0.1", MESSAGE_BUS_PUB_PORT: bus.pubEndpoint.slice(bus.pubEndpoint.lastIndexOf(":") + 1) };
  }, 600_000);
  afterAll(async () => {
    await bus?.stop();
    await lokiHandle?.stop();
  });

  it("covers Python logging, pino, winston, OpenTelemetry and the raw protocol", () => {
    const code = all.map((s) => s.code).join("\n");
    for (const used of ["from aixcl_logging import BusHandler", "@aixcl/logging/pino", "@aixcl/logging/winston", "@opentelemetry/sdk-logs", "import zmq"]) expect(code).toContain(used);
    expect(protocCommands()).toHaveLength(1);
  });

  it.each(all.map((s) => [`${s.docs.join(", ")}: ${s.lang} logging as ${s.service}`, s] as const))("%s", async (_name, snippet) => {
    const code = snippet.code.replaceAll("tcp://127.0.0.1:5555", bus.pubEndpoint).replaceAll("http://127.0.0.1:3100", lokiHandle.url);
    let result: ScriptResult;
    if (snippet.lang === "js") {
      const file = `snippet-${snippet.service}.mjs`;
      writeFileSync(join(project.dir, file), code);
      result = await project.node(file, env);
    } else {
      const dir = tempDir("snippet");
      writeFileSync(join(dir, "snippet.py"), code);
      const bin = dirname(python.python as string);
      const pathEnv = { ...env, PATH: `${bin}:${process.env.PATH ?? ""}` };
      if (code.includes("import zmq")) {
        // Run "from the repository root", as the docs say, in a scratch dir that has the repository's packages/.
        symlinkSync(join(root, "packages"), join(dir, "packages"));
        for (const command of protocCommands()) {
          // `python` is the venv's (a shell on PATH could pick another one first).
          const [, ...args] = command.split(/\s+/);
          const generated = await run(python.python as string, args, dir, pathEnv);
          expect(generated.status, generated.stderr).toBe(0);
        }
      }
      result = await run(python.python as string, ["snippet.py"], dir, pathEnv);
    }
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe("");
    const entries = await lokiHandle.waitFor(`{service_name="${snippet.service}"}`, snippet.entries, 20_000);
    expect(entries.flatMap((s) => s.values)).toHaveLength(snippet.entries);
  });
});
