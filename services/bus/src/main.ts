/**
 * The broker and the log consumer in one Node process, for a single machine. Each Node process has its own ~40 MB
 * of the node binary resident (counted in each one's RSS), its own V8 heap, libuv and ZeroMQ threads: at 10,000
 * lines/s one process peaked at 82-90 MB where the two separate ones took 153-167 (LOGGING.md, "Measured performance"). The
 * separate services stay, for layouts that run them apart (AICO's). Both parts read their usual configuration files
 * and environment (the keys folder is the broker's: the consumer needs none). The consumer subscribes to the broker's
 * inproc:// endpoint, whatever the bus config says: a message crosses between the sockets inside libzmq, without TCP.
 */
import { startBroker } from "@aixcl/broker";
import { loadConsumerConfig, startConsumer } from "@aixcl/log-consumer";
import { loadMessageBusConfig, runService, serviceLog } from "@aixcl/service-runtime";

/** inproc names are per ZeroMQ context; zeromq.js gives every socket of the process the same one. */
const INPROC_SUB_ENDPOINT = "inproc://aixcl-bus-subscribers";

await runService({
  log: serviceLog("bus"),
  // MESSAGE_BUS_KEYS_DIR names the broker's keys (the compose bus service mounts only those): the consumer, which
  // subscribes in-process, must not look for a client key pair of its own there, which would refuse the start.
  load: () => ({ bus: loadMessageBusConfig(), consumer: loadConsumerConfig({ ...process.env, MESSAGE_BUS_KEYS_DIR: "" }) }),
  start: async ({ bus, consumer }) => {
    const broker = await startBroker(bus, serviceLog("broker"), { inprocSubEndpoint: INPROC_SUB_ENDPOINT });
    const logConsumer = await startConsumer(consumer, { log: serviceLog("log-consumer", consumer.log_level), busEndpoint: INPROC_SUB_ENDPOINT }).catch(async (error: unknown) => {
      await broker.close();
      throw error;
    });
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
