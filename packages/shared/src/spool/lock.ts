import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/** How a spool directory is named to a user: in errors and log lines. */
export interface SpoolNaming {
  /** The setting that names the directory, e.g. "spool.dir". */
  key: string;
  /** Its environment variable, e.g. "LOG_CONSUMER_SPOOL_DIR". */
  env: string;
  /** The compose volume it lives on, e.g. "log-consumer-spool". */
  volume: string;
  /** The kind of process that owns a directory, as in "in use by another log consumer". */
  owner: string;
  /** The same in "give each consumer its own spool.dir". */
  each: string;
  /** Prefix of the spool's log lines, e.g. "spool". */
  log: string;
}

/** Why the spool directory cannot be used; the message names the setting and what to do. */
export class SpoolDirError extends Error {
  constructor(key: string, dir: string, reason: string) {
    super(`${key} ${dir}: ${reason}`);
    this.name = "SpoolDirError";
  }
}

const LOCK_FILE = "LOCK";

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * One process per spool directory: two would send the same files. The lock names the process and host; a lock
 * from a process that is gone, or from another host (a recreated container), is stale and taken over. Returns
 * the lock file, to be removed at close.
 */
export function takeSpoolLock(dir: string, naming: SpoolNaming): string {
  const file = join(dir, LOCK_FILE);
  const me = `${process.pid} ${hostname()}\n`;
  try {
    writeFileSync(file, me, { flag: "wx", mode: 0o600 });
    return file;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const [pid = "", host = ""] = readFileSync(file, "utf8").trim().split(" ");
  if (host === hostname() && Number(pid) !== process.pid && processAlive(Number(pid))) {
    throw new SpoolDirError(naming.key, dir, `in use by another ${naming.owner} (pid ${pid}); give each ${naming.each} its own ${naming.key}`);
  }
  writeFileSync(file, me, { mode: 0o600 });
  return file;
}
