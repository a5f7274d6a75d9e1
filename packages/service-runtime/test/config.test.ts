import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "@aixcl/testkit";
import { BATCH_LIMITS } from "@aixcl/client-logger";
import { bytes, ConfigError, duration, loadConfig, loadMessageBusConfig, messageBusSchema, stringMap } from "../src/index.js";

const dir = tempDir("config");
let n = 0;
function file(text: string): string {
  const path = join(dir, `c${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

function loadError(text: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    loadConfig(messageBusSchema, { file: file(text), env });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("message bus configuration", () => {
  it("the shipped config/message_bus.yaml loads with the document's ports", () => {
    const config = loadMessageBusConfig({ MESSAGE_BUS_CONFIG: new URL("../../../config/message_bus.yaml", import.meta.url).pathname });
    expect(config).toMatchObject({ host: "localhost", pub_port: 5555, sub_port: 5556, broker: { metrics_host: "127.0.0.1", backlog: { max_bytes: 128 * 1024 ** 2, dir: "", fsync: false } } });
    // ZeroMQ counts its queues in messages: full of our clients' largest batches, each queue stays within 32 MiB.
    expect(config.broker.send_hwm * BATCH_LIMITS.maxBytes).toBeLessThanOrEqual(32 * 1024 ** 2);
    expect(config.broker.recv_hwm * BATCH_LIMITS.maxBytes).toBeLessThanOrEqual(32 * 1024 ** 2);
  });

  it("the broker's backlog: env overrides, and a bound too small to hold a few chunks is refused", () => {
    const env = { MESSAGE_BUS_CONFIG: file("broker:\n  backlog:\n    max_bytes: 4MiB\n"), MESSAGE_BUS_BACKLOG_DIR: "/var/lib/broker/backlog" };
    expect(loadMessageBusConfig(env).broker.backlog).toEqual({ max_bytes: 4 * 1024 ** 2, dir: "/var/lib/broker/backlog", fsync: false });
    expect(() => loadMessageBusConfig({ MESSAGE_BUS_CONFIG: file("broker:\n  backlog:\n    max_bytes: 512KiB\n") })).toThrow(/broker\.backlog\.max_bytes: must be at least 1MiB, got 524288 bytes/);
    expect(() => loadMessageBusConfig({ MESSAGE_BUS_CONFIG: file(""), MESSAGE_BUS_BACKLOG_MAX_BYTES: "1000B" })).toThrow(/environment: MESSAGE_BUS_BACKLOG_MAX_BYTES \(broker\.backlog\.max_bytes\): must be at least 1MiB/);
  });

  it("fills defaults for an empty file", () => {
    const config = loadConfig(messageBusSchema, { file: file(""), env: {} });
    expect(config).toMatchObject({ host: "127.0.0.1", pub_port: 5555, sub_port: 5556, broker: { send_hwm: 1_000, recv_hwm: 1_000, count_messages: true, no_drop: false } });
  });

  it("environment variables override the file", () => {
    const env = { MESSAGE_BUS_HOST: "0.0.0.0", MESSAGE_BUS_PUB_PORT: "6555", MESSAGE_BUS_SUB_PORT: "6556" };
    const config = loadConfig(messageBusSchema, { file: file("host: localhost\npub_port: 5555\n"), env });
    expect([config.host, config.pub_port, config.sub_port]).toEqual(["0.0.0.0", 6555, 6556]);
  });

  it.each([
    ["pub_port: 70000\n", "pub_port", /between 0 and 65535/],
    ["pub_port: five\n", "pub_port", /whole number/],
    ["host: 'not a host!'\n", "host", /IP address or host name/],
    ["sub_prot: 5556\n", "sub_prot", /unknown key.*sub_port/],
    ["broker:\n  send_hwm: 0\n", "broker.send_hwm", /between 1 and/],
    ["broker:\n  count_messages: maybe\n", "broker.count_messages", /true or false/],
    ["broker:\n  colour: blue\n", "broker.colour", /unknown key/],
    ["broker: 5\n", "broker", /mapping/],
    ["- a\n- b\n", "(top level)", /mapping/],
    ["pub_port: 5555\nhost: [unclosed\n", "line 3", /not valid YAML/],
  ])("%j fails naming %s", (text, key, reason) => {
    const error = loadError(text);
    expect(error.key).toBe(key);
    expect(error.reason).toMatch(reason);
    expect(error.message).toContain(key);
  });

  it("a bad environment value names the variable and the key", () => {
    const error = loadError("", { MESSAGE_BUS_SUB_PORT: "-1" });
    expect(error.key).toBe("MESSAGE_BUS_SUB_PORT (sub_port)");
    expect(error.source).toBe("environment");
  });

  it("a missing file is an error naming the file", () => {
    expect(() => loadConfig(messageBusSchema, { file: join(dir, "absent.yaml"), env: {} })).toThrow(/absent\.yaml.*cannot read it \(ENOENT\)/);
  });
});

describe("value parsers", () => {
  const parse = <T>(f: { parse(v: unknown): T }, v: unknown) => f.parse(v);
  it("durations and sizes accept units", () => {
    expect([parse(duration(0), "500ms"), parse(duration(0), "10s"), parse(duration(0), "5m"), parse(duration(0), 250)]).toEqual([500, 10_000, 300_000, 250]);
    expect([parse(bytes(0), "1MiB"), parse(bytes(0), "512KB"), parse(bytes(0), "1GiB"), parse(bytes(0), 10)]).toEqual([1_048_576, 512_000, 1_073_741_824, 10]);
    expect(() => parse(duration(0), "soon")).toThrow(/duration/);
    expect(() => parse(bytes(0), "-1MB")).toThrow(/size/);
  });

  it("maps check every key and read k=v lists from the environment", () => {
    const labels = stringMap({}, (k) => (/^[a-z_]+$/.test(k) ? undefined : "not a valid label name"));
    expect(parse(labels, "env=dev, host=laptop")).toEqual({ env: "dev", host: "laptop" });
    expect(() => parse(labels, { "bad-name": "x" })).toThrow(/bad-name.*not a valid label name/);
    expect(() => parse(labels, { ok: 5 })).toThrow(/must be a string/);
  });
});
