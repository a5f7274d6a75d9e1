/**
 * One consumer per spool directory across hosts: real consumer processes (the build) on one directory, one of
 * them made to see another host name (fake-hostname.mjs), as two containers sharing a volume would. The second is
 * refused while the first lives and takes over once the first is killed and its lease has expired. Short leases.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { ConsumerProcess, ServiceProcess, requireBuilt, runCleanups } from "./processes.js";
import { writeConsumerConfig } from "./support.js";

const consumerMain = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const fakeHostname = fileURLToPath(new URL("./fake-hostname.mjs", import.meta.url));

/** Env of a consumer that believes it runs on `host`. */
const onHost = (host: string) => ({ NODE_OPTIONS: `--import=${fakeHostname}`, TEST_FAKE_HOSTNAME: host });

/** A consumer that must not start: its exit code and error line. */
async function refused(configFile: string, env: NodeJS.ProcessEnv) {
  const proc = new ServiceProcess(consumerMain, { ...env, LOG_CONSUMER_CONFIG: configFile });
  const code = await proc.exited;
  return { code, error: String(proc.lines.find((l) => l.msg === "cannot start")?.error ?? JSON.stringify(proc.lines)) };
}

describe("one consumer per spool directory, across hosts", () => {
  afterEach(runCleanups);

  it("a consumer on another host is refused while the first renews its lease, and takes over after it dies", { timeout: 60_000 }, async () => {
    requireBuilt();
    // Loki and the bus are not needed: the lock is taken at start, before either is reached.
    const config = writeConsumerConfig({ loki: { url: "http://127.0.0.1:9" }, spool: { lease: "1s" }, ops: { port: 0 } });
    const dir = (JSON.parse(readFileSync(config, "utf8")) as { spool: { dir: string } }).spool.dir;
    const first = await ConsumerProcess.start(config);

    const second = await refused(config, onHost("other-host"));
    expect(second.code).toBe(1);
    expect(second.error).toBe(
      `spool.dir ${dir}: in use by another log consumer (pid ${/"pid":(\d+)/.exec(readFileSync(join(dir, "LOCK"), "utf8"))?.[1]} on host ${hostname()}: its lease was just renewed); give each consumer its own spool.dir`,
    );

    first.kill("SIGKILL");
    await first.exited;
    const started = performance.now();
    const taker = await ConsumerProcess.start(config, onHost("other-host"));
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
    expect(taker.lines.some((l) => /waiting up to 1000 ms for its lease to expire/.test(String(l.msg)))).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, "LOCK"), "utf8"))).toMatchObject({ host: "other-host" });

    // And the other way round: this host is now the newcomer, refused while the other host's consumer lives.
    const third = await refused(config, {});
    expect(third.error).toMatch(/in use by another log consumer \(pid \d+ on host other-host: its lease was just renewed\)/);
    expect((await fetch(`${taker.opsUrl}/healthz`)).status).toBe(200);
  });
});
