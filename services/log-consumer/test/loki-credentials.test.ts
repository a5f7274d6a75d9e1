/**
 * Loki credentials against the real Loki binary: behind a hand-written Node HTTP(S) reverse proxy (the testkit's checkingProxy)
 * that checks the Authorization header (as nginx or Grafana Cloud's gateway would) and forwards to Loki, and a
 * Loki with auth_enabled: true, which requires the tenant header. Refused credentials must keep every batch
 * (spooled, retried, /readyz and the metric saying so) and deliver all of it once they are fixed; no credential
 * may appear in the consumer's log, its /metrics or its errors.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LokiHandle } from "@aixcl/testkit";
import { checkingProxy, requireComponent, startLoki, tempDir, testCertificates } from "@aixcl/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningConsumer } from "../src/index.js";
import { startConsumer } from "../src/index.js";
import { total } from "./helpers.js";
import type { TestBus } from "./support.js";
import { captureLog, consumerConfig, publishNumbered, startTestBus, until } from "./support.js";

const loki = requireComponent("loki");
if (loki.skip) console.warn(`skipping the Loki credentials tests: ${loki.skip}`);

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;



/** GET query_range with a tenant header: the testkit's query has none. */
async function linesOf(baseUrl: string, logql: string, tenant?: string): Promise<string[]> {
  const params = new URLSearchParams({ query: logql, start: String(BigInt(Date.now() - 3600_000) * 1_000_000n), limit: "5000" });
  const res = await fetch(`${baseUrl}/loki/api/v1/query_range?${params}`, { headers: tenant ? { "X-Scope-OrgID": tenant } : {} });
  const body = await res.text();
  if (!res.ok) throw new Error(`query_range answered ${res.status}: ${body}`);
  return (JSON.parse(body) as { data: { result: { values: [string, string][] }[] } }).data.result.flatMap((s) => s.values.map((v) => v[1]));
}

async function readyz(consumer: RunningConsumer): Promise<Record<string, boolean>> {
  return ((await (await fetch(`${consumer.opsUrl}/readyz`)).json()) as { checks: Record<string, boolean> }).checks;
}

const metricsText = async (consumer: RunningConsumer) => (await fetch(`${consumer.opsUrl}/metrics`)).text();
const fast = { batch: { max_wait: "50ms" }, retry: { min_backoff: "50ms", max_backoff: "300ms", max_retries: 2 }, ops: { port: 0 } };

describe.skipIf(loki.skip !== undefined)("Loki credentials, against the real Loki", () => {
  let handle: LokiHandle;
  let bus: TestBus;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    handle = await startLoki();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => handle?.stop());

  async function consumer(settings: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
    bus = await startTestBus();
    cleanups.push(async () => bus.close());
    const capture = captureLog();
    const started = await startConsumer(consumerConfig({ bus: { host: "127.0.0.1", sub_port: bus.port }, ...fast, ...settings }, env), { log: capture.log });
    cleanups.push(() => started.stop());
    await bus.waitForSubscriber("logs.");
    return { consumer: started, lines: capture.lines };
  }

  it("a proxy refusing the password: batches are kept, /readyz and the metric say so; fixed, everything arrives once", { timeout: 60_000 }, async () => {
    const proxy = await checkingProxy(handle.url, basic("aixcl", "right-pa55"));
    cleanups.push(proxy.close);
    const passwordFile = join(tempDir("secrets"), "loki_password");
    writeFileSync(passwordFile, "wrong-pa55\n");
    const { consumer: c, lines } = await consumer(
      { loki: { url: proxy.url, username: "aixcl" }, labels: { static: { run: "refused_then_fixed" } } },
      { LOKI_PASSWORD_FILE: passwordFile },
    );

    await publishNumbered(bus, 50);
    // Refused over and over, far past retry.max_retries (2): nothing may be dropped.
    await until("8 refused attempts", async () => (await total(c.metrics.retries)) >= 8, 20_000);
    expect(await total(c.metrics.dropped)).toBe(0);
    expect(await total(c.metrics.pushedEntries)).toBe(0);
    expect(await readyz(c)).toMatchObject({ loki_credentials_accepted: false });
    expect((await fetch(`${c.opsUrl}/readyz`)).status).toBe(503);
    expect(await metricsText(c)).toMatch(/^aixcl_log_consumer_loki_auth_refused 1$/m);
    expect(await metricsText(c)).toMatch(/^aixcl_log_consumer_push_retries_total\{reason="unauthorized"\} \d+$/m);
    expect(c.spoolMetrics && (await total(c.spoolMetrics.entries))).toBe(50);
    expect(lines.some((l) => l.msg === "Loki refused the consumer's credentials; batches are kept and retried until they are fixed")).toBe(true);
    expect(proxy.seen.map((r) => r.authorization)).toContain(basic("aixcl", "wrong-pa55"));

    // The secret is rotated in its file (as a Docker secret would be): read again at the next refusal.
    writeFileSync(passwordFile, "right-pa55\n");
    const got = await until("all 50 in Loki", async () => (await linesOf(handle.url, '{run="refused_then_fixed"}')).length >= 50, 20_000).then(() =>
      linesOf(handle.url, '{run="refused_then_fixed"}'),
    );
    expect(new Set(got).size).toBe(50);
    expect(got).toHaveLength(50);
    expect(await total(c.metrics.dropped)).toBe(0);
    expect(await total(c.metrics.pushedEntries)).toBe(50);
    expect(await readyz(c)).toMatchObject({ loki_credentials_accepted: true, loki_ready: true });
    expect(await metricsText(c)).toMatch(/^aixcl_log_consumer_loki_auth_refused 0$/m);
    expect(lines.some((l) => l.msg === "Loki accepts the consumer's credentials again")).toBe(true);

    const shown = JSON.stringify(lines) + (await metricsText(c));
    expect(shown).not.toMatch(/pa55|YWl4Y2w6/);
  });

  it("user info in LOKI_URL becomes basic auth, and is shown redacted", { timeout: 30_000 }, async () => {
    const proxy = await checkingProxy(handle.url, basic("aixcl", "p@ss:w0rd"));
    cleanups.push(proxy.close);
    const url = proxy.url.replace("://", "://aixcl:p%40ss%3Aw0rd@");
    const { consumer: c, lines } = await consumer({ labels: { static: { run: "user_info" } } }, { LOKI_URL: url });
    await publishNumbered(bus, 10);
    await handle.waitFor('{run="user_info"}', 10, 15_000);
    expect(await total(c.metrics.dropped)).toBe(0);
    expect(lines.find((l) => l.msg === "log consumer started")).toMatchObject({ loki: proxy.url.replace("://", "://***@"), loki_auth: "basic" });
    expect(lines.find((l) => /credentials go over plain http/.test(String(l.msg)))).toMatchObject({ level: "warn", loki: proxy.url });
    expect(JSON.stringify(lines) + (await metricsText(c))).not.toMatch(/w0rd/);
  });

  it("TLS with a custom CA and a bearer token from a file", { timeout: 30_000 }, async () => {
    const certs = testCertificates("IP:127.0.0.1");
    const proxy = await checkingProxy(handle.url, "Bearer t0ken-xyz", { tls: certs });
    cleanups.push(proxy.close);
    const tokenFile = join(tempDir("secrets"), "loki_token");
    writeFileSync(tokenFile, "t0ken-xyz\n");
    const { consumer: c, lines } = await consumer({ loki: { url: proxy.url, bearer_token_file: tokenFile, ca_file: certs.caFile }, labels: { static: { run: "tls" } } });
    await publishNumbered(bus, 10);
    await handle.waitFor('{run="tls"}', 10, 15_000);
    expect(await readyz(c)).toMatchObject({ loki_ready: true, loki_credentials_accepted: true });
    expect(JSON.stringify(lines)).not.toMatch(/t0ken/);
  });

  // What docker-compose.yml gives the consumer for a remote Loki (AIXCL_LOKI_* of .env): the same variables, with
  // the CA and the password as files (there a bind mount and a compose secret).
  it("TLS with a custom CA and basic auth from a password file, through the variables the compose stack sets", { timeout: 30_000 }, async () => {
    const certs = testCertificates("IP:127.0.0.1");
    const proxy = await checkingProxy(handle.url, basic("edge-1", "pa55-over-tls"), { tls: certs });
    cleanups.push(proxy.close);
    const passwordFile = join(tempDir("secrets"), "loki_password");
    writeFileSync(passwordFile, "pa55-over-tls", { mode: 0o600 });
    const { consumer: c, lines } = await consumer(
      { labels: { static: { run: "tls_basic" } } },
      { LOKI_URL: proxy.url, LOKI_CA_FILE: certs.caFile, LOKI_USERNAME: "edge-1", LOKI_PASSWORD_FILE: passwordFile, LOKI_BEARER_TOKEN_FILE: "", LOKI_TENANT_ID: "" },
    );
    await publishNumbered(bus, 10);
    await handle.waitFor('{run="tls_basic"}', 10, 15_000);
    expect(proxy.url).toMatch(/^https:/);
    expect(proxy.seen.every((r) => r.authorization === basic("edge-1", "pa55-over-tls"))).toBe(true);
    expect(await total(c.metrics.dropped)).toBe(0);
    expect(await readyz(c)).toMatchObject({ loki_ready: true, loki_credentials_accepted: true });
    expect(lines.find((l) => l.msg === "log consumer started")).toMatchObject({ loki: proxy.url, loki_auth: "basic" });
    expect(lines.some((l) => /credentials go over plain http/.test(String(l.msg)))).toBe(false);
    expect(JSON.stringify(lines) + (await metricsText(c))).not.toMatch(/pa55|ZWRnZS0x/);
  });

  it("without the CA the proxy's certificate is not trusted: retried as a connection error, never sent", { timeout: 30_000 }, async () => {
    const certs = testCertificates("IP:127.0.0.1");
    const proxy = await checkingProxy(handle.url, "Bearer t0ken-xyz", { tls: certs });
    cleanups.push(proxy.close);
    const { consumer: c } = await consumer({ loki: { url: proxy.url, bearer_token: "t0ken-xyz" }, labels: { static: { run: "untrusted" } } });
    await publishNumbered(bus, 5);
    await until("a refused TLS handshake", async () => (await metricsText(c)).includes('push_retries_total{reason="connection_error"}'));
    expect(proxy.seen).toHaveLength(0);
  });
});

describe.skipIf(loki.skip !== undefined)("a Loki with auth_enabled: true", () => {
  let handle: LokiHandle;
  beforeAll(async () => {
    handle = await startLoki({ args: ["-auth.enabled=true"] });
  });
  afterAll(async () => handle?.stop());

  it("without the tenant id every push is refused and kept; with it, the same spool is delivered to that tenant", { timeout: 60_000 }, async () => {
    const bus = await startTestBus();
    const spoolDir = join(tempDir("tenant"), "spool");
    const settings = { bus: { host: "127.0.0.1", sub_port: bus.port }, ...fast, loki: { url: handle.url }, spool: { dir: spoolDir }, shutdown: { flush_deadline: "500ms" }, labels: { static: { run: "tenant" } } };
    try {
      const anonymous = await startConsumer(consumerConfig(settings), { log: captureLog().log });
      await bus.waitForSubscriber("logs.");
      await publishNumbered(bus, 20);
      await until("refused pushes", async () => (await total(anonymous.metrics.retries)) >= 4, 20_000);
      expect(await readyz(anonymous)).toMatchObject({ loki_credentials_accepted: false });
      expect(await total(anonymous.metrics.dropped)).toBe(0);
      await anonymous.stop();

      const tenant = await startConsumer(consumerConfig({ ...settings, loki: { url: handle.url, tenant_id: "team-a" } }), { log: captureLog().log });
      try {
        await until("20 in team-a's logs", async () => (await linesOf(handle.url, '{run="tenant"}', "team-a")).length >= 20, 20_000);
        expect(await linesOf(handle.url, '{run="tenant"}', "team-a")).toHaveLength(20);
        expect(await total(tenant.metrics.dropped)).toBe(0);
        expect(await readyz(tenant)).toMatchObject({ loki_credentials_accepted: true });
      } finally {
        await tenant.stop();
      }
    } finally {
      bus.close();
    }
  });
});
