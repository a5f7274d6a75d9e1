import { readFileSync } from "node:fs";
import { ConfigError } from "@aixcl/service-runtime";
import { describe, expect, it } from "vitest";
import { consumerSchema, loadConsumerConfig } from "../src/index.js";
import { DEFAULT_FIELD_PLACES } from "../src/mapping.js";
import { consumerConfig } from "./support.js";

const SHIPPED = new URL("../../../config/log_consumer.yaml", import.meta.url);

function leafKeys(schema: object, prefix = ""): string[] {
  return Object.entries(schema).flatMap(([key, node]) =>
    typeof (node as { parse?: unknown }).parse === "function" ? [prefix + key] : leafKeys(node as object, `${prefix}${key}.`),
  );
}

function configError(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("no ConfigError");
}

describe("config/log_consumer.yaml", () => {
  it("ships the defaults and is what the service loads", () => {
    const config = loadConsumerConfig({ LOG_CONSUMER_CONFIG: SHIPPED.pathname });
    expect(config).toMatchObject({
      bus: { host: "127.0.0.1", sub_port: 5556, topics: ["logs.", "logs/", "aixcl.batch."] },
      loki: { url: "http://127.0.0.1:3100", encoding: "protobuf", compress: "when_queued", timeout: 10_000, tenant_id: "" },
      batch: { max_bytes: 1024 * 1024, max_wait: 1000 },
      retry: { min_backoff: 500, max_backoff: 300_000, max_retries: 10 },
      ops: { host: "127.0.0.1", port: 9465 },
      spool: { dir: "", max_bytes: 1024 ** 3, fsync: false },
    });
    expect(config.bus).toMatchObject({ max_message_bytes: 1024 * 1024, keys_dir: "", client_name: "log-consumer" });
  });

  it("takes the spool and CURVE settings from the environment", () => {
    const config = loadConsumerConfig({
      LOG_CONSUMER_CONFIG: SHIPPED.pathname,
      LOG_CONSUMER_SPOOL_DIR: "/var/lib/log-consumer/spool",
      LOG_CONSUMER_SPOOL_MAX_BYTES: "2GiB",
      LOG_CONSUMER_SPOOL_FSYNC: "true",
      LOG_CONSUMER_SPOOL_LEASE: "30s",
      LOG_CONSUMER_MAX_MESSAGE_BYTES: "256KiB",
      MESSAGE_BUS_CLIENT_NAME: "consumer-2",
    });
    expect(config.spool).toEqual({ dir: "/var/lib/log-consumer/spool", max_bytes: 2 * 1024 ** 3, fsync: true, lease: 30_000 });
    expect(config.bus).toMatchObject({ max_message_bytes: 256 * 1024, client_name: "consumer-2" });
  });

  it("takes where each field goes from the file and the environment", () => {
    expect(loadConsumerConfig({ LOG_CONSUMER_CONFIG: SHIPPED.pathname }).fields).toEqual(DEFAULT_FIELD_PLACES);
    const config = loadConsumerConfig({ LOG_CONSUMER_CONFIG: SHIPPED.pathname, LOG_CONSUMER_FIELD_FUNCTION: "metadata", LOG_CONSUMER_FIELD_EXTRA: "drop" });
    expect(config.fields).toEqual({ ...DEFAULT_FIELD_PLACES, function: "metadata", extra: "drop" });
    const error = configError(() => loadConsumerConfig({ LOG_CONSUMER_CONFIG: SHIPPED.pathname, LOG_CONSUMER_FIELD_TOPIC: "label" }));
    expect(error.message).toMatch(/fields\.topic.*metadata, line, drop/);
  });

  it("documents every setting with a comment right above it", () => {
    const lines = readFileSync(SHIPPED, "utf8").split("\n");
    for (const key of leafKeys(consumerSchema)) {
      const name = key.split(".").at(-1) ?? key;
      const at = lines.findIndex((l) => new RegExp(`^\\s*#?\\s*${name}:`).test(l));
      expect(at, `${key} is not in the file`).toBeGreaterThan(0);
      expect(lines[at - 1]?.trim().startsWith("#"), `${key} has no comment above it`).toBe(true);
    }
  });

  it("takes environment overrides, LOKI_URL first of all", () => {
    const config = loadConsumerConfig({
      LOG_CONSUMER_CONFIG: SHIPPED.pathname,
      LOKI_URL: "http://loki:3100/",
      MESSAGE_BUS_HOST: "broker",
      LOG_CONSUMER_STATIC_LABELS: "host=laptop,env=dev",
      LOG_CONSUMER_OPS_HOST: "0.0.0.0",
      LOG_CONSUMER_BATCH_MAX_WAIT: "250ms",
    });
    expect(config.loki.url).toBe("http://loki:3100");
    expect(config.bus.host).toBe("broker");
    expect(config.labels.static).toEqual({ host: "laptop", env: "dev" });
    expect(config.ops.host).toBe("0.0.0.0");
    expect(config.batch.max_wait).toBe(250);
  });

  it.each([
    [{ loki: { url: "loki:3100" } }, "loki.url", /http/],
    [{ loki: { url: "http://loki:3100/loki/api/v1/push" } }, "loki.url", /base URL/],
    [{ loki: { encoding: "xml" } }, "loki.encoding", /protobuf, json/],
    [{ batch: { max_bytes: "lots" } }, "batch.max_bytes", /size/],
    [{ retry: { min_backoff: "1s", max_backoff: "10ms" } }, "retry.max_backoff", /at least retry.min_backoff/],
    [{ buffer: { max_bytes: "2MiB" } }, "buffer.max_bytes", /batch.max_bytes x/],
    [{ labels: { static: { service: "x" } } }, "labels.static", /cannot be static/],
    [{ labels: { static: { "bad-name": "x" } } }, "labels.static", /label name/],
    [{ bus: { topics: ["metrics."] } }, "bus.topics", /not a log topic/],
    [{ bus: { sub_port: 70000 } }, "bus.sub_port", /between 0 and 65535/],
    [{ loki: { urll: "x" } }, "loki.urll", /unknown key/],
    [{ spool: { max_bytes: "4MiB" } }, "spool.max_bytes", /batch.max_bytes x \(loki.max_in_flight \+ 2\)/],
    [{ spool: { fsync: "sometimes" } }, "spool.fsync", /true or false/],
    [{ bus: { max_message_bytes: 100 } }, "bus.max_message_bytes", /at least 1KiB/],
    [{ spool: { lease: "10ms" } }, "spool.lease", /at least 100ms/],
    [{ loki: { url: "http://u:p@loki:3100", bearer_token: "t" } }, "loki", /given more than once \(user info in loki.url, loki.bearer_token\)/],
    [{ loki: { username: "u", password: "p", bearer_token_file: "/run/secrets/t" } }, "loki", /more than once/],
    [{ loki: { password: "p" } }, "loki.username", /needs a user name/],
    [{ loki: { username: "u", password: "p", password_file: "/f" } }, "loki.password", /not both/],
    [{ loki: { username: "u", password_file: "/nonexistent/secret" } }, "loki.password_file", /cannot read \/nonexistent\/secret \(ENOENT\)/],
    [{ loki: { bearer_token_file: "/nonexistent/token" } }, "loki.bearer_token_file", /cannot read/],
    [{ loki: { ca_file: "/etc/ssl/ca.pem" } }, "loki.ca_file", /only used with an https:\/\/ loki.url/],
    [{ loki: { url: "https://loki:3100", ca_file: "/nonexistent/ca.pem" } }, "loki.ca_file", /cannot read/],
  ])("refuses %j naming %s and the reason", (settings, key, reason) => {
    const error = configError(() => consumerConfig(settings));
    expect(error.key).toBe(key);
    expect(error.reason).toMatch(reason);
    expect(error.message).toContain(key);
  });

  it("never shows a password or token in an error", () => {
    const errors = [
      configError(() => loadConsumerConfig({ LOG_CONSUMER_CONFIG: SHIPPED.pathname, LOKI_URL: "htps://user:s3cret@loki:3100" })),
      configError(() => loadConsumerConfig({ LOG_CONSUMER_CONFIG: SHIPPED.pathname, LOKI_URL: "https://user:s3cret@loki:3100/loki/api/v1/push" })),
      configError(() => consumerConfig({ loki: { url: "http://user:s3cret@loki:3100", ca_file: "/ca.pem" } })),
      configError(() => consumerConfig({ loki: { username: "u", password: 53_636_272 } })),
      configError(() => consumerConfig({ loki: { bearer_token: ["s3cret"] } })),
    ];
    for (const error of errors) {
      expect(error.message).not.toMatch(/s3cret|53636272/);
      expect(error.message).toMatch(/loki\.(url|ca_file|password|bearer_token)/);
    }
    expect(errors[0]?.message).toContain("htps://***@loki:3100");
  });

  it("names the environment variable when an override is wrong", () => {
    const error = configError(() => loadConsumerConfig({ LOG_CONSUMER_CONFIG: SHIPPED.pathname, LOKI_URL: "ftp://x" }));
    expect(error.key).toBe("LOKI_URL (loki.url)");
  });
});
