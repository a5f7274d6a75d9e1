/** The sender's handling of refused credentials, against a scripted PushClient: no sockets. */
import { fullEntry } from "@aixcl/testkit";
import { describe, expect, it } from "vitest";
import type { PushClient } from "../src/loki-client.js";
import { createMetrics } from "../src/metrics.js";
import { MemoryQueue } from "../src/queue.js";
import type { PushResult } from "../src/retry.js";
import { RetryPolicy } from "../src/retry.js";
import { Sender } from "../src/sender.js";
import { lokiEntries, sealedOf, total, valuesBy } from "./helpers.js";
import { captureLog, until } from "./support.js";

const answer = (status: number): PushResult => ({ kind: "response", status, body: status === 401 ? "no org id\n" : "" });

/** A Loki that answers each push with the next status of `script`, then with `then` (which a test may change). */
function scripted(script: number[], then: number): PushClient & { pushes: number; then: number } {
  return {
    pushes: 0,
    then,
    async push() {
      const status = script[this.pushes++] ?? this.then;
      return answer(status);
    },
  };
}

function sender(client: PushClient) {
  const metrics = createMetrics({ bufferBytes: () => 0, bufferEntries: () => 0, pushesInFlight: () => 0 });
  const queue = new MemoryQueue();
  const { log, lines } = captureLog();
  const policy = new RetryPolicy({ minBackoffMs: 1, maxBackoffMs: 2, maxRetries: 2 }, () => 0);
  const s = new Sender(queue, client, policy, metrics, log, { maxInFlight: 1 });
  queue.push(sealedOf(lokiEntries([fullEntry({ message: "one" }), fullEntry({ message: "two" })])));
  s.kick();
  return { s, metrics, lines };
}

describe("Sender and refused credentials", () => {
  it("retries 401/403 past max_retries, says so while they last, and delivers once Loki accepts", async () => {
    const client = scripted([403], 401);
    const { s, metrics, lines } = sender(client);
    await until("refused 6 times, 3 times max_retries", () => client.pushes >= 6);
    expect(s.credentialsRefused).toBe(true);
    expect((await metrics.lokiAuthRefused.get()).values[0]?.value).toBe(1);
    expect(await total(metrics.dropped)).toBe(0);
    client.then = 204;
    await until("delivered", async () => (await total(metrics.pushedEntries)) === 2);
    expect(await total(metrics.dropped)).toBe(0);
    expect(await valuesBy(metrics.retries)).toEqual({ unauthorized: client.pushes - 1 });
    expect(s.credentialsRefused).toBe(false);
    expect((await metrics.lokiAuthRefused.get()).values[0]?.value).toBe(0);
    // One line when they are refused, one when accepted again; each retry has its own warning.
    expect(lines.filter((l) => l.level === "error").map((l) => l.msg)).toEqual(["Loki refused the consumer's credentials; batches are kept and retried until they are fixed"]);
    expect(lines.filter((l) => l.msg === "Loki accepts the consumer's credentials again")).toHaveLength(1);
  });

  it("refusals do not use up the retries of a later outage", async () => {
    const client = scripted([401, 401, 401, 401, 500, 500], 204);
    const { metrics } = sender(client);
    await until("delivered", async () => (await total(metrics.pushedEntries)) === 2);
    expect(await valuesBy(metrics.retries)).toEqual({ unauthorized: 4, server_error: 2 });
    expect(await total(metrics.dropped)).toBe(0);
  });
});
