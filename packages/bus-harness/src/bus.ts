import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RunningBroker } from "@aixcl/broker";
import { startBroker } from "@aixcl/broker";
import type { RunningConsumer } from "@aixcl/log-consumer";
import { loadConsumerConfig, startConsumer } from "@aixcl/log-consumer";
import type { MessageBusConfig, ServiceLog } from "@aixcl/service-runtime";
import { defaultsOf, messageBusSchema, serviceLog } from "@aixcl/service-runtime";
import { freePort, repoRoot, tempDir } from "@aixcl/testkit";

export interface BusHandle {
  broker: RunningBroker;
  consumer: RunningConsumer;
  /** Where loggers publish (the broker's XSUB). */
  pubEndpoint: string;
  stop(): Promise<void>;
}

export interface StartBusOptions {
  /** Loki's base URL, e.g. LokiHandle.url. */
  lokiUrl: string;
  /** Broker settings over the defaults (ports are always free ones, metrics on 127.0.0.1). */
  broker?: Partial<MessageBusConfig["broker"]>;
  /** log_consumer.yaml sections over the test defaults (200 ms batches, free ops port). */
  consumer?: Record<string, Record<string, unknown>>;
}

function portOf(endpoint: string): number {
  return Number(endpoint.slice(endpoint.lastIndexOf(":") + 1));
}

/** The real broker in this process, on free 127.0.0.1 ports (metrics too), with `broker` settings over the defaults. */
export function startTestBroker(broker: Partial<MessageBusConfig["broker"]> = {}, log: ServiceLog = serviceLog("broker", "error")): Promise<RunningBroker> {
  const defaults = defaultsOf(messageBusSchema);
  return startBroker({ ...defaults, host: "127.0.0.1", pub_port: 0, sub_port: 0, broker: { ...defaults.broker, metrics_host: "127.0.0.1", metrics_port: 0, ...broker } }, log);
}

/**
 * The log consumer on its own, from the shipped config/log_consumer.yaml with the environment overrides a
 * deployment would use: subscribed to the broker at `subEndpoint`, pushing to `lokiUrl`, ops on a free port. Its
 * flush deadline is 1 s, so a dead Loki does not hold stop() in backoff for minutes.
 */
export async function startShippedConsumer(subEndpoint: string, lokiUrl: string, log: ServiceLog = serviceLog("log-consumer", "error")): Promise<RunningConsumer> {
  const config = loadConsumerConfig({
    LOG_CONSUMER_CONFIG: `${repoRoot}config/log_consumer.yaml`,
    LOKI_URL: lokiUrl,
    MESSAGE_BUS_HOST: "127.0.0.1",
    MESSAGE_BUS_SUB_PORT: String(portOf(subEndpoint)),
    LOG_CONSUMER_OPS_PORT: String(await freePort()),
    LOG_CONSUMER_FLUSH_DEADLINE: "1s",
  });
  return startConsumer(config, { log });
}

/**
 * The real message bus in this process: the broker on free ports and the log consumer, loaded through its
 * own config loader, pushing to `lokiUrl`. Both log errors only.
 */
export async function startBus(options: StartBusOptions): Promise<BusHandle> {
  const broker = await startTestBroker(options.broker);
  try {
    const sections: Record<string, Record<string, unknown>> = {
      bus: { host: "127.0.0.1", sub_port: portOf(broker.subEndpoint) },
      loki: { url: options.lokiUrl },
      batch: { max_wait: "200ms" },
      ops: { port: 0 },
    };
    for (const [section, values] of Object.entries(options.consumer ?? {})) sections[section] = { ...sections[section], ...values };
    const file = join(tempDir("bus"), "log_consumer.yaml");
    // JSON is YAML: the consumer reads it through the same loader as the shipped file.
    writeFileSync(file, JSON.stringify(sections));
    const consumer = await startConsumer(loadConsumerConfig({ LOG_CONSUMER_CONFIG: file }), { log: serviceLog("log-consumer", "error") });
    return {
      broker,
      consumer,
      pubEndpoint: broker.pubEndpoint,
      async stop() {
        await consumer.stop();
        await broker.close();
      },
    };
  } catch (error) {
    await broker.close();
    throw error;
  }
}
