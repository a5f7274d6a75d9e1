import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requiredBinary, shippedConfig } from "./components.js";
import { ComponentProcess, freePort, launchUntilReady, tempDir } from "./process.js";

/** One Loki instance of an HA cluster: its URL, and kill/start that keep its data directory (WAL, tokens). */
export interface LokiHaInstance {
  readonly id: string;
  readonly url: string;
  /** Its -common.path-prefix: WAL, tokens, the TSDB head's WAL (tsdb-shipper-active). Kept across kill/start. */
  readonly dataDir: string;
  /** The running process's pid; undefined while it is down. */
  pid(): number | undefined;
  /** SIGKILL: no flush, no ring leave, as a crash or an OOM kill. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data; resolves once /ready answers 200. */
  start(): Promise<void>;
  logs(): string;
}

/** The S3 store under the cluster (versitygw): its URL and the directory its bucket is. */
export interface S3StoreHandle {
  readonly url: string;
  readonly bucketDir: string;
  /** The running process's pid; undefined while it is down. */
  pid(): number | undefined;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface LokiHaCluster {
  readonly instances: LokiHaInstance[];
  readonly store: S3StoreHandle;
  /** The pids of every process of the cluster now running: the instances' and the store's (for CPU and memory). */
  pids(): number[];
  stop(): Promise<void>;
}

const BUCKET = "loki";

/**
 * Three real Lokis from the shipped loki/loki-ha.yml, unmodified, on a real versitygw (the HA profile's default
 * store), all on 127.0.0.1. What the compose file sets per container (instance id and address, compactor mode, S3
 * endpoint, the credentials file) comes through the environment the file reads (-config.expand-env); ports and paths
 * through Loki's own flags. Resolves once all three are /ready.
 */
export async function startLokiHa(): Promise<LokiHaCluster> {
  const root = tempDir("loki-ha");
  const store = await startStore(root);
  const ports = await Promise.all([0, 1, 2].map(async () => ({ http: await freePort(), grpc: await freePort(), gossip: await freePort() })));
  const credentials = join(root, "s3_credentials");
  writeFileSync(credentials, "[default]\naws_access_key_id = testkit\naws_secret_access_key = testkit-secret-0123456789\n");
  const rules = join(root, "rules");
  mkdirSync(join(rules, "fake"), { recursive: true });
  const join_ = ports.map((p) => `127.0.0.1:${p.gossip}`).join(",");
  const instances = ports.map((p, i) => instance(root, i + 1, p, ports[0]!.grpc, join_, credentials, rules, store.url));
  await Promise.all(instances.map((x) => x.start()));
  return {
    instances,
    store,
    pids: () => [...instances.map((x) => x.pid()), store.pid()].filter((pid): pid is number => pid !== undefined),
    async stop() {
      await Promise.all(instances.map((x) => x.kill()));
      await store.stop();
    },
  };
}

function instance(
  root: string,
  n: number,
  p: { http: number; grpc: number; gossip: number },
  compactorGrpc: number,
  members: string,
  credentials: string,
  rules: string,
  s3Url: string,
): LokiHaInstance & { kill(): Promise<void> } {
  const id = `loki-${n}`;
  const dataDir = join(root, id);
  mkdirSync(dataDir, { recursive: true });
  let proc: ComponentProcess | undefined;
  let runs = 0;
  const url = `http://127.0.0.1:${p.http}`;
  return {
    id,
    url,
    dataDir,
    pid: () => proc?.pid(),
    logs: () => proc?.logs() ?? "",
    async kill() {
      const pid = proc?.pid();
      if (pid !== undefined) process.kill(pid, "SIGKILL");
      await proc?.stop(0);
      proc = undefined;
    },
    async start() {
      const launched = await launchUntilReady(`Loki ${id}`, "/ready", 120_000, async () => {
        runs++;
        const dir = join(root, `${id}-run${runs}`);
        mkdirSync(dir, { recursive: true });
        const proc = new ComponentProcess({
          name: id,
          bin: requiredBinary("loki"),
          dir,
          env: {
            LOKI_INSTANCE_ID: id,
            LOKI_INSTANCE_ADDR: "127.0.0.1",
            LOKI_COMPACTOR_MODE: n === 1 ? "main" : "worker",
            LOKI_COMPACTOR_ADDRESS: `127.0.0.1:${compactorGrpc}`,
            LOKI_S3_ENDPOINT: new URL(s3Url).host,
            AWS_SHARED_CREDENTIALS_FILE: credentials,
          },
          args: [
            `-config.file=${shippedConfig.lokiHa}`,
            "-config.expand-env=true",
            "-target=all",
            "-server.http-listen-address=127.0.0.1",
            `-server.http-listen-port=${p.http}`,
            `-server.grpc-listen-port=${p.grpc}`,
            // The file joins loki-1..3:7946 (compose's names, unresolvable here: a warning); these are added to them.
            `-memberlist.join=${members}`,
            `-memberlist.bind-port=${p.gossip}`,
            `-memberlist.advertise-port=${p.gossip}`,
            `-memberlist.nodename=${id}`,
            `-common.path-prefix=${dataDir}`,
            `-ruler.storage.local.directory=${rules}`,
            `-ruler.rule-path=${join(dataDir, "rules-temp")}`,
          ],
        });
        return { proc, url };
      });
      proc = launched.proc;
    },
  };
}

async function startStore(root: string): Promise<S3StoreHandle> {
  const dataDir = join(root, "s3");
  const bucketDir = join(dataDir, BUCKET);
  mkdirSync(bucketDir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let proc: ComponentProcess | undefined;
  let runs = 0;
  const handle: S3StoreHandle = {
    url,
    bucketDir,
    pid: () => proc?.pid(),
    async stop() {
      await proc?.stop();
      proc = undefined;
    },
    async start() {
      runs++;
      const dir = join(root, `s3-run${runs}`);
      mkdirSync(dir, { recursive: true });
      const launched = await launchUntilReady("versitygw", "/health", 30_000, async () => ({
        proc: new ComponentProcess({
          name: "versitygw",
          bin: requiredBinary("versitygw"),
          dir,
          env: { ROOT_ACCESS_KEY: "testkit", ROOT_SECRET_KEY: "testkit-secret-0123456789" },
          args: ["--port", `127.0.0.1:${port}`, "--health", "/health", "--quiet", "posix", dataDir],
        }),
        url,
      }));
      proc = launched.proc;
    },
  };
  await handle.start();
  return handle;
}
