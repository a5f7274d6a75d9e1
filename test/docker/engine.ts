/** The Docker engine as the Docker tier inspects it and injects faults into it: the docker CLI, nothing else. */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** The logging stack's compose project (`name:` in docker-compose.yml); `aixcl` is AIXCL's own. */
export const PROJECT = "aixcl-logging";

export function docker(args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 }).trim();
}

/** Why the Docker tier cannot run here, or undefined when an engine answers and Compose v2 works. */
export function engineProblem(): string | undefined {
  const info = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8" });
  if (info.error) return `no docker command (${info.error.message})`;
  if (info.status !== 0) return `no Docker engine answers (${info.stderr.trim().split("\n")[0]})`;
  const compose = spawnSync("docker", ["compose", "version", "--short"], { encoding: "utf8" });
  if (compose.status !== 0) return `Docker Compose v2 is missing (${compose.stderr.trim().split("\n")[0]})`;
  console.info(`[docker tier] engine ${info.stdout.trim()}, compose ${compose.stdout.trim()}`);
  return undefined;
}

/**
 * Why the stack's upstream images cannot be had here, or undefined: each is present, or this engine pulls it. An
 * engine with no registry (or behind a proxy it cannot pass) would otherwise fail in compose's pull, image by image.
 */
export function imagesProblem(repoRoot: string): string | undefined {
  const config = spawnSync("docker", ["compose", "--project-directory", repoRoot, "--file", `${repoRoot}/docker-compose.yml`, "--profile", "bus", "config", "--images"], {
    encoding: "utf8",
    env: { ...process.env, GRAFANA_ADMIN_PASSWORD: "unused-by-the-image-check" },
  });
  if (config.status !== 0) return `docker compose config failed: ${config.stderr.trim().split("\n")[0]}`;
  // Our images are built FROM the Node image their Dockerfiles name.
  const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(`${repoRoot}/services/log-consumer/Dockerfile`, "utf8"))?.[1];
  const upstream = [...config.stdout.split("\n").filter((i) => i !== "" && !i.startsWith("aixcl-")), ...(base ? [base] : [])];
  for (const image of upstream) {
    if (spawnSync("docker", ["image", "inspect", image], { stdio: "ignore" }).status === 0) continue;
    const pull = spawnSync("docker", ["pull", "--quiet", image], { encoding: "utf8", timeout: 120_000 });
    if (pull.status !== 0) {
      const why = pull.error ? `no answer within 120 s` : pull.stderr.trim().split("\n").at(-1);
      return `this engine cannot pull ${image} (${why}): pull the stack's images where a registry is reachable (docker compose pull), or, to reproduce CI, build local stand-ins: AIXCL_STANDIN_IMAGES=1 bash .ci/standin-images.sh`;
    }
  }
  return undefined;
}

/** Containers of the stack's project (any state), by name. */
export function projectContainers(): string[] {
  const out = docker(["ps", "--all", "--filter", `label=com.docker.compose.project=${PROJECT}`, "--format", "{{.Names}}"]);
  return out === "" ? [] : out.split("\n");
}

export function projectVolumes(): string[] {
  const out = docker(["volume", "ls", "--quiet", "--filter", `label=com.docker.compose.project=${PROJECT}`]);
  return out === "" ? [] : out.split("\n");
}

export const container = (service: string) => `${PROJECT}-${service}-1`;

/** A container's own output, stdout and stderr (Loki logs to stderr), its last 5,000 lines. */
export function containerLog(service: string): string {
  const r = spawnSync("docker", ["logs", "--tail", "5000", container(service)], { encoding: "utf8", maxBuffer: 64 << 20 });
  return `${r.stdout}${r.stderr}`;
}

export function health(service: string): string {
  return docker(["inspect", "--format", "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}", container(service)]);
}

/**
 * For a failure message: each of `services` that is not running and healthy, with its state, restarts, its health
 * check's last outputs and its last log lines, so a wait that timed out says which service held it and why.
 */
export function unhealthyReport(services: readonly string[]): string {
  return services
    .map((service) => {
      const state = spawnSync("docker", ["inspect", "--format", "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}} restarts {{.RestartCount}}", container(service)], { encoding: "utf8" });
      if (state.status === 0 && state.stdout.startsWith("running/healthy ")) return "";
      const checks = spawnSync("docker", ["inspect", "--format", "{{if .State.Health}}{{range .State.Health.Log}}exit {{.ExitCode}}: {{.Output}}{{end}}{{end}}", container(service)], { encoding: "utf8" });
      const lines = containerLog(service).trimEnd().split("\n").slice(-20).join("\n");
      return `${service}: ${state.stdout.trim() || state.stderr.trim()}\n  health checks: ${checks.stdout.trim().slice(-1500)}\n  last log lines:\n${lines}`;
    })
    .filter((report) => report !== "")
    .join("\n");
}

export function restartCount(service: string): number {
  return Number(docker(["inspect", "--format", "{{.RestartCount}}", container(service)]));
}

/** The host PID of a service's node process; PID 1 of its container is the init compose's `init: true` adds. */
export function servicePid(service: string): number | undefined {
  const rows = docker(["top", container(service), "-eo", "pid,args"]).split("\n").slice(1);
  const row = rows.find((r) => /\bnode\b.*dist\/main\.js/.test(r));
  return row === undefined ? undefined : Number(row.trim().split(/\s+/)[0]);
}

/** SIGKILLs a service's node process inside its container, from the host; returns the PID killed. */
export function killServiceProcess(service: string): number {
  const pid = servicePid(service);
  if (pid === undefined) throw new Error(`no node process in ${container(service)}`);
  process.kill(pid, "SIGKILL");
  return pid;
}

/**
 * Why a Docker-tier file cannot run here (no engine, the stack's project already exists, the stack's images cannot
 * be had), or undefined. In CI (CI=true) a reason is an error: there the tier must run.
 */
export function tierProblem(tier: string, repoRoot: string): string | undefined {
  const fail = (message: string, inCi: string, here = message): string => {
    if (process.env.CI === "true") throw new Error(`Docker tier (${tier}): ${message}${inCi}`);
    return here;
  };
  const problem = engineProblem();
  if (problem) return fail(problem, "; in CI the engine must be there (.ci/run starts it: scripts/docker-engine.sh)");
  const running = projectContainers();
  if (running.length > 0) {
    const message = `the logging stack's project ${PROJECT} already exists here (${running.join(", ")}); this tier would replace it`;
    return fail(message, "", `${message}: remove it with ./aixcl clean first`);
  }
  const images = imagesProblem(repoRoot);
  if (images) return fail(images, "; in CI .ci/standin-images.sh builds them");
  return undefined;
}
