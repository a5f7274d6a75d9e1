import { readFileSync } from "node:fs";
import { BATCH_TOPIC_PREFIX } from "@aixcl/wire";
import type { ClientKeys } from "@aixcl/client-logger";
import { clientKeysFromEnv } from "@aixcl/client-logger";
import type { ConfigOf, Field } from "@aixcl/service-runtime";
import {
  ConfigError,
  InvalidValue,
  boolean,
  bytes,
  duration,
  host,
  httpUrl,
  integer,
  loadConfig,
  oneOf,
  optionalPath,
  port,
  string,
  stringList,
  stringMap,
} from "@aixcl/service-runtime";
import { MAX_LABEL_VALUE_LENGTH } from "./labels.js";
import type { LokiCredentials } from "./loki-auth.js";
import { LokiAuthError, lokiCredentials, redactUrls } from "./loki-auth.js";
import { PUSH_PATH } from "./loki-client.js";
import type { FieldPlace, FieldPlaces } from "./mapping.js";
import { DEFAULT_FIELD_PLACES, FIELD_PLACES, staticLabelProblem } from "./mapping.js";

/**
 * Loki's base URL; the push path is appended by the client, so a full push URL is refused with a hint. It may
 * carry user info (the client sends it as basic auth), so errors show it redacted.
 */
function lokiUrl(defaultValue: string, env: string): Field<string> {
  const base = httpUrl(defaultValue, env);
  return {
    ...base,
    parse(value) {
      let url: string;
      try {
        url = base.parse(value);
      } catch (error) {
        if (error instanceof InvalidValue) throw new InvalidValue(redactUrls(error.message));
        throw error;
      }
      if (url.endsWith(PUSH_PATH)) {
        throw new InvalidValue(`give Loki's base URL (e.g. ${redactUrls(url.slice(0, -PUSH_PATH.length))}); ${PUSH_PATH} is appended`);
      }
      return url;
    },
  };
}

/** A password or token: like optionalString, but an error never shows the value. */
function secret(env: string): Field<string> {
  return {
    default: "",
    env,
    parse(value) {
      if (typeof value !== "string") throw new InvalidValue("expected a string (the value is not shown: it is a secret); quote it in YAML");
      return value.trim();
    },
  };
}

/** An optional string: empty means unset. */
function optionalString(env: string): Field<string> {
  return {
    default: "",
    env,
    parse(value) {
      if (typeof value !== "string") throw new InvalidValue(`expected a string, got ${JSON.stringify(value)}`);
      return value.trim();
    },
  };
}

/** Where one field goes (mapping.ts, FieldPlaces); env LOG_CONSUMER_FIELD_<NAME>, e.g. LOG_CONSUMER_FIELD_FUNCTION. */
function fieldPlace(name: keyof FieldPlaces): Field<FieldPlace> {
  return oneOf(FIELD_PLACES, DEFAULT_FIELD_PLACES[name], `LOG_CONSUMER_FIELD_${name.toUpperCase()}`);
}

/** config/log_consumer.yaml; every key is documented in that file. */
export const consumerSchema = {
  bus: {
    host: host("127.0.0.1", "MESSAGE_BUS_HOST"),
    sub_port: port(5556, "MESSAGE_BUS_SUB_PORT"),
    topics: stringList(["logs.", "logs/", BATCH_TOPIC_PREFIX], "LOG_CONSUMER_TOPICS"),
    receive_hwm: integer(1_000, { min: 1, env: "LOG_CONSUMER_RECEIVE_HWM" }),
    max_message_bytes: bytes(1024 * 1024, "LOG_CONSUMER_MAX_MESSAGE_BYTES"),
    keys_dir: optionalPath("MESSAGE_BUS_KEYS_DIR"),
    client_name: string("log-consumer", "MESSAGE_BUS_CLIENT_NAME"),
  },
  loki: {
    url: lokiUrl("http://127.0.0.1:3100", "LOKI_URL"),
    tenant_id: optionalString("LOKI_TENANT_ID"),
    username: optionalString("LOKI_USERNAME"),
    password: secret("LOKI_PASSWORD"),
    password_file: optionalPath("LOKI_PASSWORD_FILE"),
    bearer_token: secret("LOKI_BEARER_TOKEN"),
    bearer_token_file: optionalPath("LOKI_BEARER_TOKEN_FILE"),
    ca_file: optionalPath("LOKI_CA_FILE"),
    encoding: oneOf(["protobuf", "json"], "protobuf", "LOKI_PUSH_ENCODING"),
    compress: oneOf(["always", "when_queued"], "always", "LOKI_PUSH_COMPRESS"),
    timeout: duration(10_000, "LOKI_PUSH_TIMEOUT"),
    max_in_flight: integer(4, { min: 1, max: 64, env: "LOKI_MAX_IN_FLIGHT" }),
    ready_timeout: duration(2_000),
  },
  batch: {
    max_bytes: bytes(1024 * 1024, "LOG_CONSUMER_BATCH_MAX_BYTES"),
    max_wait: duration(1_000, "LOG_CONSUMER_BATCH_MAX_WAIT"),
  },
  retry: {
    min_backoff: duration(500, "LOG_CONSUMER_MIN_BACKOFF"),
    max_backoff: duration(300_000, "LOG_CONSUMER_MAX_BACKOFF"),
    max_retries: integer(10, { min: 0, max: 1000, env: "LOG_CONSUMER_MAX_RETRIES" }),
  },
  buffer: {
    max_bytes: bytes(64 * 1024 * 1024, "LOG_CONSUMER_BUFFER_MAX_BYTES"),
  },
  spool: {
    dir: optionalString("LOG_CONSUMER_SPOOL_DIR"),
    max_bytes: bytes(1024 ** 3, "LOG_CONSUMER_SPOOL_MAX_BYTES"),
    fsync: boolean(false, "LOG_CONSUMER_SPOOL_FSYNC"),
    lease: duration(10_000, "LOG_CONSUMER_SPOOL_LEASE"),
  },
  labels: {
    static: stringMap({}, staticLabelProblem, "LOG_CONSUMER_STATIC_LABELS"),
  },
  fields: {
    module: fieldPlace("module"),
    function: fieldPlace("function"),
    file_path: fieldPlace("file_path"),
    line_number: fieldPlace("line_number"),
    topic: fieldPlace("topic"),
    user_uuid: fieldPlace("user_uuid"),
    session_id: fieldPlace("session_id"),
    trace_id: fieldPlace("trace_id"),
    meta: fieldPlace("meta"),
    extra: fieldPlace("extra"),
  },
  shutdown: {
    flush_deadline: duration(8_000, "LOG_CONSUMER_FLUSH_DEADLINE"),
  },
  ops: {
    host: host("127.0.0.1", "LOG_CONSUMER_OPS_HOST"),
    port: port(9465, "LOG_CONSUMER_OPS_PORT"),
  },
  log_level: oneOf(["debug", "info", "warn", "error"], "info", "LOG_CONSUMER_LOG_LEVEL"),
};

export type ConsumerConfig = ConfigOf<typeof consumerSchema>;

export const DEFAULT_CONSUMER_CONFIG_FILE = "config/log_consumer.yaml";

/**
 * The consumer's CURVE keys: with bus.keys_dir holding the broker's public key the SUB socket speaks CURVE, with
 * the key pair named bus.client_name. Undefined: plaintext. Throws KeyFileError naming the file.
 */
export function consumerCurveKeys(config: ConsumerConfig): ClientKeys | undefined {
  return clientKeysFromEnv({ MESSAGE_BUS_KEYS_DIR: config.bus.keys_dir, MESSAGE_BUS_CLIENT_NAME: config.bus.client_name });
}

/** Loki's credentials (see loki-auth.ts), files read; throws ConfigError naming the setting. */
export function consumerLokiCredentials(config: ConsumerConfig, source = "the configuration"): LokiCredentials {
  try {
    return lokiCredentials(config.loki);
  } catch (error) {
    if (error instanceof LokiAuthError) throw new ConfigError(error.key, error.reason, source);
    throw error;
  }
}

/** The CA certificates (PEM) loki.ca_file names, trusted for Loki instead of the system's; undefined when unset. */
export function consumerLokiCa(config: ConsumerConfig, source = "the configuration"): Buffer | undefined {
  if (config.loki.ca_file === "") return undefined;
  try {
    return readFileSync(config.loki.ca_file);
  } catch (error) {
    throw new ConfigError("loki.ca_file", `cannot read ${config.loki.ca_file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, source);
  }
}

/** Rules that involve more than one key; `source` names the file in the error. */
export function checkConsumerConfig(config: ConsumerConfig, source: string): ConsumerConfig {
  const fail = (key: string, reason: string): never => {
    throw new ConfigError(key, reason, source);
  };
  if (config.batch.max_bytes < 1024) fail("batch.max_bytes", `must be at least 1KiB, got ${config.batch.max_bytes}`);
  if (config.batch.max_wait <= 0) fail("batch.max_wait", "must be more than 0");
  if (config.loki.timeout <= 0) fail("loki.timeout", "must be more than 0");
  if (config.retry.min_backoff <= 0) fail("retry.min_backoff", "must be more than 0");
  if (config.retry.max_backoff < config.retry.min_backoff) {
    fail("retry.max_backoff", `must be at least retry.min_backoff (${config.retry.min_backoff}ms), got ${config.retry.max_backoff}ms`);
  }
  // Every push in flight holds a batch, and one more is being filled; below that the buffer could not even
  // hold what is being sent, and new entries would be dropped while nothing is wrong.
  const needed = config.batch.max_bytes * (config.loki.max_in_flight + 2);
  if (config.buffer.max_bytes < needed) {
    fail("buffer.max_bytes", `must be at least batch.max_bytes x (loki.max_in_flight + 2) = ${needed} bytes, got ${config.buffer.max_bytes}`);
  }
  if (config.spool.lease < 100) fail("spool.lease", `must be at least 100ms, got ${config.spool.lease}ms`);
  if (config.loki.ca_file !== "" && !config.loki.url.startsWith("https:")) {
    fail("loki.ca_file", `is only used with an https:// loki.url, got ${redactUrls(config.loki.url)}`);
  }
  if (config.bus.max_message_bytes < 1024) fail("bus.max_message_bytes", `must be at least 1KiB, got ${config.bus.max_message_bytes}`);
  // The spool must hold the batches in flight and one being written, or new batches could never be spooled.
  if (config.spool.dir !== "" && config.spool.max_bytes < needed) {
    fail("spool.max_bytes", `must be at least batch.max_bytes x (loki.max_in_flight + 2) = ${needed} bytes, got ${config.spool.max_bytes}`);
  }
  for (const topic of config.bus.topics) {
    if (!topic.startsWith("logs.") && !topic.startsWith("logs/") && !topic.startsWith(BATCH_TOPIC_PREFIX)) {
      fail("bus.topics", `${JSON.stringify(topic)} is not a log topic prefix (logs., logs/ or ${BATCH_TOPIC_PREFIX}); the decoder would refuse its messages`);
    }
  }
  for (const [name, value] of Object.entries(config.labels.static)) {
    if (value === "" || value.length > MAX_LABEL_VALUE_LENGTH) {
      fail(`labels.static.${name}`, `value must be 1 to ${MAX_LABEL_VALUE_LENGTH} characters`);
    }
  }
  return config;
}

/**
 * Reads the file named by LOG_CONSUMER_CONFIG (default config/log_consumer.yaml), env overrides applied. Key,
 * secret and CA files are read too, so a missing or unsafe one stops the start (the error names the file).
 */
export function loadConsumerConfig(env: NodeJS.ProcessEnv = process.env): ConsumerConfig {
  const file = env.LOG_CONSUMER_CONFIG ?? DEFAULT_CONSUMER_CONFIG_FILE;
  const config = checkConsumerConfig(loadConfig(consumerSchema, { file, env }), file);
  consumerCurveKeys(config);
  consumerLokiCredentials(config, file);
  consumerLokiCa(config, file);
  return config;
}
