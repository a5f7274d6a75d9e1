import { boolean, bytes, host, integer, optionalPath, port } from "./fields.js";
import type { ConfigOf } from "./config.js";
import { ConfigError, loadConfig } from "./config.js";

/** config/message_bus.yaml: the document's host/pub_port/sub_port, plus the broker's own section. */
export const messageBusSchema = {
  host: host("127.0.0.1", "MESSAGE_BUS_HOST"),
  pub_port: port(5555, "MESSAGE_BUS_PUB_PORT"),
  sub_port: port(5556, "MESSAGE_BUS_SUB_PORT"),
  keys_dir: optionalPath("MESSAGE_BUS_KEYS_DIR"),
  broker: {
    metrics_host: host("127.0.0.1", "MESSAGE_BUS_METRICS_HOST"),
    metrics_port: port(9464, "MESSAGE_BUS_METRICS_PORT"),
    send_hwm: integer(1_000, { min: 1, env: "MESSAGE_BUS_SEND_HWM" }),
    recv_hwm: integer(1_000, { min: 1, env: "MESSAGE_BUS_RECV_HWM" }),
    count_messages: boolean(true, "MESSAGE_BUS_COUNT_MESSAGES"),
    no_drop: boolean(false, "MESSAGE_BUS_NO_DROP"),
    max_message_bytes: bytes(1024 * 1024, "MESSAGE_BUS_MAX_MESSAGE_BYTES"),
    backlog: {
      max_bytes: bytes(128 * 1024 * 1024, "MESSAGE_BUS_BACKLOG_MAX_BYTES"),
      dir: optionalPath("MESSAGE_BUS_BACKLOG_DIR"),
      fsync: boolean(false, "MESSAGE_BUS_BACKLOG_FSYNC"),
    },
  },
};

export type MessageBusConfig = ConfigOf<typeof messageBusSchema>;

export const DEFAULT_MESSAGE_BUS_CONFIG_FILE = "config/message_bus.yaml";

/** The smallest backlog bound: it must hold a few of the chunks the backlog is kept in. */
export const MIN_BACKLOG_BYTES = 1024 * 1024;

export function loadMessageBusConfig(env: NodeJS.ProcessEnv = process.env): MessageBusConfig {
  const file = env.MESSAGE_BUS_CONFIG ?? DEFAULT_MESSAGE_BUS_CONFIG_FILE;
  const config = loadConfig(messageBusSchema, { file, env });
  const { max_bytes } = config.broker.backlog;
  if (max_bytes < MIN_BACKLOG_BYTES) {
    const fromEnv = env.MESSAGE_BUS_BACKLOG_MAX_BYTES !== undefined && env.MESSAGE_BUS_BACKLOG_MAX_BYTES !== "";
    throw new ConfigError(fromEnv ? "MESSAGE_BUS_BACKLOG_MAX_BYTES (broker.backlog.max_bytes)" : "broker.backlog.max_bytes", `must be at least 1MiB, got ${max_bytes} bytes`, fromEnv ? "environment" : file);
  }
  return config;
}

/** ZeroMQ binds IP addresses and interfaces; `localhost` (the document's default) means the loopback address. */
export function bindAddress(hostName: string): string {
  return hostName === "localhost" ? "127.0.0.1" : hostName;
}
