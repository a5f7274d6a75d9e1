import { repoRoot } from "./components.js";
import { ComponentProcess, freePort, launchUntilReady, tempDir } from "./process.js";

export interface BrokerProcess {
  pubEndpoint: string;
  subEndpoint: string;
  /** The ops server (/metrics, /readyz). */
  opsUrl: string;
  /** Sends `signal` to the broker's process (SIGHUP reloads its allow list). */
  signal(signal: NodeJS.Signals): void;
  /** undefined while it runs, else its exit status. */
  readonly exitStatus: number | null | undefined;
  stop(): Promise<void>;
}

/**
 * The real broker as its own process (services/broker/dist/main.js: `tsc -b` first), from the shipped
 * config/message_bus.yaml with `env` over it, on free 127.0.0.1 ports; resolves once /readyz answers.
 *
 * For a test whose own thread may block (pino's transport.end() waits synchronously for its worker): the broker
 * forwards on its process' event loop, and one in the test's process would stop forwarding meanwhile.
 */
export async function startBrokerProcess(env: Record<string, string> = {}): Promise<BrokerProcess> {
  const { proc, url, pub, sub } = await launchUntilReady("broker", "/readyz", 30_000, async () => {
    const [pub, sub, metrics] = [await freePort(), await freePort(), await freePort()];
    const proc = new ComponentProcess({
      name: "broker",
      bin: process.execPath,
      args: [`${repoRoot}services/broker/dist/main.js`],
      dir: tempDir("broker"),
      env: {
        MESSAGE_BUS_CONFIG: `${repoRoot}config/message_bus.yaml`,
        MESSAGE_BUS_HOST: "127.0.0.1",
        MESSAGE_BUS_PUB_PORT: String(pub),
        MESSAGE_BUS_SUB_PORT: String(sub),
        MESSAGE_BUS_METRICS_PORT: String(metrics),
        ...env,
      },
    });
    return { proc, url: `http://127.0.0.1:${metrics}`, pub, sub };
  });
  return {
    pubEndpoint: `tcp://127.0.0.1:${pub}`,
    subEndpoint: `tcp://127.0.0.1:${sub}`,
    opsUrl: url,
    signal: (signal) => {
      const pid = proc.pid();
      if (pid === undefined) throw new Error(`the broker process is not running (exit status ${proc.exitStatus})`);
      process.kill(pid, signal);
    },
    get exitStatus() {
      return proc.exitStatus;
    },
    stop: () => proc.stop(),
  };
}
