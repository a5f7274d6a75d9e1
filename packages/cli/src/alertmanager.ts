/**
 * Just enough of Alertmanager's API v2 for `alerts`: the alerts it holds, firing and suppressed.
 */

/** An alert as GET /api/v2/alerts returns it (the fields the CLI uses). */
export interface AlertOut {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** RFC 3339. */
  startsAt: string;
  /** active: firing and notified; suppressed: silenced or inhibited; unprocessed: just received. */
  state: "active" | "suppressed" | "unprocessed";
}

/** Alertmanager could not be asked or answered with an error; the message says which and what to check. */
export class AlertmanagerError extends Error {
  override name = "AlertmanagerError";
}

const REQUEST_TIMEOUT_MS = 15_000;

export class AlertmanagerClient {
  constructor(readonly baseUrl: string) {}

  /** Every alert Alertmanager holds that has not ended, oldest first. */
  async alerts(signal?: AbortSignal): Promise<AlertOut[]> {
    let res: Response;
    try {
      const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
      res = await fetch(`${this.baseUrl}/api/v2/alerts`, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    } catch (error) {
      if ((error as Error).name === "AbortError") throw error;
      if ((error as Error).name === "TimeoutError") throw new AlertmanagerError(`Alertmanager at ${this.baseUrl} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`);
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new AlertmanagerError(
        `Alertmanager at ${this.baseUrl} is not reachable (${cause?.code ?? cause?.message ?? (error as Error).message}). Is the stack running? Check with: ./aixcl status`,
      );
    }
    const body = await res.text();
    if (!res.ok) throw new AlertmanagerError(`Alertmanager answered HTTP ${res.status}: ${body.trim().slice(0, 500)}`);
    let raw: { labels?: Record<string, string>; annotations?: Record<string, string>; startsAt?: string; status?: { state?: string } }[];
    try {
      raw = JSON.parse(body) as typeof raw;
    } catch {
      throw new AlertmanagerError(`Alertmanager's answer is not JSON: ${body.slice(0, 200)}`);
    }
    if (!Array.isArray(raw)) throw new AlertmanagerError(`Alertmanager's answer is not a list of alerts: ${body.slice(0, 200)}`);
    return raw
      .map((a) => ({
        labels: a.labels ?? {},
        annotations: a.annotations ?? {},
        startsAt: a.startsAt ?? "",
        state: (a.status?.state ?? "active") as AlertOut["state"],
      }))
      .sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
  }
}
