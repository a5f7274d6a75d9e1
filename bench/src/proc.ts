import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

/** Peak resident set size of a live process, from /proc (VmHWM), in bytes. */
export function peakRssBytes(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** Resident set size of a live process now, from /proc (VmRSS), in bytes. */
export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** User+system CPU time of a live process, from /proc/<pid>/stat, in microseconds. */
export function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / 100) * 1e6;
}

/** Starts this same script in another role; `ready` and `done` are the first two messages the child sends. */
export function role<T>(script: string, args: string[]): { child: ChildProcess; ready: Promise<T>; done: Promise<T> } {
  const child = fork(script, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const replies: { resolve(m: T): void; reject(e: Error): void }[] = [];
  const promises = [0, 1].map(() => new Promise<T>((resolve, reject) => replies.push({ resolve, reject })));
  let received = 0;
  child.on("message", (m) => replies[received++]?.resolve(m as T));
  child.on("exit", (code) => {
    for (const reply of replies.slice(received)) reply.reject(new Error(`${args[0]} exited with ${code} before replying`));
  });
  // A role that is killed after replying is not an error; callers await only what they need.
  for (const p of promises) p.catch(() => undefined);
  return { child, ready: promises[0] as Promise<T>, done: promises[1] as Promise<T> };
}

export function formatRate(perSecond: number): string {
  return `${Math.round(perSecond).toLocaleString("en-US")} msg/s`;
}
