import { afterEach, describe, expect, it } from "vitest";
import { Subscriber, XPublisher } from "zeromq";
import { metricSample } from "@aixcl/testkit";
import { topicFamily } from "../src/index.js";
import { Collector, testBroker, until, untilSubscribed } from "./bus.js";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const metric = async (url: string, sample: string) => (await metricSample(url, sample)) ?? Number.NaN;

describe("broker /healthz and /metrics", () => {
  it("counts messages and bytes forwarded, subscriptions and connected peers", async () => {
    const b = await testBroker();
    cleanup.push(() => b.close());
    expect((await fetch(`${b.ops.url}/healthz`)).status).toBe(200);

    const socket = new Subscriber({ linger: 0 });
    socket.connect(b.subEndpoint);
    socket.subscribe("logs.");
    socket.subscribe("events.");
    const sub = new Collector(socket);
    const pub = new XPublisher({ linger: 0 });
    pub.connect(b.pubEndpoint);
    cleanup.push(() => sub.close(), () => pub.close());
    // The broker takes logs. itself, for good: wait for the subscriber's events. to reach the publisher.
    await untilSubscribed(pub, "events.");

    await until(async () => (await metric(b.ops.url, "aixcl_broker_subscriptions")) === 2, 5000, "2 subscriptions");
    expect(await metric(b.ops.url, 'aixcl_broker_connected_peers{side="publishers"}')).toBe(1);
    expect(await metric(b.ops.url, 'aixcl_broker_connected_peers{side="subscribers"}')).toBe(1);

    for (let i = 0; i < 10; i++) await pub.send(["logs.a.b", Buffer.alloc(100)]);
    await pub.send(["events.x", Buffer.alloc(10)]);
    expect(await sub.take(11)).toHaveLength(11);
    await until(async () => (await metric(b.ops.url, 'aixcl_broker_messages_total{family="logs"}')) === 10, 5000, "10 log messages counted");
    expect(await metric(b.ops.url, 'aixcl_broker_bytes_total{family="logs"}')).toBe(10 * (8 + 100));
    expect(await metric(b.ops.url, 'aixcl_broker_messages_total{family="other"}')).toBe(1);
    expect(await metric(b.ops.url, "process_resident_memory_bytes")).toBeGreaterThan(0);

    await sub.close();
    await until(async () => (await metric(b.ops.url, "aixcl_broker_subscriptions")) === 0, 5000, "subscriptions to drop to 0");
    await until(async () => (await metric(b.ops.url, 'aixcl_broker_connected_peers{side="subscribers"}')) === 0, 5000, "subscriber to disconnect");
  });

  it("classifies topics by family on the raw bytes", () => {
    expect(["logs.a.b", "logs/a/b/v1", "logs", "logsx", "metrics.cpu"].map((t) => topicFamily(Buffer.from(t)))).toEqual(["logs", "logs", "other", "other", "other"]);
  });
});
