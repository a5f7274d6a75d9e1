/**
 * A fresh checkout of this repository driven through ./aixcl, as a user meets it: the tracked files (and new
 * ones not yet committed) copied into a new folder, no .env, no keys, owned by the user who runs ./aixcl.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { chmodSync, chownSync, cpSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { repoRoot, tempDir } from "@aixcl/testkit";

/** Who runs ./aixcl: this process's own user, or another one (by name) that `runuser` switches to. */
export interface AixclUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** True when ./aixcl runs as this process's own user (no runuser). */
  self: boolean;
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** An unprivileged account for the "normal user" pass, created once (root only), in the docker group. */
export const TESTER = "aixcl-tester";

function id(args: string[]): number {
  return Number(execFileSync("id", args, { encoding: "utf8" }).trim());
}

export function currentUser(): AixclUser {
  const name = execFileSync("id", ["-un"], { encoding: "utf8" }).trim();
  return { name, uid: id(["-u"]), gid: id(["-g"]), home: process.env.HOME ?? "/", self: true };
}

/** The unprivileged tester account, made when missing (needs root, as CI runs). */
export function testerUser(): AixclUser {
  if (spawnSync("id", [TESTER]).status !== 0) {
    execFileSync("useradd", ["--create-home", "--user-group", "--groups", "docker", "--shell", "/bin/bash", TESTER]);
  }
  const home = execFileSync("getent", ["passwd", TESTER], { encoding: "utf8" }).split(":")[5] ?? `/home/${TESTER}`;
  return { name: TESTER, uid: id(["-u", TESTER]), gid: id(["-g", TESTER]), home, self: false };
}

/** The files a clone of the working tree would hold: tracked plus new, never ignored ones (.env, keys, builds). */
function checkoutFiles(): string[] {
  return execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: repoRoot, encoding: "utf8" })
    .split("\0")
    .filter((f) => f !== "");
}

export class Checkout {
  readonly dir: string;

  constructor(readonly user: AixclUser) {
    // Under a folder the user may enter: tempDir makes 0700 folders owned by this process's user.
    const parent = tempDir("docker-tier");
    chmodSync(parent, 0o755);
    this.dir = join(parent, "aixcl");
    mkdirSync(this.dir);
    for (const file of checkoutFiles()) {
      mkdirSync(dirname(join(this.dir, file)), { recursive: true });
      cpSync(join(repoRoot, file), join(this.dir, file), { preserveTimestamps: true });
    }
    if (!user.self) chownTree(this.dir, user.uid, user.gid);
  }

  private command(args: string[]): [string, string[]] {
    const aixcl = join(this.dir, "aixcl");
    if (this.user.self) return [aixcl, args];
    // A login-like environment: the user's HOME (compose keeps its state there), no variables of ours.
    return ["runuser", ["-u", this.user.name, "--", "env", "-i", `HOME=${this.user.home}`, `PATH=${process.env.PATH}`, "NO_COLOR=1", aixcl, ...args]];
  }

  /** Runs ./aixcl to the end; its output is kept and returned, not printed. */
  run(args: string[], timeoutMs = 600_000): Promise<Run> {
    const [cmd, argv] = this.command(args);
    const started = Date.now();
    const child = spawn(cmd, argv, { cwd: this.dir, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        stderr += `\n[docker tier] ./aixcl ${args.join(" ")}: no exit after ${timeoutMs} ms; killed`;
        child.kill("SIGKILL");
      }, timeoutMs);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ status: code ?? -1, stdout, stderr, ms: Date.now() - started });
      });
    });
  }

  /** Starts a long-running ./aixcl (logs tail --follow) in its own process group; stop it with interrupt(). */
  spawn(args: string[]): LongRun {
    const [cmd, argv] = this.command(args);
    const child = spawn(cmd, argv, { cwd: this.dir, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    return new LongRun(child);
  }
}

export class LongRun {
  stdout = "";
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor(private readonly child: ChildProcess) {
    child.stdout?.on("data", (d: Buffer) => (this.stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on("close", (code) => resolve(code)));
  }

  /** Ctrl-C: SIGINT to the whole process group, as a terminal sends it. */
  interrupt(): void {
    if (this.child.pid !== undefined) process.kill(-this.child.pid, "SIGINT");
  }
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) chownTree(child, uid, gid);
    else chownSync(child, uid, gid);
  }
}
