import { requiredBinary, shippedConfig } from "./components.js";
import { ComponentProcess, freePort, launchUntilReady, tempDir } from "./process.js";

/** One alert as Alertmanager's API v2 (GET /api/v2/alerts) returns it. */
export interface AlertmanagerAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  fingerprint: string;
  generatorURL?: string;
  status: { state: "active" | "suppressed" | "unprocessed"; silencedBy: string[]; inhibitedBy: string[] };
  receivers: { name: string }[];
}

export interface AlertmanagerHandle {
  url: string;
  httpPort: number;
  logs(): string;
  stop(): Promise<void>;
  /** GET /api/v2/alerts: every alert Alertmanager holds that has not ended. */
  alerts(): Promise<AlertmanagerAlert[]>;
  /** Polls alerts() until one matches; throws with what it holds after `timeoutMs` (default 30 s). */
  waitForAlert(match: (alert: AlertmanagerAlert) => boolean, timeoutMs?: number): Promise<AlertmanagerAlert>;
}

export interface StartAlertmanagerOptions {
  /** Default: the shipped alertmanager/alertmanager.yml. */
  configFile?: string;
  readyTimeoutMs?: number;
}

/**
 * Starts the real Alertmanager from the shipped config file, unmodified, as compose runs it (one instance,
 * no cluster port), on a free 127.0.0.1 port with its storage in a fresh temp dir. Resolves once /-/ready is 200.
 */
export async function startAlertmanager(opts: StartAlertmanagerOptions = {}): Promise<AlertmanagerHandle> {
  const bin = requiredBinary("alertmanager");
  const { proc, url, httpPort } = await launchUntilReady("Alertmanager", "/-/ready", opts.readyTimeoutMs ?? 30_000, async () => {
    const dir = tempDir("alertmanager");
    const httpPort = await freePort();
    const proc = new ComponentProcess({
      name: "alertmanager",
      bin,
      dir,
      args: [
        `--config.file=${opts.configFile ?? shippedConfig.alertmanager}`,
        `--storage.path=${dir}/data`,
        "--cluster.listen-address=",
        `--web.listen-address=127.0.0.1:${httpPort}`,
      ],
    });
    return { proc, url: `http://127.0.0.1:${httpPort}`, httpPort };
  });
  const alerts = async (): Promise<AlertmanagerAlert[]> => {
    const res = await fetch(`${url}/api/v2/alerts`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`Alertmanager /api/v2/alerts answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as AlertmanagerAlert[];
  };
  return {
    url,
    httpPort,
    logs: () => proc.logs(),
    stop: () => proc.stop(),
    alerts,
    async waitForAlert(match, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const all = await alerts();
        const found = all.find(match);
        if (found) return found;
        if (Date.now() > deadline) {
          throw new Error(`Alertmanager ${url}: no matching alert within ${timeoutMs} ms; it holds ${JSON.stringify(all.map((a) => a.labels))}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    },
  };
}
