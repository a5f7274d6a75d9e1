/**
 * What runs beside the stack on a user's machine, for the Docker tier: AIXCL's own compose project (named `aixcl`,
 * with a service and a named volume), another compose project, plain `docker run` containers, a Python program in a
 * container. Each prints numbered lines tagged with the run, so LogQL finds them; the tier removes them at the end.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@aixcl/testkit";
import { chainedTracebackProgram } from "../components/traceback.js";
import { docker } from "./engine.js";

/** The base of every neighbour: Debian's slim image (in CI the stand-in of .ci/standin-images.sh). */
export const BASE_IMAGE = "debian:bookworm-slim";

/** A bash loop printing `<what> <n> <run>` every `interval` seconds, n from 0, after the lines of `first`. */
export const numbered = (what: string, run: string, interval = 1, first: string[] = []) =>
  `${first.map((l) => `echo ${JSON.stringify(l)}; `).join("")}i=0; while :; do echo "${what} $i ${run}"; i=$((i+1)); sleep ${interval}; done`;

/**
 * Lines as AIXCL's services print them (the formats of Ollama's server log, PostgreSQL's and Open WebUI's), which
 * seed 003's example queries look for. `run` tags each.
 */
export const aixclOutput = (run: string) => ({
  ollama: [`time=2026-12-07T06:00:00.000Z level=INFO source=server.go:398 msg="loading model" model=llama3.2 run=${run}`],
  postgres: [`2026-12-07 06:00:00.000 UTC [68] ERROR:  relation "chats" does not exist at character 15 run=${run}`],
  "open-webui": [`2026-12-07 06:00:00.000 | INFO | open_webui.routers.auths:signin:265 - User login successful: admin@example.com run=${run}`],
});

/**
 * A compose project of its own: services printing lines, the first with a named volume when `volume` is given.
 * `services` maps each service to its bash command; by default one service printing numbered lines.
 */
export class NeighbourProject {
  readonly dir: string;
  readonly service: string;

  constructor(
    readonly project: string,
    services: Record<string, string>,
    readonly volume?: string,
  ) {
    this.dir = join(tempDir(`neighbour-${project}`), project);
    mkdirSync(this.dir);
    this.service = Object.keys(services)[0] as string;
    const lines = [`name: ${project}`, "services:"];
    for (const [service, command] of Object.entries(services)) {
      // `$$`: compose interpolates `$`; the command's own variables must reach bash.
      lines.push(`  ${service}:`, `    image: ${BASE_IMAGE}`, `    command: ["bash", "-c", ${JSON.stringify(command.replaceAll("$", "$$"))}]`, "    init: true");
      if (volume && service === this.service) lines.push("    volumes:", `      - ${volume}:/data`);
    }
    if (volume) lines.push("volumes:", `  ${volume}: {}`);
    writeFileSync(join(this.dir, "docker-compose.yml"), `${lines.join("\n")}\n`);
  }

  private compose(args: string[]): string {
    return execFileSync("docker", ["compose", "--project-directory", this.dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
  }

  up(): void {
    this.compose(["up", "--detach"]);
  }

  /** The container's name, and whether it runs. */
  get container(): string {
    return `${this.project}-${this.service}-1`;
  }

  running(): boolean {
    const r = spawnSync("docker", ["inspect", "--format", "{{.State.Running}}", this.container], { encoding: "utf8" });
    return r.status === 0 && r.stdout.trim() === "true";
  }

  volumeExists(): boolean {
    return this.volume !== undefined && spawnSync("docker", ["volume", "inspect", `${this.project}_${this.volume}`], { stdio: "ignore" }).status === 0;
  }

  remove(): void {
    spawnSync("docker", ["compose", "--project-directory", this.dir, "down", "--volumes", "--timeout", "1"], { stdio: "ignore" });
  }
}

/** `docker run -d` of the base image with a bash command; returns the container's name. */
export function runPlain(name: string, command: string, labels: Record<string, string> = {}, image = BASE_IMAGE): string {
  const labelArgs = Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
  docker(["run", "--detach", "--init", "--name", name, ...labelArgs, image, "bash", "-c", command]);
  return name;
}

export function removeContainers(names: readonly string[]): void {
  if (names.length > 0) spawnSync("docker", ["rm", "--force", ...names], { stdio: "ignore" });
}

/** Debian's python3 on the base image, built once per engine (legacy builder: no frontend image to fetch). */
export const PYTHON_IMAGE = "aixcl-dockertier/python3:bookworm";
export function pythonImage(): string {
  if (spawnSync("docker", ["image", "inspect", PYTHON_IMAGE], { stdio: "ignore" }).status === 0) return PYTHON_IMAGE;
  const dir = tempDir("python-image");
  writeFileSync(
    join(dir, "Dockerfile"),
    `FROM ${BASE_IMAGE}\nRUN apt-get update && apt-get install -y --no-install-recommends python3-minimal && rm -rf /var/lib/apt/lists/*\n`,
  );
  const r = spawnSync("docker", ["build", "--quiet", "--tag", PYTHON_IMAGE, dir], { encoding: "utf8", env: { ...process.env, DOCKER_BUILDKIT: "0" }, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`building ${PYTHON_IMAGE} failed:\n${r.stdout}\n${r.stderr}`);
  return PYTHON_IMAGE;
}

/** The chained traceback program (test/components/traceback.ts) on stderr, then a line, then it stays up. */
export const tracebackProgram = (run: string) => `${chainedTracebackProgram(run, "stderr", `done ${run}`)}\ntime.sleep(600)`;
