/**
 * The broker and the log consumer in one Node process, for a single machine. Each Node process has its own ~40 MB
 * of the node binary resident (counted in each one's RSS), its own V8 heap, libuv and ZeroMQ threads: at 10,000
 * lines/s one process peaked at 82-90 MB where the two separate ones took 153-167 (LOGGING.md, "Measured performance"). The
 * separate services stay, for layouts that run them apart (AICO's). Both parts read their usual configuration files
 * and environment; the consumer subscribes to this broker's sub port, whatever the bus config says.
 */
import { startBroker } from "@aixcl/broker";
import { loadConsumerConfig, startConsumer } from "@aixcl/log-consumer";
import { loadMessageBusConfig, runService, serviceLog } from "@aixcl/service-runtime";

await runService({
  log: serviceLog("bus"),
  load: () => ({ bus: loadMessageBusConfig(), consumer: loadConsumerConfig() }),
  start: async ({ bus, consumer }) => {
    const broker = await startBroker(bus, serviceLog("broker"));
    // The broker may have bound any free port (sub_port 0).
    const subPort = Number(/:(\d+)$/.exec(broker.subEndpoint)?.[1]);
    const logConsumer = await startConsumer({ ...consumer, bus: { ...consumer.bus, sub_port: subPort } }, { log: serviceLog("log-consumer", consumer.log_level) }).catch(
      async (error: unknown) => {
        await broker.close();
        throw error;
      },
    );
    return {
      // The broker first: it asks publishers to hold and forwards what they sent until then, which the consumer
      // receives and flushes with the rest.
      stop: async () => {
        await broker.close();
        return logConsumer.stop();
      },
      reload: () => void broker.reloadAllowList(),
    };
  },
});
