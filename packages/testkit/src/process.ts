import { spawn, type ChildProcess, type ChildProcessByStdio } from "node:child_process";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterEach } from "vitest";

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released for the caller to bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/** Dirs made by tempDir in this test file, for removeTempDirs. */
const tempDirs = new Set<string>();

/** A fresh `aixcl-<prefix>-XXXXXX` dir under the OS temp dir, removed once the test file is done (setup.ts). */
/** A service's child process as tests watch it (see watchServiceProcess). */
export interface WatchedProcess {
  /** Its JSON log lines so far (one object per stdout line, as serviceLog writes them); the array grows. */
  readonly lines: Record<string, unknown>[];
  /** Its exit code. */
  readonly exited: Promise<number | null>;
  /** SIGKILLs it if it still runs, and prints what it wrote to stderr: for a test's cleanup. */
  dispose(): void;
}

/** Watches a service process spawned with piped stdout and stderr; `onLine` sees each JSON log line first. */
export function watchServiceProcess(child: ChildProcessByStdio<null, Readable, Readable>, onLine: (line: Record<string, unknown>) => void = () => {}): WatchedProcess {
  const lines: Record<string, unknown>[] = [];
  let buffer = "";
  child.stdout.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
      const line = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>;
      buffer = buffer.slice(nl + 1);
      onLine(line);
      lines.push(line);
    }
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    lines,
    exited,
    dispose: () => {
      if (child.exitCode === null) child.kill("SIGKILL");
      if (stderr.trim() !== "") console.error(stderr);
    },
  };
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `aixcl-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/**
 * Runs the component under a small bash guard that stops it when our stdin closes and then removes its temp
 * dir ($1). Node closes that pipe however this process ends (normal exit, crash, SIGKILL of the test
 * worker), so no Loki or Prometheus outlives the test run even when `exit` handlers never get to run.
 */
const GUARD = `dir=$1; shift
exec 3<&0
"$@" </dev/null 3<&- & child=$!
# Background jobs get /dev/null as stdin unless redirected explicitly, hence fd 3.
( read -r _ <&3; kill -TERM "$child" 2>/dev/null ) &
watcher=$!
wait "$child"; status=$?
# Watcher gone: stdin closed (stop() or the test process died), nobody will read the logs any more.
if kill -0 "$watcher" 2>/dev/null; then kill "$watcher"; else rm -rf "$dir"; fi
exit "$status"`;

/** Running components of this test file, for printComponentLogsOnFailure. */
const live = new Set<ComponentProcess>();

/**
 * Call once at the top of a test file: when a test fails, the logs of every component still running in
 * this file are printed after it, so a failure shows what Loki/Promtail/Prometheus said.
 */
export function printComponentLogsOnFailure(lines = 200): void {
  afterEach((ctx) => {
    if (ctx.task.result?.state !== "fail") return;
    for (const p of live) console.error(`----- ${p.name} log, last ${lines} lines (${p.logFile}) -----\n${p.logTail(lines)}`);
  });
}

export interface ComponentProcessOptions {
  /** Short name used in messages and the log file name. */
  name: string;
  bin: string;
  args: string[];
  env?: Record<string, string>;
  /** Directory for the log file and the component's data; removed by stop(). */
  dir: string;
}

/** One running component process, its output captured in `<dir>/<name>.log`. */
export class ComponentProcess {
  readonly logFile: string;
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  readonly name: string;

  constructor(private readonly opts: ComponentProcessOptions) {
    this.name = opts.name;
    this.logFile = join(opts.dir, `${opts.name}.log`);
    const fd = openSync(this.logFile, "a");
    this.child = spawn("bash", ["-c", GUARD, opts.name, opts.dir, opts.bin, ...opts.args], {
      cwd: opts.dir,
      env: { ...process.env, ...opts.env },
      // Own process group, so stop() can kill the component together with the guard.
      detached: true,
      stdio: ["pipe", fd, fd],
    });
    closeSync(fd);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        live.delete(this);
        resolve(this.exitCode);
      });
    });
    live.add(this);
  }

  /**
   * The component's own process id (the guard's child running `bin`), for reading its CPU time and memory from
   * /proc; undefined once it has exited, or where /proc does not list children (not Linux).
   */
  pid(): number | undefined {
    const guard = this.child.pid;
    if (guard === undefined || this.exitCode !== undefined) return undefined;
    try {
      const children = readFileSync(`/proc/${guard}/task/${guard}/children`, "utf8").trim().split(/\s+/);
      return children.map(Number).find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] === this.opts.bin);
    } catch {
      return undefined;
    }
  }

  /** undefined while running, otherwise the exit code (-1 when killed by a signal). */
  get exitStatus(): number | null | undefined {
    return this.exitCode;
  }

  logs(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** The last `lines` lines of the log, for error messages. */
  logTail(lines = 60): string {
    return this.logs().trimEnd().split("\n").slice(-lines).join("\n");
  }

  /** SIGTERM through the guard, then SIGKILL to the whole group after `graceMs`. Removes the temp dir. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitCode === undefined) {
      this.child.stdin?.end();
      const timer = setTimeout(() => this.killNow(), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.opts.dir, { recursive: true, force: true });
  }

  private killNow(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/**
 * Polls `probe` until it resolves true. Fails early, with the component's log tail, when the process exits;
 * fails with the log tail and the last probe error after `timeoutMs`.
 */
async function waitUntil(proc: ComponentProcess, what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    if (proc.exitStatus !== undefined) {
      throw new Error(`${what}: process exited with status ${proc.exitStatus}. Log (${proc.logFile}):\n${proc.logTail()}`);
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ""}. Log (${proc.logFile}):\n${proc.logTail()}`);
}

/** A launched component: its process and the base URL it serves on. */
export interface Launched {
  proc: ComponentProcess;
  url: string;
}

/**
 * Calls `launch` (which starts a component on ports that were free when asked for) and waits until
 * `<url><readyPath>` answers 2xx. Another process may take such a port before the component binds it: that race,
 * and only that, is retried with a fresh launch, three launches in all.
 */
export async function launchUntilReady<T extends Launched>(label: string, readyPath: string, timeoutMs: number, launch: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const launched = await launch();
    try {
      await waitUntil(launched.proc, `${label} on ${launched.url}`, () => httpOk(`${launched.url}${readyPath}`), timeoutMs);
      return launched;
    } catch (err) {
      await launched.proc.stop();
      if (attempt < 3 && /address already in use/.test(String(err))) continue;
      throw err;
    }
  }
}

/** GET `url` with a short timeout; true on 2xx. */
async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.ok;
}
