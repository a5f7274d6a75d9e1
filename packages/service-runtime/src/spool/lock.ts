import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, ftruncateSync, linkSync, openSync, readFileSync, readlinkSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
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

export const LOCK_FILE = "LOCK";
/** A lease of 10 s: the owner renews it every 2.5 s, so it survives event-loop stalls of several seconds. */
export const DEFAULT_LEASE_MS = 10_000;
/** How often a newcomer looks at a lock it is waiting on. */
const WATCH_STEP_MS = 50;

export interface SpoolLockOptions {
  /** A lock whose heartbeat has not changed for this long belongs to an owner that is gone. */
  leaseMs?: number;
  /** Told once when the start has to wait for a lease to expire, with what the lock says. */
  onWait?(holder: string, leaseMs: number): void;
}

/** What the lock file says; `beat` changes at every renewal. */
interface LockRecord {
  token: string;
  pid: number;
  host: string;
  /** The pid namespace (Linux), so a pid is only checked where it means the same process. */
  pidns: string;
  beat: number;
}

function pidNamespace(): string {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return "";
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function parse(text: string): LockRecord | undefined {
  try {
    const record = JSON.parse(text) as LockRecord;
    return typeof record.token === "string" && Number.isSafeInteger(record.pid) ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The lock file's text, or undefined when there is none. */
function readLock(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Blocks the thread: the lock is taken at start, before the process serves anything. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const describeHolder = (record: LockRecord | undefined) => (record ? `pid ${record.pid} on host ${record.host}` : "an unreadable lock");

/**
 * One process per spool directory, across processes, containers and hosts sharing it: two owners would send the
 * same files twice. Node has no flock (and flock does not reach across network file systems), so the lock is a
 * lease held in the file LOCK:
 *
 * - Taking it: create LOCK with O_CREAT|O_EXCL, atomic (also on NFSv3 and later): of two processes only one can.
 *   It holds a random token, the pid, the host name, the pid namespace and a heartbeat count.
 * - Holding it: every lease/4 the owner rewrites LOCK through the descriptor it created it with, with the next
 *   heartbeat count. Writing through its own descriptor, it can never overwrite another owner's lock; when LOCK
 *   is no longer the file it created, the lease was lost (the process was frozen for longer than a lease) and
 *   onLost says so.
 * - A lock that exists is live, unless (a) it names a process of this host and pid namespace that no longer runs
 *   (a restart after a crash need not wait), or (b) its content has not changed for a whole lease, as the
 *   newcomer sees with its own clock, so the clocks of different hosts need not agree. A newcomer refuses to
 *   start as soon as it sees the heartbeat change; a lock that stays still is stale after one lease.
 * - Taking over a stale lock: rename LOCK to a name of the newcomer's own (atomic: of two newcomers only one moves
 *   it), then re-check that what it moved is the lock it watched. If not (its owner renewed it just then, or
 *   another newcomer had already replaced it), it is put back with link(), which never overwrites. Then LOCK is
 *   created with O_EXCL as at first, which another newcomer may win; this one then watches that lock instead.
 */
export class SpoolLock {
  readonly file: string;
  private readonly fd: number;
  private readonly ino: number;
  private readonly record: LockRecord;
  private readonly timer: NodeJS.Timeout;
  private released = false;
  private lostReason: string | undefined;

  private constructor(file: string, fd: number, record: LockRecord, leaseMs: number, onLost: (reason: string) => void) {
    this.file = file;
    this.fd = fd;
    this.ino = fstatSync(fd).ino;
    this.record = record;
    this.write();
    this.timer = setInterval(() => {
      const lost = this.renew();
      if (lost) {
        clearInterval(this.timer);
        this.lostReason = lost;
        onLost(lost);
      }
    }, Math.max(1, Math.floor(leaseMs / 4)));
    this.timer.unref();
  }

  /** Why the lease was lost, or undefined while this process holds it. */
  get lost(): string | undefined {
    return this.lostReason;
  }

  /**
   * Takes the lock of `dir`, waiting up to one lease for a lock that may be stale; throws SpoolDirError naming the
   * directory when another live process holds it.
   */
  static take(dir: string, naming: SpoolNaming, options: SpoolLockOptions & { onLost(reason: string): void }): SpoolLock {
    const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    const file = join(dir, LOCK_FILE);
    const me: LockRecord = { token: randomBytes(12).toString("hex"), pid: process.pid, host: hostname(), pidns: pidNamespace(), beat: 0 };
    let waitedMs = 0;
    let told = false;
    for (;;) {
      try {
        return new SpoolLock(file, openSync(file, "wx", 0o600), me, leaseMs, options.onLost);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const seen = readLock(file);
      if (seen === undefined) continue;
      const holder = parse(seen);
      if (holder !== undefined && holder.host === me.host && holder.pidns === me.pidns) {
        // Here a pid means one process: a live other one holds the lock; a gone one, or this very process (a
        // lock it left), does not.
        if (holder.pid !== me.pid && processAlive(holder.pid)) throw SpoolLock.refusal(dir, naming, holder, "it runs");
      } else {
        if (!told) options.onWait?.(describeHolder(holder), leaseMs);
        told = true;
        const started = performance.now();
        const outcome = SpoolLock.watch(file, seen, leaseMs);
        waitedMs += performance.now() - started;
        if (outcome === "renewed") throw SpoolLock.refusal(dir, naming, holder, "its lease was just renewed");
        if (outcome === "gone") continue;
      }
      SpoolLock.breakStale(file, seen, me.token);
      if (waitedMs > 10 * leaseMs) throw new SpoolDirError(naming.key, dir, `could not take ${LOCK_FILE} within ${Math.round(waitedMs / 1000)} s: other processes keep taking it; give each ${naming.each} its own ${naming.key}`);
    }
  }

  private static refusal(dir: string, naming: SpoolNaming, holder: LockRecord | undefined, why: string): SpoolDirError {
    return new SpoolDirError(naming.key, dir, `in use by another ${naming.owner} (${describeHolder(holder)}: ${why}); give each ${naming.each} its own ${naming.key}`);
  }

  /** Watches the lock for a lease: "renewed" when its content changes, "gone" when it disappears, else "still". */
  private static watch(file: string, seen: string, leaseMs: number): "renewed" | "gone" | "still" {
    const until = performance.now() + leaseMs;
    while (performance.now() < until) {
      sleepSync(Math.min(WATCH_STEP_MS, Math.max(1, until - performance.now())));
      const now = readLock(file);
      if (now === undefined) return "gone";
      if (now !== seen) return "renewed";
    }
    return "still";
  }

  /** Moves a stale lock aside, atomically and only if it is still the one judged stale. */
  private static breakStale(file: string, seen: string, token: string): void {
    const aside = `${file}.stale-${token}`;
    try {
      renameSync(file, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    if (readFileSync(aside, "utf8") !== seen) {
      // A live lock after all: back where it was, unless LOCK exists again (then its owner learns it lost it).
      try {
        linkSync(aside, file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
    }
    unlinkSync(aside);
  }

  private write(): void {
    const text = Buffer.from(`${JSON.stringify(this.record)}\n`);
    ftruncateSync(this.fd, 0);
    writeSync(this.fd, text, 0, text.length, 0);
  }

  /** One heartbeat; returns why the lease is lost, if it is. */
  private renew(): string | undefined {
    let ino: number;
    try {
      ino = statSync(this.file).ino;
    } catch (error) {
      return `${this.file} is gone (${(error as NodeJS.ErrnoException).code})`;
    }
    if (ino !== this.ino) return `${this.file} was taken over by another process (this one did not renew its lease in time)`;
    this.record.beat++;
    try {
      this.write();
    } catch (error) {
      return `cannot renew ${this.file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
    }
    return undefined;
  }

  /** Stops renewing and removes LOCK if it is still ours. */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    try {
      if (this.lostReason === undefined && statSync(this.file).ino === this.ino) unlinkSync(this.file);
    } catch {
      // Already gone: nothing to release.
    }
    closeSync(this.fd);
  }
}
