import { join } from "node:path";
import { requiredBinary, shippedConfig } from "./components.js";
import { ComponentProcess, freePort, launchUntilReady, tempDir } from "./process.js";

export interface PromtailHandle {
  url: string;
  httpPort: number;
  positionsFile: string;
  /** Promtail's process id while it runs (for its CPU time and memory in /proc), else undefined. */
  pid(): number | undefined;
  logs(): string;
  stop(): Promise<void>;
}

export interface StartPromtailOptions {
  /** Base URL of the Loki to push to (e.g. LokiHandle.url). */
  lokiUrl: string;
  /** Directory whose *.log files the shipped `system` job tails (it is /var/log in the stack). */
  varLogDir: string;
  /**
   * Docker endpoint for the shipped `containers` job. Default: a socket path that does not exist, so the
   * job discovers nothing (and logs that) instead of reading this machine's containers.
   */
  dockerHost?: string;
  /** Default: the shipped promtail/promtail-config.yml. */
  configFile?: string;
  readyTimeoutMs?: number;
}

/**
 * Starts the real Promtail from the shipped config file with -config.expand-env=true, as the stack runs it.
 * The Loki URL, the Docker host and the /var/log directory come from the file's ${VAR:-default} references;
 * ports and the positions file from Promtail's flags. Resolves once /ready is 200 (the compose
 * healthcheck's probe; measured: 200 even while the Docker job cannot reach an engine).
 */
export async function startPromtail(opts: StartPromtailOptions): Promise<PromtailHandle> {
  const bin = requiredBinary("promtail");
  const { proc, url, httpPort, positionsFile } = await launchUntilReady("Promtail", "/ready", opts.readyTimeoutMs ?? 30_000, async () => {
    const dir = tempDir("promtail");
    const httpPort = await freePort();
    const positionsFile = join(dir, "positions.yaml");
    const proc = new ComponentProcess({
      name: "promtail",
      bin,
      dir,
      args: [
        `-config.file=${opts.configFile ?? shippedConfig.promtail}`,
        "-config.expand-env=true",
        "-server.http-listen-address=127.0.0.1",
        `-server.http-listen-port=${httpPort}`,
        `-positions.file=${positionsFile}`,
      ],
      env: {
        PROMTAIL_LOKI_URL: opts.lokiUrl,
        PROMTAIL_VARLOG_DIR: opts.varLogDir,
        PROMTAIL_DOCKER_HOST: opts.dockerHost ?? `unix://${join(dir, "no-docker.sock")}`,
      },
    });
    return { proc, url: `http://127.0.0.1:${httpPort}`, httpPort, positionsFile };
  });
  return { url, httpPort, positionsFile, pid: () => proc.pid(), logs: () => proc.logs(), stop: () => proc.stop() };
}
