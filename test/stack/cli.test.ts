/**
 * ./aixcl's argument handling and messages. No Docker engine is involved: a recording fake `docker`
 * (test/stack/fake-docker/docker) comes first on PATH, logs every invocation and answers from FAKE_DOCKER_*
 * variables. What Docker itself does with those invocations is covered by the compose tests, the
 * healthcheck tests against the real components, and the TypeScript commands' tests against real Loki.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { tempDir } from "@aixcl/testkit";
import { composeTags } from "./compose-rules.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const fakeDockerDir = join(root, "test/stack/fake-docker");
const ALL_HEALTHY = ["loki", "promtail", "prometheus", "alertmanager", "grafana", "broker", "log-consumer"].map((s) => `${s} running healthy`).join("\n");

interface Result {
  status: number;
  stdout: string;
  stderr: string;
  /** docker invocations, each as its argument list. */
  calls: string[][];
}

let dir: string;

beforeEach(() => {
  dir = tempDir("cli");
  for (const f of ["aixcl", ".env.example", "docker-compose.yml", "docker-compose.ha.yml"]) copyFileSync(join(root, f), join(dir, f));
});

function aixcl(args: string[], env: Record<string, string> = {}, options: { input?: string; path?: string; cwd?: string } = {}): Result {
  const log = join(dir, "docker-calls.log");
  writeFileSync(log, "");
  const r = spawnSync("bash", [join(dir, "aixcl"), ...args], {
    cwd: options.cwd ?? dir,
    input: options.input ?? "",
    encoding: "utf8",
    timeout: 20_000,
    env: {
      PATH: options.path ?? `${fakeDockerDir}:${process.env.PATH}`,
      HOME: dir,
      FAKE_DOCKER_LOG: log,
      AIXCL_START_TIMEOUT: "4",
      ...env,
    },
  });
  const calls = readFileSync(log, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split("\x1f"));
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, calls };
}

/** The profiles ./aixcl passes for each layout of the bus (AIXCL_BUS_PROCESSES, AIXCL_BUS_HOST). */
const TWO_PROCESSES = ["--profile", "bus", "--profile", "consumer"];
const ONE_PROCESS = ["--profile", "bus-one"];
const EXTERNAL_BUS = ["--profile", "consumer"];

const upCall = (r: Result) => composeCalls(r).find((c) => c[0] === "up");
/** The name ./aixcl gave its one-off cli container (`compose run --name`). */
const oneOff = (r: Result) => {
  const run = composeCalls(r).find((c) => c[0] === "run") ?? [];
  return run[run.indexOf("--name") + 1] ?? "";
};

/**
 * The compose subcommand and its arguments of each `docker compose` call, after the global options: the project
 * aixcl-logging and the profiles of the bus' layout: by default the stack's own broker and the log consumer.
 */
function composeCalls(r: Result, profiles: string[] = TWO_PROCESSES): string[][] {
  const global = ["compose", "--project-name", "aixcl-logging", "--project-directory", dir, "--file", join(dir, "docker-compose.yml"), ...profiles];
  return r.calls
    .filter((c) => c[0] === "compose" && c[1] === "--project-name")
    .map((c) => {
      expect(c.slice(0, global.length)).toEqual(global);
      return c.slice(global.length);
    });
}

const started = () => aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY });

describe("keys", () => {
  it("makes ./keys (mode 700, owned by the services' uid) and runs the keys command in our image as that uid", () => {
    const r = aixcl(["keys", "my-app"]);
    expect(r.status).toBe(0);
    expect(statSync(join(dir, "keys")).mode & 0o777).toBe(0o700);
    // Run as root (CI is), the folder must still be the services' (uid 1000), or they cannot write or read it.
    expect(statSync(join(dir, "keys")).uid).toBe(process.getuid?.() === 0 ? 1000 : process.getuid?.());
    const calls = composeCalls(r);
    expect(calls).toContainEqual(["build", "log-consumer"]);
    const runCall = calls.find((c) => c[0] === "run");
    // The services' uid: the user's own, except root's, which becomes the images' node user.
    const own = (id: number | undefined) => String(id === undefined || id === 0 ? 1000 : id);
    const [uid, gid] = [own(process.getuid?.()), own(process.getgid?.())];
    expect(runCall).toEqual(["run", "--rm", "--no-deps", "-T", "--user", `${uid}:${gid}`, "--volume", `${join(dir, "keys")}:/keys-rw`, "cli", "keys", "--dir", "/keys-rw", "--show-dir", "keys", "my-app"]);
    // The folders the containers mount exist before compose runs (Docker would make missing ones, as root).
    for (const d of ["broker", "clients/log-consumer", "clients/cli"]) expect(statSync(join(dir, "keys", d)).mode & 0o777).toBe(0o700);
    expect(calls.some((c) => c[0] === "restart")).toBe(false);
  });

  const withEnv = () => writeFileSync(join(dir, ".env"), "GRAFANA_ADMIN_PASSWORD=Zq8s7d6f5g4h3j2k\n", { mode: 0o600 });

  it("revoke restarts a running broker, so a connected client is cut off now; register and new clients reload it (SIGHUP); list does neither", () => {
    withEnv();
    // Keys already in use: the broker runs CURVE.
    mkdirSync(join(dir, "keys", "broker"), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, "keys", "broker", "broker.secret"), "s", { mode: 0o600 });
    const running = { FAKE_DOCKER_RUNNING: "loki\nbroker", FAKE_DOCKER_PS: "broker running healthy" };
    const reloads = (r: ReturnType<typeof aixcl>) => composeCalls(r).filter((c) => c[0] === "kill");
    const restarts = (r: ReturnType<typeof aixcl>) => composeCalls(r).filter((c) => c[0] === "restart");
    const revoke = aixcl(["keys", "revoke", "my-app"], running);
    expect(revoke.status).toBe(0);
    const calls = composeCalls(revoke);
    expect(calls.find((c) => c[0] === "run")?.slice(-2)).toEqual(["revoke", "my-app"]);
    expect(calls.findIndex((c) => c[0] === "restart" && c[1] === "broker")).toBeGreaterThan(calls.findIndex((c) => c[0] === "run"));
    expect(reloads(revoke)).toEqual([]);
    expect(revoke.stderr).toContain("Restarting the broker so that it cuts off the revoked client now.");

    const key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    writeFileSync(join(dir, "laptop.pub"), `${key}\n`);
    for (const args of [["keys", "register", "laptop", join(dir, "laptop.pub")], ["keys", "new-app"]]) {
      const r = aixcl(args, running);
      expect(r.status, r.stderr).toBe(0);
      expect(reloads(r)).toEqual([["kill", "--signal", "SIGHUP", "broker"]]);
      expect(restarts(r)).toEqual([]);
      expect(r.stderr).toContain("The broker reloaded its allow-list");
    }
    // The host's file, which the container cannot see, is passed as the key it holds.
    const register = aixcl(["keys", "register", "laptop", join(dir, "laptop.pub")], running);
    expect(composeCalls(register).find((c) => c[0] === "run")?.slice(-3)).toEqual(["register", "laptop", key]);

    const list = aixcl(["keys", "list"], running);
    expect([...reloads(list), ...restarts(list)]).toEqual([]);
    const stopped = aixcl(["keys", "revoke", "my-app"], { FAKE_DOCKER_RUNNING: "" });
    expect(restarts(stopped)).toEqual([]);
    expect(stopped.stderr).toContain("The broker is not running; it applies the allow-list when it starts.");
  });

  it("the first ./aixcl keys says the bus stays plaintext until a restart, and neither restarts nor reloads the broker", () => {
    withEnv();
    const r = aixcl(["keys", "my-app"], { FAKE_DOCKER_RUNNING: "loki\nbroker", FAKE_DOCKER_PS: "broker running healthy" });
    expect(r.status, r.stderr).toBe(0);
    expect(composeCalls(r).filter((c) => c[0] === "kill" || c[0] === "restart")).toEqual([]);
    expect(r.stderr).toContain("The bus runs plaintext until the broker and its clients restart with the keys: ./aixcl restart.");
  });

  it("moves keys/ of the single-folder layout to one folder per container, keys unchanged", () => {
    const k = (p: string) => join(dir, "keys", p);
    mkdirSync(k("clients"), { recursive: true, mode: 0o700 });
    for (const [f, text] of [["broker.pub", "B"], ["broker.secret", "b"], ["allowed_clients", "A"], ["clients/app.pub", "P"], ["clients/app.secret", "p"], ["clients/other.pub", "O"]]) {
      writeFileSync(k(f as string), text as string);
    }
    const r = aixcl(["keys"]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain("Moved keys/ to one folder per container");
    const read = (p: string) => readFileSync(k(p), "utf8");
    expect([read("broker/broker.pub"), read("broker/broker.secret"), read("broker/allowed_clients")]).toEqual(["B", "b", "A"]);
    expect([read("clients/app/clients/app.pub"), read("clients/app/clients/app.secret"), read("clients/app/broker.pub")]).toEqual(["P", "p", "B"]);
    expect(read("clients/other/clients/other.pub")).toBe("O");
    for (const f of ["broker.pub", "broker.secret", "allowed_clients", "clients/app.pub", "clients/app.secret"]) expect(existsSync(k(f))).toBe(false);
  });

  it("refuses --dir: the stack reads ./keys", () => {
    const r = aixcl(["keys", "--dir", "/elsewhere"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("the stack reads its keys from ./keys");
    expect(r.calls).toEqual([]);
  });
});

describe("help and unknown commands", () => {
  it("help lists every command; no arguments shows the same", () => {
    const help = aixcl(["help"]);
    expect(help.status).toBe(0);
    for (const cmd of ["start", "stop", "restart [<service>]", "status", "clean [--volumes] [--yes]", "logs <service>", "logs query <LogQL>", "logs tail [<LogQL>] [--follow]", "alerts [--json]", "bus test", "keys [<client>...]", "keys list", "keys revoke <client>", "keys register <client> <public-key>", "help"]) {
      expect(help.stdout).toContain(cmd);
    }
    expect(aixcl([]).stdout).toBe(help.stdout);
    expect(aixcl(["--help"]).stdout).toBe(help.stdout);
    expect(help.calls).toEqual([]);
  });

  it("an unknown command exits 2 and points to help", () => {
    const r = aixcl(["frobnicate"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("error: unknown command 'frobnicate'\nRun ./aixcl help for the commands.\n");
    expect(r.calls).toEqual([]);
  });

  it.each([
    [["help", "me"], "help takes no arguments"],
    [["start", "now"], "start: unknown option 'now' (options: --ha, --single, --one-process, --two-processes)"],
    [["stop", "loki"], "stop takes no arguments"],
    [["status", "-v"], "status takes no arguments"],
    [["restart", "loki", "grafana"], "restart takes at most one service"],
    [["restart", "nginx"], "unknown service 'nginx'; services: loki promtail prometheus alertmanager grafana broker log-consumer"],
    [["logs"], "logs needs a service, 'query <LogQL>' or 'tail [<LogQL>]'"],
    [["logs", "nginx"], "unknown service 'nginx'"],
    [["logs", "loki", "--since", "5m"], "logs loki: unknown option '--since' (options: --follow, --tail <n>)"],
    [["logs", "loki", "--tail", "many"], "--tail needs a number of lines"],
    [["logs", "loki", "--tail=x"], "--tail needs a number of lines"],
    [["bus"], "bus has one subcommand: ./aixcl bus test"],
    [["bus", "send"], "bus has one subcommand: ./aixcl bus test"],
    [["clean", "--all"], "clean: unknown option '--all' (options: --volumes, --yes)"],
  ])("%j exits 2: %s", (args, message) => {
    const r = aixcl(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`error: ${message}`);
    expect(r.calls).toEqual([]);
  });
});

describe("start: prerequisites, each with its own message, before anything is created", () => {
  function expectNothingDone(r: Result) {
    expect(r.status).toBe(1);
    expect(existsSync(join(dir, ".env"))).toBe(false);
    expect(composeCalls(r)).toEqual([]);
  }

  it("no docker command", () => {
    // A PATH with what the script needs, but no docker.
    const bin = join(dir, "bin");
    mkdirSync(bin);
    for (const tool of ["bash", "dirname", "sed", "tail", "head", "base64", "tr", "cut", "awk", "mv", "date", "sleep", "grep", "cat"]) {
      const found = spawnSync("bash", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
      if (found) symlinkSync(found, join(bin, tool));
    }
    const r = aixcl(["start"], {}, { path: bin });
    expectNothingDone(r);
    expect(r.stderr).toContain("error: Docker is not installed (no 'docker' command on PATH). Install Docker Engine or Docker Desktop: https://docs.docker.com/get-docker/");
  });

  it("engine not running", () => {
    const r = aixcl(["start"], { FAKE_DOCKER_ENGINE: "down" });
    expectNothingDone(r);
    expect(r.stderr).toContain("error: Docker is installed but its engine is not reachable:\n  Cannot connect to the Docker daemon at unix:///var/run/docker.sock.");
    expect(r.stderr).toContain("Start Docker (Docker Desktop, or: sudo systemctl start docker)");
  });

  it("Compose v2 missing", () => {
    const r = aixcl(["start"], { FAKE_DOCKER_COMPOSE: "missing" });
    expectNothingDone(r);
    expect(r.stderr).toContain("error: Docker Compose v2 is not installed ('docker compose' does not work). Install the Compose plugin:");
  });

  it("Compose too old", () => {
    const r = aixcl(["start"], { FAKE_DOCKER_COMPOSE: "2.17.3" });
    expectNothingDone(r);
    expect(r.stderr).toContain("error: Docker Compose 2.17.3 is too old: 2.20.0 or newer is needed.");
  });

  it.each(["2.20.0", "v2.29.1-desktop.1", "2.40.3", "5.0.0"])("Compose %s is accepted", (version) => {
    expect(aixcl(["start"], { FAKE_DOCKER_COMPOSE: version, FAKE_DOCKER_PS: ALL_HEALTHY }).status).toBe(0);
  });

  // A source build of Compose says "dev"; Bash arithmetic on it was an unbound-variable crash under set -u.
  it.each(["dev", "v2.x-rc", "unknown version"])("Compose version %j that is not a number: a clear warning, and the start goes on", (version) => {
    const r = aixcl(["start"], { FAKE_DOCKER_COMPOSE: version, FAKE_DOCKER_PS: ALL_HEALTHY });
    expect(r.stderr).not.toContain("unbound variable");
    expect(r.stderr).toContain(`warning: cannot tell the Docker Compose version from '${version.replace(/^v/, "")}'`);
    expect(r.stderr).toContain("2.20.0 or newer is needed");
    expect(r.status).toBe(0);
  });
});

describe("start", () => {
  it("creates .env once with a generated password, builds and starts the project, waits, prints URLs but not the password", () => {
    const r = started();
    expect(r.status).toBe(0);
    const env = readFileSync(join(dir, ".env"), "utf8");
    const password = /^GRAFANA_ADMIN_PASSWORD=(.*)$/m.exec(env)?.[1] ?? "";
    expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
    // The services' uid: the user's own, never root's.
    const own = (id: number | undefined) => String(id === undefined || id === 0 ? 1000 : id);
    expect(env).toMatch(new RegExp(`^AIXCL_UID=${own(process.getuid?.())}$`, "m"));
    expect(env).toMatch(new RegExp(`^AIXCL_GID=${own(process.getgid?.())}$`, "m"));
    expect(statSync(join(dir, ".env")).mode & 0o777).toBe(0o600);
    // Which of its services run already (their ports are theirs), which images it runs (to warn about CI
    // stand-ins), then up, then the health polling.
    expect(composeCalls(r).map((c) => c[0])).toEqual(["ps", "config", "up", "ps"]);
    expect(composeCalls(r)[2]).toEqual(["up", "--detach", "--build", "--remove-orphans"]);
    expect(r.stderr).toContain("Created .env with a generated Grafana admin password");
    expect(r.stderr).toContain(`Grafana      http://127.0.0.1:3000  (user admin, password: GRAFANA_ADMIN_PASSWORD in ${join(dir, ".env")})`);
    expect(r.stderr).toContain("Loki         http://127.0.0.1:3100  (ready: http://127.0.0.1:3100/ready)");
    expect(r.stderr).toContain("Broker       tcp://127.0.0.1:5555 (publish), :5556 (subscribe), http://127.0.0.1:9464/metrics");
    expect(r.stderr).toContain("Alertmanager http://127.0.0.1:9093  (what is firing: ./aixcl alerts)");
    expect(r.stderr).toContain("./aixcl bus test");
    expect(`${r.stdout}${r.stderr}`).not.toContain(password);

    const again = started();
    expect(again.status).toBe(0);
    expect(again.stderr).not.toContain("Created .env");
    expect(readFileSync(join(dir, ".env"), "utf8")).toBe(env);
  });

  it("gives Grafana its password as a file written from .env (0644 in a 0700 folder: uid 472 reads it, nobody else on the host)", () => {
    const r = started();
    expect(r.status).toBe(0);
    const password = /^GRAFANA_ADMIN_PASSWORD=(.*)$/m.exec(readFileSync(join(dir, ".env"), "utf8"))?.[1];
    const file = join(dir, ".secrets", "grafana_admin_password");
    expect(readFileSync(file, "utf8")).toBe(password);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(statSync(join(dir, ".secrets")).mode & 0o777).toBe(0o700);
    expect(r.calls.flat().join(" ")).not.toContain(password);
    // .env stays the truth: a changed password reaches the file at the next start.
    writeFileSync(join(dir, ".env"), "GRAFANA_ADMIN_PASSWORD=Zq8s7d6f5g4h3j2kNew\n", { mode: 0o600 });
    started();
    expect(readFileSync(file, "utf8")).toBe("Zq8s7d6f5g4h3j2kNew");
  });

  it("warns when .env, keys/ or a secret key is open to group or others, naming the chmod that fixes it", () => {
    writeFileSync(join(dir, ".env"), "GRAFANA_ADMIN_PASSWORD=Zq8s7d6f5g4h3j2k\n");
    chmodSync(join(dir, ".env"), 0o644);
    mkdirSync(join(dir, "keys/broker"), { recursive: true });
    chmodSync(join(dir, "keys"), 0o755);
    writeFileSync(join(dir, "keys/broker/broker.secret"), "x", { mode: 0o640 });
    chmodSync(join(dir, "keys/broker/broker.secret"), 0o640);
    const r = started();
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`warning: ${join(dir, ".env")} holds the Grafana password and is readable by group or others; fix: chmod 600 ${join(dir, ".env")}`);
    expect(r.stderr).toContain(`warning: ${join(dir, "keys")} holds CurveZMQ secret keys and is open to group or others; fix: chmod 700 ${join(dir, "keys")}`);
    expect(r.stderr).toContain(`warning: ${join(dir, "keys/broker/broker.secret")} is a secret key readable by group or others (the services refuse it); fix: chmod 600 ${join(dir, "keys/broker/broker.secret")}`);
    chmodSync(join(dir, ".env"), 0o600);
    chmodSync(join(dir, "keys"), 0o700);
    chmodSync(join(dir, "keys/broker/broker.secret"), 0o600);
    expect(started().stderr).not.toContain("warning:");
  });

  it("two checkouts get different passwords", () => {
    started();
    const first = readFileSync(join(dir, ".env"), "utf8");
    rmSync(join(dir, ".env"));
    started();
    expect(readFileSync(join(dir, ".env"), "utf8")).not.toBe(first);
  });

  it("works from any directory: .env and compose paths are the checkout's", () => {
    const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY }, { cwd: tmpdir() });
    expect(r.status).toBe(0);
    expect(existsSync(join(dir, ".env"))).toBe(true);
  });

  it("passes --project-name aixcl-logging even when COMPOSE_PROJECT_NAME says otherwise", () => {
    const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY, COMPOSE_PROJECT_NAME: "other" });
    expect(r.status).toBe(0);
    expect(composeCalls(r).length).toBeGreaterThan(1);
  });

  it("uses the host ports from .env in the URLs it prints", () => {
    writeFileSync(join(dir, ".env"), "GRAFANA_ADMIN_PASSWORD=Zq8s7d6f5g4h3j2k\nGRAFANA_PORT=3300\n");
    const r = started();
    expect(r.stderr).toContain("Grafana      http://127.0.0.1:3300");
  });

  it("a setting in the shell's environment wins over .env, as it does for Compose: the port it prints and checks", async () => {
    writeFileSync(join(dir, ".env"), "GRAFANA_ADMIN_PASSWORD=Zq8s7d6f5g4h3j2k\nGRAFANA_PORT=3300\n");
    expect(aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY, GRAFANA_PORT: "3301" }).stderr).toContain("Grafana      http://127.0.0.1:3301");
    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    try {
      const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY, GRAFANA_PORT: String(port) });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(`127.0.0.1:${port} (GRAFANA_PORT, grafana) is in use`);
    } finally {
      server.close();
    }
  });

  it.each([
    ["GRAFANA_ADMIN_PASSWORD=\n", ".env has no GRAFANA_ADMIN_PASSWORD. Set one (12 characters or more), or delete .env"],
    ["# no password line\n", ".env has no GRAFANA_ADMIN_PASSWORD."],
    ["GRAFANA_ADMIN_PASSWORD=admin\n", "GRAFANA_ADMIN_PASSWORD in .env is too weak"],
    ["GRAFANA_ADMIN_PASSWORD=short\n", "GRAFANA_ADMIN_PASSWORD in .env is too weak"],
  ])("refuses an .env with %j", (content, message) => {
    writeFileSync(join(dir, ".env"), content);
    const r = started();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`error: ${message}`);
    expect(composeCalls(r)).toEqual([]);
  });

  it("a new .env next to existing Grafana data resets Grafana's admin password to it, over stdin", () => {
    const stdinLog = join(dir, "exec-stdin");
    const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY, FAKE_DOCKER_VOLUMES: "aixcl-logging_grafana-data", FAKE_DOCKER_STDIN_LOG: stdinLog });
    expect(r.status).toBe(0);
    const password = /^GRAFANA_ADMIN_PASSWORD=(.*)$/m.exec(readFileSync(join(dir, ".env"), "utf8"))?.[1];
    expect(composeCalls(r)).toContainEqual(["exec", "-T", "grafana", "grafana", "cli", "admin", "reset-admin-password", "--password-from-stdin"]);
    expect(readFileSync(stdinLog, "utf8")).toBe(password);
    expect(r.calls.flat().join(" ")).not.toContain(password);
  });

  it("does not touch Grafana's password when .env already existed", () => {
    started();
    const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY, FAKE_DOCKER_VOLUMES: "aixcl-logging_grafana-data" });
    expect(composeCalls(r).some((c) => c[0] === "exec")).toBe(false);
  });

  it("builds only when the files the Dockerfiles copy changed, and prints the time to all-healthy", () => {
    mkdirSync(join(dir, "services/broker"), { recursive: true });
    mkdirSync(join(dir, "services/log-consumer"), { recursive: true });
    mkdirSync(join(dir, "config"));
    for (const f of ["services/broker/Dockerfile", "services/log-consumer/Dockerfile", "config/message_bus.yaml"]) copyFileSync(join(root, f), join(dir, f));
    const sourceLog = join(dir, "source-hash");
    const start = (imageSource: string) => aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY, FAKE_DOCKER_SOURCE_LOG: sourceLog, FAKE_DOCKER_IMAGE_SOURCE: imageSource });

    const first = start("");
    expect(upCall(first)).toEqual(["up", "--detach", "--build", "--remove-orphans"]);
    expect(first.stderr).toMatch(/All services healthy [0-9.]+ s after \.\/aixcl start\./);
    const hash = readFileSync(sourceLog, "utf8");
    expect(hash).toMatch(/^\d+$/);

    const unchanged = start(hash);
    expect(upCall(unchanged)).toEqual(["up", "--detach", "--remove-orphans"]);
    expect(unchanged.stderr).toContain("images up to date with this checkout");
    expect(readFileSync(sourceLog, "utf8")).toBe(hash);

    writeFileSync(join(dir, "config/message_bus.yaml"), "host: changed\n");
    const changed = start(hash);
    expect(upCall(changed)).toEqual(["up", "--detach", "--build", "--remove-orphans"]);
    expect(readFileSync(sourceLog, "utf8")).not.toBe(hash);
  });

  it("warns when an image is a CI stand-in (.ci/standin-images.sh), except in CI", () => {
    const images = { FAKE_DOCKER_PS: ALL_HEALTHY, FAKE_DOCKER_IMAGES: "grafana/loki:3.7.8 aixcl-broker:local" };
    const user = aixcl(["start"], { ...images, FAKE_DOCKER_STANDIN: "CI stand-in: built locally" });
    expect(user.status).toBe(0);
    expect(user.stderr).toContain("warning: these images are stand-ins built for CI, not the real ones: grafana/loki:3.7.8 aixcl-broker:local.");
    expect(aixcl(["start"], images).stderr).not.toContain("stand-ins");
    expect(aixcl(["start"], { ...images, FAKE_DOCKER_STANDIN: "CI stand-in", CI: "true" }).stderr).not.toContain("stand-ins");
  });

  it("refuses to start while a port it publishes is taken, naming the port, its setting, the holder and what to do", async () => {
    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    try {
      writeFileSync(join(dir, ".env"), `GRAFANA_ADMIN_PASSWORD=Zq8s7d6f5g4h3j2k\nBROKER_PUB_PORT=${port}\n`);
      const r = started();
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`127.0.0.1:${port} (BROKER_PUB_PORT, broker) is in use by another program on this machine`);
      expect(r.stderr).toContain("give the stack other ports in");
      expect(r.stderr).toContain("AIXCL_BUS_HOST");
      expect(composeCalls(r).map((c) => c[0])).not.toContain("up");
      // The same port is no problem while the stack's own broker holds it (a second start).
      const again = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY, FAKE_DOCKER_RUNNING: "broker\nloki\n" });
      expect(again.status, again.stderr).toBe(0);
    } finally {
      server.close();
    }
  });

  it("with AIXCL_BUS_HOST in .env (AICO's bus) runs no broker: no profile bus, its port unchecked, not waited for", async () => {
    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    try {
      writeFileSync(join(dir, ".env"), `GRAFANA_ADMIN_PASSWORD=Zq8s7d6f5g4h3j2k\nBROKER_SUB_PORT=${port}\nAIXCL_BUS_HOST=host.docker.internal\n`);
      const ps = ALL_HEALTHY.replace("broker running healthy\n", "");
      const r = aixcl(["start"], { FAKE_DOCKER_PS: ps });
      expect(r.status, r.stderr).toBe(0);
      expect(composeCalls(r, EXTERNAL_BUS).map((c) => c[0])).toEqual(["ps", "config", "up", "ps"]);
      expect(r.stderr).not.toMatch(/broker +(running|not-created)/);
    } finally {
      server.close();
    }
  });

  describe("across several machines", () => {
    const password = "GRAFANA_ADMIN_PASSWORD=Zq8s7d6f5g4h3j2k\n";

    it.each([["0.0.0.0", ".env"], ["192.168.1.20", ".env"], ["10.0.0.7", "environment"]])(
      "AIXCL_BUS_BIND=%s (from %s) without keys: refuses, says what to do, starts nothing",
      (bind, from) => {
        writeFileSync(join(dir, ".env"), from === ".env" ? `${password}AIXCL_BUS_BIND=${bind}\n` : password, { mode: 0o600 });
        const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY, ...(from === ".env" ? {} : { AIXCL_BUS_BIND: bind }) });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(`error: AIXCL_BUS_BIND=${bind} publishes the bus ports (5555, 5556) beyond this machine, and the bus has no CurveZMQ keys`);
        expect(r.stderr).toContain("Nothing was started.");
        expect(r.stderr).toContain("./aixcl keys register <name> <public-key-or-file>");
        expect(r.stderr).toContain(`AIXCL_BUS_BIND=127.0.0.1 in ${join(dir, ".env")}`);
        // Neither compose nor a build ran: nothing was created.
        expect(composeCalls(r)).toEqual([]);
      },
    );

    it("AIXCL_BUS_BIND on another address with the broker's keys starts, and compose gets the address", () => {
      writeFileSync(join(dir, ".env"), `${password}AIXCL_BUS_BIND=0.0.0.0\n`, { mode: 0o600 });
      mkdirSync(join(dir, "keys", "broker"), { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, "keys", "broker", "broker.secret"), "s", { mode: 0o600 });
      const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY });
      expect(r.status, r.stderr).toBe(0);
      expect(upCall(r)).toBeDefined();
    });

    it.each(["127.0.0.1", "localhost", "::1", ""])("AIXCL_BUS_BIND=%j (this machine only) needs no keys", (bind) => {
      writeFileSync(join(dir, ".env"), `${password}AIXCL_BUS_BIND=${bind}\n`, { mode: 0o600 });
      const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY });
      expect(r.status, r.stderr).toBe(0);
    });

    it("with AIXCL_BUS_HOST (someone else's bus) the stack publishes no bus port, so AIXCL_BUS_BIND needs no keys", () => {
      writeFileSync(join(dir, ".env"), `${password}AIXCL_BUS_BIND=0.0.0.0\nAIXCL_BUS_HOST=host.docker.internal\n`, { mode: 0o600 });
      const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY.replace("broker running healthy\n", "") });
      expect(r.status, r.stderr).toBe(0);
    });

    it.each([
      ["AIXCL_LOKI_CA_FILE=./certs/missing.pem", "AIXCL_LOKI_CA_FILE in"],
      ["AIXCL_LOKI_PASSWORD=pa55-Xq7", "AIXCL_LOKI_PASSWORD is set in"],
      ["AIXCL_LOKI_USERNAME=edge-1\nAIXCL_LOKI_PASSWORD=pa55-Xq7\nAIXCL_LOKI_BEARER_TOKEN=t0ken", "sets both AIXCL_LOKI_USERNAME (basic auth) and AIXCL_LOKI_BEARER_TOKEN"],
    ])("refuses remote Loki settings the consumer could not use (%s) before compose runs", (settings, message) => {
      writeFileSync(join(dir, ".env"), `${password}${settings}\n`, { mode: 0o600 });
      const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(message);
      expect(composeCalls(r)).toEqual([]);
      expect(r.stderr).not.toContain("pa55");
    });

    it("accepts a CA file relative to the checkout", () => {
      mkdirSync(join(dir, "certs"));
      writeFileSync(join(dir, "certs", "ca.pem"), "-----BEGIN CERTIFICATE-----\n");
      writeFileSync(join(dir, ".env"), `${password}AIXCL_LOKI_URL=https://logs.example.net\nAIXCL_LOKI_CA_FILE=./certs/ca.pem\n`, { mode: 0o600 });
      const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY });
      expect(r.status, r.stderr).toBe(0);
    });

    it("writes the remote Loki's password and token from .env into the consumer's secret files (0600), never onto a command line", () => {
      writeFileSync(join(dir, ".env"), `${password}AIXCL_LOKI_USERNAME=edge-1\nAIXCL_LOKI_PASSWORD="s3cret-pa55"\n`, { mode: 0o600 });
      const r = started();
      expect(r.status, r.stderr).toBe(0);
      const file = (name: string) => join(dir, ".secrets", name);
      expect(readFileSync(file("loki_password"), "utf8")).toBe("s3cret-pa55");
      // Compose needs the file of every secret a service names: the unused one is there, empty.
      expect(readFileSync(file("loki_bearer_token"), "utf8")).toBe("");
      for (const name of ["loki_password", "loki_bearer_token"]) {
        expect(statSync(file(name)).mode & 0o777).toBe(0o600);
        // The consumer runs as the services' uid (1000 when ./aixcl runs as root).
        expect(statSync(file(name)).uid).toBe(process.getuid?.() === 0 ? 1000 : process.getuid?.());
      }
      expect(r.calls.flat().join(" ")).not.toContain("s3cret");
      // Changed in .env, the file follows at the next start.
      writeFileSync(join(dir, ".env"), `${password}AIXCL_LOKI_BEARER_TOKEN=t0ken\n`, { mode: 0o600 });
      started();
      expect(readFileSync(file("loki_password"), "utf8")).toBe("");
      expect(readFileSync(file("loki_bearer_token"), "utf8")).toBe("t0ken");
    });
  });

  it("when compose up fails, says how to diagnose", () => {
    const r = aixcl(["start"], { FAKE_DOCKER_UP_EXIT: "1" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("error: docker compose could not start the stack (see above). Diagnose a service with: ./aixcl logs <service>");
  });

  it("shows each service's progress and, on timeout, which are not healthy and how to diagnose them", () => {
    const ps = ALL_HEALTHY.replace("promtail running healthy", "promtail running unhealthy").replace("grafana running healthy", "grafana running starting");
    const r = aixcl(["start"], { FAKE_DOCKER_PS: ps, AIXCL_START_TIMEOUT: "0" });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\[0s\] loki {10}running, healthy/);
    expect(r.stderr).toMatch(/\[0s\] promtail {6}running, unhealthy/);
    expect(r.stderr).toContain("Not healthy after 0s: promtail grafana");
    expect(r.stderr).toContain("  diagnose with: ./aixcl logs promtail\n  diagnose with: ./aixcl logs grafana\n");
    expect(r.stderr).not.toContain("AIXCL logging stack is up");
  });

  it("reports a service compose has not created", () => {
    const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY.replace("broker running healthy\n", ""), AIXCL_START_TIMEOUT: "0" });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\[0s\] broker +not-created\n/);
    expect(r.stderr).toContain("Not healthy after 0s: broker");
  });
});

describe("stop, restart, status", () => {
  it("stop stops the project and says data is kept", () => {
    started();
    const r = aixcl(["stop"]);
    expect(r.status).toBe(0);
    expect(composeCalls(r)).toEqual([["stop"]]);
    expect(r.stderr).toContain("Logs, metrics and dashboards are kept");
  });

  it("commands other than start and status need a started checkout", () => {
    for (const args of [["stop"], ["restart"], ["logs", "loki"], ["logs", "query", "{a=\"b\"}"], ["bus", "test"], ["alerts"]]) {
      const r = aixcl(args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr).toContain("The stack has not been started from this checkout (there is no .env). Run: ./aixcl start");
    }
  });

  it("restart <service> restarts it and waits for it only", () => {
    started();
    const r = aixcl(["restart", "loki"], { FAKE_DOCKER_PS: ALL_HEALTHY.replace("grafana running healthy", "grafana exited -") });
    expect(r.status).toBe(0);
    expect(composeCalls(r)[0]).toEqual(["restart", "loki"]);
    expect(r.stderr).toMatch(/loki {10}running, healthy/);
    expect(r.stderr).not.toContain("grafana");
  });

  it("restart without a service restarts everything", () => {
    started();
    const r = aixcl(["restart"], { FAKE_DOCKER_PS: ALL_HEALTHY });
    expect(composeCalls(r)[0]).toEqual(["restart"]);
    expect(r.status).toBe(0);
  });

  it("status prints a table of service, state, health and URL; exit 0 only when all are healthy", () => {
    started();
    const ok = aixcl(["status"], { FAKE_DOCKER_PS: ALL_HEALTHY });
    expect(ok.status).toBe(0);
    const lines = ok.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^SERVICE\s+STATE\s+HEALTH\s+URL$/);
    expect(lines).toHaveLength(8);
    expect(lines[1]).toMatch(/^loki\s+running\s+healthy\s+http:\/\/127\.0\.0\.1:3100$/);
    expect(lines[3]).toMatch(/^prometheus\s+running\s+healthy\s+http:\/\/127\.0\.0\.1:9090$/);
    expect(lines[4]).toMatch(/^alertmanager\s+running\s+healthy\s+http:\/\/127\.0\.0\.1:9093$/);
    expect(lines[7]).toMatch(/^log-consumer\s+running\s+healthy\s+http:\/\/127\.0\.0\.1:9465\/metrics$/);

    const bad = aixcl(["status"], { FAKE_DOCKER_PS: ALL_HEALTHY.replace("loki running healthy", "loki restarting -") });
    expect(bad.status).toBe(3);
    expect(bad.stdout).toMatch(/^loki\s+restarting\s+-\s+http/m);
  });

  it("status before the first start says so, exit 3", () => {
    const r = aixcl(["status"]);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain("Run: ./aixcl start");
  });
});

describe("logs", () => {
  beforeEach(() => {
    started();
  });

  it.each([
    [["logs", "loki"], ["logs", "--tail", "200", "loki"]],
    [["logs", "grafana", "--follow"], ["logs", "--tail", "200", "--follow", "grafana"]],
    [["logs", "log-consumer", "-f", "--tail", "50"], ["logs", "--tail", "50", "--follow", "log-consumer"]],
    [["logs", "broker", "--tail=5"], ["logs", "--tail", "5", "broker"]],
  ])("%j runs docker compose %j", (args, expected) => {
    const r = aixcl(args);
    expect(r.status).toBe(0);
    expect(composeCalls(r)).toEqual([expected]);
  });

  it.each([
    [["logs", "query", '{compose_service="loki"} |= "level=error"', "--since", "15m"]],
    [["logs", "tail"]],
    [["logs", "tail", '{service="api"}', "--follow"]],
    [["bus", "test", "--timeout", "1m"]],
  ])("%j runs in the cli container with its arguments unchanged, and removes that container whatever happens", (args) => {
    const r = aixcl(args, { FAKE_DOCKER_RUNNING: "loki\nbroker\n" });
    expect(r.status).toBe(0);
    expect(composeCalls(r)).toEqual([["ps", "--status", "running", "--services"], ["run", "--rm", "--no-deps", "--name", oneOff(r), "-T", "cli", ...args]]);
    // compose's own --rm is skipped when a second Ctrl-C ends it first: ./aixcl removes the container itself.
    expect(r.calls.at(-1)).toEqual(["rm", "--force", oneOff(r)]);
  });

  it("removes the one-off container also when interrupted (Ctrl-C while logs tail --follow runs)", async () => {
    const log = join(dir, "docker-calls.log");
    writeFileSync(log, "");
    const child = spawn("bash", [join(dir, "aixcl"), "logs", "tail", "--follow"], {
      cwd: dir,
      env: { PATH: `${fakeDockerDir}:${process.env.PATH}`, HOME: dir, FAKE_DOCKER_LOG: log, FAKE_DOCKER_RUNNING: "loki\n", FAKE_DOCKER_RUN_SLEEP: "30" },
      detached: true,
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    for (let i = 0; i < 100 && !readFileSync(log, "utf8").includes("\x1frun\x1f"); i++) await new Promise((r) => setTimeout(r, 50));
    process.kill(-(child.pid as number), "SIGINT");
    await exited;
    const calls = readFileSync(log, "utf8").split("\n").filter((l) => l !== "").map((l) => l.split("\x1f"));
    const run = calls.find((c) => c.includes("run")) ?? [];
    const name = run[run.indexOf("--name") + 1];
    expect(name).toMatch(/^aixcl-logging-cli-run-\d+-\d+$/);
    expect(calls.at(-1)).toEqual(["rm", "--force", name]);
  });

  it("passes the container's exit status through", () => {
    expect(aixcl(["bus", "test"], { FAKE_DOCKER_RUNNING: "loki\n", FAKE_DOCKER_RUN_EXIT: "1" }).status).toBe(1);
    expect(aixcl(["logs", "query"], { FAKE_DOCKER_RUNNING: "loki\n", FAKE_DOCKER_RUN_EXIT: "2" }).status).toBe(2);
  });

  it.each([[["alerts"]], [["alerts", "--json"]]])("%j runs in the cli container once Alertmanager runs, its arguments unchanged", (args) => {
    const r = aixcl(args, { FAKE_DOCKER_RUNNING: "alertmanager\n" });
    expect(r.status).toBe(0);
    expect(composeCalls(r)).toEqual([["ps", "--status", "running", "--services"], ["run", "--rm", "--no-deps", "--name", oneOff(r), "-T", "cli", ...args]]);
  });

  it("alerts refuses to run while Alertmanager is down, saying how to start it", () => {
    const r = aixcl(["alerts"], { FAKE_DOCKER_RUNNING: "loki\nbroker\n" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("error: Alertmanager is not running. Start the stack first: ./aixcl start");
    expect(composeCalls(r).some((c) => c[0] === "run")).toBe(false);
  });

  it("refuses to run them while Loki is down, saying how to start it", () => {
    const r = aixcl(["logs", "query", "{a=\"b\"}"], { FAKE_DOCKER_RUNNING: "grafana\n" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("error: Loki is not running. Start the stack first: ./aixcl start");
    expect(composeCalls(r).some((c) => c[0] === "run")).toBe(false);
  });
});

describe("clean", () => {
  it("without a terminal and without --yes, removes nothing", () => {
    started();
    const r = aixcl(["clean"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("error: clean asks for confirmation, and there is no terminal to ask on: add --yes to confirm.");
    expect(composeCalls(r)).toEqual([]);
  });

  it("--yes keeps the data volumes", () => {
    started();
    const r = aixcl(["clean", "--yes"]);
    expect(r.status).toBe(0);
    expect(composeCalls(r)).toEqual([["--profile", "bus", "--profile", "consumer", "--profile", "bus-one", "--profile", "tools", "down", "--remove-orphans"]]);
    expect(r.stderr).toContain("logs, metrics and dashboards are kept; add --volumes to delete them too");
  });

  it("--volumes --yes deletes the data and says so first", () => {
    started();
    const r = aixcl(["clean", "--volumes", "-y"]);
    expect(r.status).toBe(0);
    expect(composeCalls(r)).toEqual([["--profile", "bus", "--profile", "consumer", "--profile", "bus-one", "--profile", "tools", "down", "--remove-orphans", "--volumes"]]);
    expect(r.stderr).toContain("and ALL DATA: the logs in Loki, Prometheus' metrics, Grafana's users and settings, Alertmanager's silences");
    expect(existsSync(join(dir, ".env"))).toBe(true);
  });

  it("works without .env (nothing to interpolate the password from)", () => {
    const r = aixcl(["clean", "--yes"]);
    expect(r.status).toBe(0);
    expect(composeCalls(r)).toEqual([["--profile", "bus", "--profile", "consumer", "--profile", "bus-one", "--profile", "tools", "down", "--remove-orphans"]]);
  });

  const hasScript = spawnSync("script", ["--version"]).status === 0;
  it.skipIf(!hasScript)("asks on a terminal; anything but yes removes nothing", () => {
    started();
    // util-linux `script` gives the command a pseudo-terminal and feeds it our stdin.
    const run = (answer: string) =>
      spawnSync("script", ["-qec", `bash ${join(dir, "aixcl")} clean`, "/dev/null"], {
      input: answer,
      encoding: "utf8",
      env: { PATH: `${fakeDockerDir}:${process.env.PATH}`, FAKE_DOCKER_LOG: join(dir, "docker-calls.log"), HOME: dir },
    });
    writeFileSync(join(dir, "docker-calls.log"), "");
    const no = run("n\n");
    expect(no.status).toBe(1);
    expect(no.stdout).toContain("Continue? [y/N]");
    expect(no.stdout).toContain("Nothing removed.");
    expect(readFileSync(join(dir, "docker-calls.log"), "utf8")).not.toContain("down");
    const yes = run("y\n");
    expect(yes.status).toBe(0);
    expect(readFileSync(join(dir, "docker-calls.log"), "utf8")).toContain("down");
  });
});

describe("./aixcl and docker-compose.yml agree", () => {
  const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true }) as { services: Record<string, { profiles?: string[] }> };
  /** The services `up` starts with these profiles (those without a profile, and those of a profile given). */
  const startedWith = (profiles: string[]) =>
    Object.entries(compose.services)
      .filter(([, s]) => !s.profiles?.length || s.profiles.some((p) => profiles.includes(p)))
      .map(([name]) => name)
      .sort();
  const profilesOf = (flags: string[]) => flags.filter((f) => f !== "--profile");

  it("the services ./aixcl waits for are exactly the compose services that `up` starts, in each layout of the bus", () => {
    const script = readFileSync(join(root, "aixcl"), "utf8");
    const listed = /^SERVICES="([^"]+)"$/m.exec(script)?.[1]?.split(" ");
    expect(listed?.sort()).toEqual(startedWith(profilesOf(TWO_PROCESSES)));
    // What `start` waits for with one process, and with someone else's bus, against what compose starts then.
    const waited = (env: string) => {
      writeFileSync(join(dir, ".env"), `GRAFANA_ADMIN_PASSWORD=Zq8s7d6f5g4h3j2k\n${env}`);
      const r = aixcl(["start"], { FAKE_DOCKER_PS: "" });
      return (/Not healthy after 4s:(.*)/.exec(r.stderr)?.[1] ?? "").trim().split(" ").sort();
    };
    expect(waited("AIXCL_BUS_PROCESSES=one\n")).toEqual(startedWith(profilesOf(ONE_PROCESS)));
    expect(waited("AIXCL_BUS_HOST=host.docker.internal\n")).toEqual(startedWith(profilesOf(EXTERNAL_BUS)));
  });
});

describe("start --ha and --single (the HA profile)", () => {
  const HA_HEALTHY = `${ALL_HEALTHY}\n${["loki-1", "loki-2", "loki-3", "s3"].map((s) => `${s} running healthy`).join("\n")}`;
  const haGlobal = () => ["--file", join(dir, "docker-compose.ha.yml")];
  const envLine = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(readFileSync(join(dir, ".env"), "utf8"))?.[1];

  it("--ha keeps the choice in .env, adds the HA file and the store's profile, and writes generated S3 keys as a secret file only", () => {
    const r = aixcl(["start", "--ha"], { FAKE_DOCKER_PS: HA_HEALTHY });
    expect(r.stderr).toContain("All services healthy");
    expect(r.status).toBe(0);
    expect(envLine("AIXCL_LOKI_MODE")).toBe("ha");
    const id = envLine("AIXCL_S3_ACCESS_KEY_ID") ?? "";
    const secret = envLine("AIXCL_S3_SECRET_ACCESS_KEY") ?? "";
    expect(id).toMatch(/^aixcl-[A-Za-z0-9]{12}$/);
    expect(secret).toMatch(/^[A-Za-z0-9]{32}$/);
    const file = join(dir, ".secrets/s3_credentials");
    expect(readFileSync(file, "utf8")).toBe(`[default]\naws_access_key_id = ${id}\naws_secret_access_key = ${secret}\n`);
    expect(statSync(join(dir, ".secrets")).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, ".env")).mode & 0o777).toBe(0o600);
    expect(`${r.stdout}${r.stderr}${r.calls.flat().join(" ")}`).not.toContain(secret);
    const up = r.calls.find((c) => c.includes("up")) ?? [];
    expect(up.join(" ")).toContain(`${haGlobal().join(" ")} --profile ha-store`);
    // The wait covers the instances and the store too: one of them not healthy fails the start.
    const notAll = aixcl(["start"], { FAKE_DOCKER_PS: HA_HEALTHY.replace("loki-2 running healthy", "loki-2 running starting") });
    expect(notAll.status).toBe(1);
    expect(notAll.stderr).toMatch(/Not healthy after 4s:.*loki-2/);
  });

  it("a second --ha start keeps the keys; --single switches back and drops the HA file", () => {
    aixcl(["start", "--ha"], { FAKE_DOCKER_PS: HA_HEALTHY });
    const secret = envLine("AIXCL_S3_SECRET_ACCESS_KEY");
    aixcl(["start", "--ha"], { FAKE_DOCKER_PS: HA_HEALTHY });
    expect(envLine("AIXCL_S3_SECRET_ACCESS_KEY")).toBe(secret);
    const r = aixcl(["start", "--single"], { FAKE_DOCKER_PS: ALL_HEALTHY });
    expect(r.status).toBe(0);
    expect(envLine("AIXCL_LOKI_MODE")).toBe("single");
    expect(upCall(r)).toBeDefined();
    expect(r.calls.flat()).not.toContain(join(dir, "docker-compose.ha.yml"));
  });

  it("with the user's S3 named in .env: no store of ours, and no start without its keys", () => {
    const r = aixcl(["start", "--ha"], { FAKE_DOCKER_PS: HA_HEALTHY, AIXCL_S3_ENDPOINT: "s3.example.com" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("AIXCL_S3_ENDPOINT names your own S3, but .env lacks AIXCL_S3_ACCESS_KEY_ID or AIXCL_S3_SECRET_ACCESS_KEY");
    expect(r.calls.some((c) => c.includes("up"))).toBe(false);
    const ok = aixcl(["start", "--ha"], {
      FAKE_DOCKER_PS: HA_HEALTHY.replace("s3 running healthy", ""),
      AIXCL_S3_ENDPOINT: "s3.example.com",
      AIXCL_S3_ACCESS_KEY_ID: "AKIAEXAMPLE",
      AIXCL_S3_SECRET_ACCESS_KEY: "their-secret-key-1234567890",
    });
    expect(ok.stderr).toContain("All services healthy");
    const up = ok.calls.find((c) => c.includes("up")) ?? [];
    expect(up).toContain(join(dir, "docker-compose.ha.yml"));
    expect(up).not.toContain("ha-store");
  });

  it("refuses an unknown option, an unknown mode in .env, and a Compose too old for the HA file", () => {
    expect(aixcl(["start", "--fast"]).status).toBe(2);
    const bad = aixcl(["start"], { AIXCL_LOKI_MODE: "cluster" });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("AIXCL_LOKI_MODE is 'cluster': it must be single or ha");
    const old = aixcl(["start", "--ha"], { FAKE_DOCKER_COMPOSE: "2.24.0", FAKE_DOCKER_PS: HA_HEALTHY });
    expect(old.status).toBe(1);
    expect(old.stderr).toContain("too old for the HA profile: 2.24.4 or newer is needed");
  });

  it("lists exactly the HA file's services that are not the gateway", () => {
    const ha = parse(readFileSync(join(root, "docker-compose.ha.yml"), "utf8"), { merge: true, customTags: composeTags }) as { services: Record<string, unknown>; volumes: Record<string, unknown> };
    const script = readFileSync(join(root, "aixcl"), "utf8");
    expect(/^HA_SERVICES="([^"]+)"$/m.exec(script)?.[1]?.split(" ").sort()).toEqual(Object.keys(ha.services).filter((n) => n !== "loki").sort());
    expect(/^HA_VOLUMES="([^"]+)"$/m.exec(script)?.[1]?.split(" ").sort()).toEqual(Object.keys(ha.volumes).sort());
  });
});

describe("start --one-process and --two-processes (the broker and the consumer in one process, or two)", () => {
  const ONE_HEALTHY = ALL_HEALTHY.replace("broker running healthy\nlog-consumer running healthy", "bus running healthy");
  const envLine = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(readFileSync(join(dir, ".env"), "utf8"))?.[1];
  const withEnv = (extra = "") => writeFileSync(join(dir, ".env"), `GRAFANA_ADMIN_PASSWORD=Zq8s7d6f5g4h3j2k\n${extra}`, { mode: 0o600 });

  it("--one-process keeps the choice in .env, starts profile bus-one only and waits for the bus; a plain start keeps it", () => {
    const r = aixcl(["start", "--one-process"], { FAKE_DOCKER_PS: ONE_HEALTHY });
    expect(r.status, r.stderr).toBe(0);
    expect(envLine("AIXCL_BUS_PROCESSES")).toBe("one");
    // composeCalls checks every call's global options: the one-process profile, neither bus nor consumer.
    expect(composeCalls(r, ONE_PROCESS).map((c) => c[0])).toContain("up");
    expect(r.stderr).toMatch(/bus {11}running, healthy/);
    expect(r.stderr).not.toMatch(/(broker|log-consumer) +(running|not-created)/);
    expect(r.stderr).toMatch(/Bus +tcp:\/\/127\.0\.0\.1:5555 \(publish\), :5556 \(subscribe\), http:\/\/127\.0\.0\.1:9464\/metrics; consumer http:\/\/127\.0\.0\.1:9465\/metrics/);
    // The bus not healthy fails the start.
    const notHealthy = aixcl(["start"], { FAKE_DOCKER_PS: ONE_HEALTHY.replace("bus running healthy", "bus running starting") });
    expect(notHealthy.status).toBe(1);
    expect(notHealthy.stderr).toMatch(/Not healthy after 4s: bus/);
    expect(composeCalls(notHealthy, ONE_PROCESS).length).toBeGreaterThan(0);
  });

  it("--two-processes switches back: .env says two, profiles bus and consumer, broker and log-consumer waited for", () => {
    aixcl(["start", "--one-process"], { FAKE_DOCKER_PS: ONE_HEALTHY });
    const r = aixcl(["start", "--two-processes"], { FAKE_DOCKER_PS: ALL_HEALTHY });
    expect(r.status, r.stderr).toBe(0);
    expect(envLine("AIXCL_BUS_PROCESSES")).toBe("two");
    expect(composeCalls(r, TWO_PROCESSES).map((c) => c[0])).toContain("up");
    expect(r.stderr).toMatch(/broker {8}running, healthy/);
    expect(r.stderr).toMatch(/log-consumer {2}running, healthy/);
  });

  it("switching stops the other layout's containers first (broker before consumer), removes them, says so, then starts", () => {
    const one = aixcl(["start", "--one-process"], { FAKE_DOCKER_PS: ONE_HEALTHY, FAKE_DOCKER_CONTAINERS: "loki broker log-consumer" });
    expect(one.status, one.stderr).toBe(0);
    const all = ["--profile", "bus", "--profile", "consumer", "--profile", "bus-one"];
    const calls = composeCalls(one, ONE_PROCESS);
    const at = (call: string[]) => calls.findIndex((c) => c.join(" ") === call.join(" "));
    expect(at([...all, "stop", "broker"])).toBeGreaterThanOrEqual(0);
    expect(at([...all, "stop", "log-consumer"])).toBeGreaterThan(at([...all, "stop", "broker"]));
    expect(at([...all, "rm", "--force", "broker", "log-consumer"])).toBeGreaterThan(at([...all, "stop", "log-consumer"]));
    expect(at(["up", "--detach", "--build", "--remove-orphans"])).toBeGreaterThan(at([...all, "rm", "--force", "broker", "log-consumer"]));
    expect(one.stderr).toContain("Switching to one process for the bus: stopping and removing broker log-consumer");

    const two = aixcl(["start", "--two-processes"], { FAKE_DOCKER_PS: ALL_HEALTHY, FAKE_DOCKER_CONTAINERS: "loki bus" });
    expect(two.status, two.stderr).toBe(0);
    expect(composeCalls(two, TWO_PROCESSES).filter((c) => c.includes("stop") || c.includes("rm"))).toEqual([
      [...all, "stop", "bus"],
      [...all, "rm", "--force", "bus"],
    ]);
    expect(two.stderr).toContain("Switching to two processes for the bus: stopping and removing bus");

    // Nothing to switch: nothing stopped or removed, nothing said.
    const again = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY, FAKE_DOCKER_CONTAINERS: "loki broker log-consumer" });
    expect(composeCalls(again).filter((c) => c.includes("stop") || c.includes("rm"))).toEqual([]);
    expect(again.stderr).not.toContain("Switching");
  });

  it("the bus ports held by the other layout's container are no reason to refuse the switch; held by anything else, they are", async () => {
    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    try {
      withEnv(`BROKER_PUB_PORT=${port}\n`);
      const holder = { FAKE_DOCKER_PS: ONE_HEALTHY, FAKE_DOCKER_PUBLISHER: "c0ffeebroker aixcl-logging-broker-1" };
      const ours = aixcl(["start", "--one-process"], { ...holder, FAKE_DOCKER_CONTAINERS: "broker log-consumer" });
      expect(ours.status, ours.stderr).toBe(0);
      expect(ours.stderr).toContain("Switching to one process for the bus");
      const other = aixcl(["start", "--one-process"], holder);
      expect(other.status).toBe(1);
      expect(other.stderr).toContain(`127.0.0.1:${port} (BROKER_PUB_PORT, bus) is in use by container aixcl-logging-broker-1`);
    } finally {
      server.close();
    }
  });

  it("with AIXCL_BUS_HOST (someone else's bus) the stack's own bus goes, whichever layout ran it", () => {
    withEnv("AIXCL_BUS_HOST=host.docker.internal\n");
    const r = aixcl(["start"], { FAKE_DOCKER_PS: ALL_HEALTHY, FAKE_DOCKER_CONTAINERS: "bus log-consumer" });
    expect(r.status, r.stderr).toBe(0);
    const all = ["--profile", "bus", "--profile", "consumer", "--profile", "bus-one"];
    expect(composeCalls(r, EXTERNAL_BUS).filter((c) => c.includes("stop") || c.includes("rm"))).toEqual([
      [...all, "stop", "bus"],
      [...all, "rm", "--force", "bus"],
    ]);
    expect(r.stderr).toContain("AIXCL_BUS_HOST is set: stopping and removing the stack's own bus: bus.");
  });

  it("refuses one process with someone else's bus, a flag the environment contradicts, and an unknown value", () => {
    withEnv("AIXCL_BUS_HOST=host.docker.internal\n");
    const external = aixcl(["start", "--one-process"], { FAKE_DOCKER_PS: ONE_HEALTHY });
    expect(external.status).toBe(1);
    expect(external.stderr).toContain("start --one-process, but AIXCL_BUS_HOST in");
    expect(external.stderr).toContain("names someone else's bus");
    expect(envLine("AIXCL_BUS_PROCESSES")).toBeUndefined();
    expect(external.calls.some((c) => c.includes("up"))).toBe(false);
    withEnv("AIXCL_BUS_HOST=host.docker.internal\nAIXCL_BUS_PROCESSES=one\n");
    const inEnv = aixcl(["start"], { FAKE_DOCKER_PS: ONE_HEALTHY });
    expect(inEnv.status).toBe(1);
    expect(inEnv.stderr).toContain("AIXCL_BUS_PROCESSES=one, but AIXCL_BUS_HOST names someone else's bus");
    expect(inEnv.calls.some((c) => c.includes("up"))).toBe(false);

    withEnv();
    const contradicted = aixcl(["start", "--one-process"], { AIXCL_BUS_PROCESSES: "two" });
    expect(contradicted.status).toBe(1);
    expect(contradicted.stderr).toContain("start --one-process, but AIXCL_BUS_PROCESSES=two is set in your environment, which wins over .env: unset it.");
    expect(envLine("AIXCL_BUS_PROCESSES")).toBeUndefined();
    const unknown = aixcl(["start"], { AIXCL_BUS_PROCESSES: "three" });
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain("AIXCL_BUS_PROCESSES is 'three': it must be one or two (or empty: two).");
    expect(unknown.calls.some((c) => c.includes("up"))).toBe(false);
  });

  it("keys: register reloads the bus' allow-list (SIGHUP to bus), revoke restarts the bus and waits for it", () => {
    withEnv("AIXCL_BUS_PROCESSES=one\n");
    mkdirSync(join(dir, "keys", "broker"), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, "keys", "broker", "broker.secret"), "s", { mode: 0o600 });
    const running = { FAKE_DOCKER_RUNNING: "loki\nbus", FAKE_DOCKER_PS: "bus running healthy" };
    const register = aixcl(["keys", "register", "laptop", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"], running);
    expect(register.status, register.stderr).toBe(0);
    const calls = composeCalls(register, ONE_PROCESS);
    expect(calls.filter((c) => c[0] === "kill")).toEqual([["kill", "--signal", "SIGHUP", "bus"]]);
    expect(calls.filter((c) => c[0] === "restart")).toEqual([]);
    expect(register.stderr).toContain("The broker reloaded its allow-list");

    const revoke = aixcl(["keys", "revoke", "laptop"], running);
    expect(revoke.status, revoke.stderr).toBe(0);
    expect(composeCalls(revoke, ONE_PROCESS).filter((c) => c[0] === "restart" || c[0] === "kill")).toEqual([["restart", "bus"]]);
    expect(revoke.stderr).toContain("Restarting the bus (broker and consumer in one process) so that it cuts off the revoked client now.");
    expect(revoke.stderr).toMatch(/bus {11}running, healthy/);

    // A broker container left running from the other layout is not the one to signal.
    const stale = aixcl(["keys", "register", "laptop", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"], { FAKE_DOCKER_RUNNING: "loki\nbroker" });
    expect(composeCalls(stale, ONE_PROCESS).filter((c) => c[0] === "kill")).toEqual([]);
    expect(stale.stderr).toContain("The broker is not running");
  });

  it("status, logs, restart and clean name the bus: broker and log-consumer lead to it", () => {
    withEnv("AIXCL_BUS_PROCESSES=one\n");
    const status = aixcl(["status"], { FAKE_DOCKER_PS: ONE_HEALTHY });
    expect(status.status, status.stderr).toBe(0);
    const lines = status.stdout.trim().split("\n");
    expect(lines).toHaveLength(7);
    expect(lines[6]).toMatch(/^bus\s+running\s+healthy\s+tcp:\/\/127\.0\.0\.1:5555 \(publish\)/);
    for (const name of ["broker", "log-consumer", "bus"]) {
      const logs = aixcl(["logs", name]);
      expect(logs.status, logs.stderr).toBe(0);
      expect(composeCalls(logs, ONE_PROCESS)).toEqual([["logs", "--tail", "200", "bus"]]);
      const restart = aixcl(["restart", name], { FAKE_DOCKER_PS: ONE_HEALTHY });
      expect(restart.status, restart.stderr).toBe(0);
      expect(composeCalls(restart, ONE_PROCESS)[0]).toEqual(["restart", "bus"]);
    }
    const stop = aixcl(["stop"]);
    expect(composeCalls(stop, ONE_PROCESS)).toEqual([["stop"]]);
    const clean = aixcl(["clean", "--yes"]);
    expect(composeCalls(clean, ONE_PROCESS)).toEqual([["--profile", "bus", "--profile", "consumer", "--profile", "bus-one", "--profile", "tools", "down", "--remove-orphans"]]);
  });
});
