import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { curveKeyPair, Subscriber } from "zeromq";
import type { LogEntry } from "@aixcl/wire";
import { decodeLogMessage } from "@aixcl/wire";
import { createLogger, curveClientOptions, loadClientKeys, z85Decode } from "@aixcl/client-logger";
import { generateKeys, stackKeyDirs } from "@aixcl/service-runtime";
import { metricSample, startBrokerProcess, tempDir } from "@aixcl/testkit";
import { decideZap } from "../src/zap.js";
import { Collector, testBroker, until } from "./bus.js";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

// A counter that was never incremented is not exposed: that reads as 0.
const metric = async (url: string, sample: string) => (await metricSample(url, sample)) ?? 0;

/** A client's keys as its own folder of the stack's keys/ holds them. */
const clientKeys = (root: string, name: string) => loadClientKeys(stackKeyDirs(root).client(name), name);

async function curveBus() {
  const dir = tempDir("curve");
  generateKeys(dir, ["app", "log-consumer"]);
  const broker = await testBroker({}, {}, { keys_dir: stackKeyDirs(dir).broker });
  cleanup.push(() => broker.close());
  return { dir, broker };
}

function subscribe(endpoint: string, options: ConstructorParameters<typeof Subscriber>[0] = {}): Collector {
  const socket = new Subscriber({ linger: 0, ...options });
  socket.connect(endpoint);
  socket.subscribe("logs.");
  const collector = new Collector(socket);
  cleanup.push(() => collector.close());
  return collector;
}

describe("CurveZMQ with an allow-list", () => {
  it("delivers between allow-listed clients, encrypted end to end, and holds the logger while the broker stops", async () => {
    const { dir, broker } = await curveBus();
    expect(await metric(broker.ops.url, "aixcl_broker_curve_enabled")).toBe(1);
    const sub = subscribe(broker.subEndpoint, curveClientOptions(clientKeys(dir, "log-consumer")));
    const log = createLogger({ subsystem: "s", module: "m", endpoint: broker.pubEndpoint, curve: clientKeys(dir, "app") });
    cleanup.push(() => log.close());
    await until(() => log.connected, 5000, "allowed logger to see the subscription");
    log.info("secret hello");
    const [frames] = await sub.take(1);
    expect((decodeLogMessage(frames ?? []) as { entry: LogEntry }).entry.message).toBe("secret hello");
    expect(await metric(broker.ops.url, 'aixcl_broker_auth_decisions_total{result="allowed",reason="listed"}')).toBe(2);

    // A stop asks publishers to hold through the broker's own inproc subscriber, which needs no key.
    let closed = false;
    const closing = broker.close().then(() => (closed = true));
    await until(() => !log.connected, 2000, "the logger to hold while the broker stops");
    expect(closed).toBe(false);
    log.info("held for the next broker");
    await closing;
    expect(log.stats()).toMatchObject({ buffered: 1, published: 1 });
  });

  it("refuses and counts an unknown client key, on either side", async () => {
    const { dir, broker } = await curveBus();
    const stranger = curveKeyPair();
    const serverKey = clientKeys(dir, "app").serverKey;
    const strangerOptions = { curveServerKey: serverKey, curvePublicKey: stranger.publicKey, curveSecretKey: stranger.secretKey };
    const sub = subscribe(broker.subEndpoint, strangerOptions);
    const log = createLogger({ subsystem: "s", module: "m", endpoint: broker.pubEndpoint, curve: { serverKey, ...stranger } });
    cleanup.push(() => log.close());
    await until(async () => (await metric(broker.ops.url, 'aixcl_broker_auth_decisions_total{result="denied",reason="unknown_key"}')) >= 2, 5000, "two denials");
    expect(await metric(broker.ops.url, 'aixcl_broker_handshake_failures_total{side="publishers",kind="auth"}')).toBeGreaterThanOrEqual(1);
    expect(await metric(broker.ops.url, 'aixcl_broker_handshake_failures_total{side="subscribers",kind="auth"}')).toBeGreaterThanOrEqual(1);
    log.info("must not arrive");
    expect(log.connected).toBe(false);
    expect(await sub.take(1, 500)).toEqual([]);
  });

  it("refuses and counts plaintext peers when keys are configured", async () => {
    const { broker } = await curveBus();
    const sub = subscribe(broker.subEndpoint);
    const log = createLogger({ subsystem: "s", module: "m", endpoint: broker.pubEndpoint });
    cleanup.push(() => log.close());
    await until(async () => (await metric(broker.ops.url, 'aixcl_broker_handshake_failures_total{side="subscribers",kind="protocol"}')) >= 1, 5000, "plaintext subscriber refused");
    await until(async () => (await metric(broker.ops.url, 'aixcl_broker_handshake_failures_total{side="publishers",kind="protocol"}')) >= 1, 5000, "plaintext publisher refused");
    log.info("must not arrive");
    expect(log.connected).toBe(false);
    expect(await sub.take(1, 500)).toEqual([]);
  });

  it("SIGHUP reloads the allow list: a client added later is admitted, connected clients go on, a broken list is refused and the old one kept", async () => {
    const dir = tempDir("curve-reload");
    generateKeys(dir, ["app", "log-consumer"]);
    const broker = await startBrokerProcess({ MESSAGE_BUS_KEYS_DIR: stackKeyDirs(dir).broker });
    cleanup.push(() => broker.stop());
    const sub = subscribe(broker.subEndpoint, curveClientOptions(clientKeys(dir, "log-consumer")));
    const app = createLogger({ subsystem: "s", module: "app", endpoint: broker.pubEndpoint, curve: clientKeys(dir, "app") });
    cleanup.push(() => app.close());
    await until(() => app.connected, 5000, "the listed logger to connect");

    generateKeys(dir, ["late"]); // as `./aixcl keys late` does: a new pair, and allowed_clients rewritten
    const lateLogger = () => {
      const log = createLogger({ subsystem: "s", module: "late", endpoint: broker.pubEndpoint, curve: clientKeys(dir, "late") });
      cleanup.push(() => log.close());
      return log;
    };
    // libzmq does not retry a connection that failed authentication: the refused logger is closed, as an
    // application would be restarted after its keys were made.
    const early = lateLogger();
    const denied = 'aixcl_broker_auth_decisions_total{result="denied",reason="unknown_key"}';
    await until(async () => (await metric(broker.opsUrl, denied)) >= 1, 5000, "the late client refused before the reload");
    expect(early.connected).toBe(false);
    await early.close();

    broker.signal("SIGHUP");
    await until(async () => (await metric(broker.opsUrl, 'aixcl_broker_allow_list_reloads_total{result="ok"}')) >= 1, 5000, "the reload");
    const late = lateLogger();
    await until(() => late.connected, 10_000, "the late client admitted after SIGHUP");
    app.info("from app after the reload");
    late.info("from late after the reload");
    const messages = (await sub.take(2)).map((frames) => (decodeLogMessage(frames) as { entry: LogEntry }).entry.message);
    expect(messages.sort()).toEqual(["from app after the reload", "from late after the reload"]);
    // A message can reach the subscriber before the sender's count of it.
    await until(() => app.stats().published === 1, 5000, "the app logger to count its send");
    expect(app.stats()).toMatchObject({ published: 1, dropped: { buffer_full: 0, closed: 0, too_large: 0 } });

    writeFileSync(join(stackKeyDirs(dir).broker, "allowed_clients"), "not a key list\n");
    broker.signal("SIGHUP");
    await until(async () => (await metric(broker.opsUrl, 'aixcl_broker_allow_list_reloads_total{result="failed"}')) >= 1, 5000, "the failed reload");
    expect(broker.exitStatus).toBeUndefined();
    app.info("after a broken list");
    const [frames] = await sub.take(1);
    expect((decodeLogMessage(frames ?? []) as { entry: LogEntry }).entry.message).toBe("after a broken list");
  });

  it("a keys_dir without broker keys runs plaintext and says so", async () => {
    const broker = await testBroker({}, {}, { keys_dir: tempDir("nokeys") });
    cleanup.push(() => broker.close());
    expect(await metric(broker.ops.url, "aixcl_broker_curve_enabled")).toBe(0);
  });
});

describe("ZAP decisions", () => {
  const client = curveKeyPair();
  const key = Buffer.from(z85Decode(client.publicKey) as Uint8Array);
  const policies = new Map([["aixcl-1", { allowed: [{ key, name: "app" }], onDecision() {} }]]);
  const request = (overrides: Partial<Record<"version" | "domain" | "mechanism", string>>, credentials: Buffer[] = [key]) => [
    Buffer.from("peer"), Buffer.alloc(0), Buffer.from(overrides.version ?? "1.0"), Buffer.from("7"), Buffer.from(overrides.domain ?? "aixcl-1"),
    Buffer.from("127.0.0.1"), Buffer.alloc(0), Buffer.from(overrides.mechanism ?? "CURVE"), ...credentials,
  ];

  it.each([
    ["a listed key", request({}), { allowed: true, client: "app" }, "200"],
    ["an unknown key", request({}, [Buffer.alloc(32, 1)]), { allowed: false, reason: "unknown_key" }, "400"],
    ["another mechanism", request({ mechanism: "PLAIN" }, [Buffer.from("u"), Buffer.from("p")]), { allowed: false, reason: "unsupported_mechanism" }, "400"],
    ["an unknown domain", request({ domain: "other" }), { allowed: false, reason: "unknown_domain" }, "400"],
    ["a wrong version", request({ version: "2.0" }), { allowed: false, reason: "malformed" }, "500"],
  ])("%s", (_, frames, outcome, status) => {
    const decision = decideZap(frames, policies);
    expect(decision.outcome).toEqual(outcome);
    expect(decision.reply.map(String).slice(2, 5)).toEqual(["1.0", "7", status]);
  });
});
