/**
 * winston hands the transport the application's own objects (pino serializes them itself, in the application's
 * thread): values JSON cannot take must not throw into the application's log call. Against a ZeroMQ XSUB standing
 * where the broker's is.
 */
import winston from "winston";
import { afterEach, describe, expect, it } from "vitest";
import type { Upstream } from "@aixcl/testkit";
import { startUpstream, until } from "@aixcl/testkit";
import { AixclTransport } from "../src/winston.js";

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

describe("AixclTransport: values that cannot be serialized", () => {
  it("BigInts, circular objects, throwing toJSON and getters become placeholders; log.info does not throw", async () => {
    const u: Upstream = await startUpstream();
    open.push(u);
    await u.subscribe("logs.");
    const transport = new AixclTransport({ subsystem: "winston_values", module: "main", endpoint: u.endpoint });
    open.push(transport);
    // The format the README shows; winston's default, json(), would serialize the values itself (and throw at a toJSON).
    const log = winston.createLogger({ format: winston.format.errors({ stack: true }), transports: [transport] });
    const circular: Record<string, unknown> = { name: "loop" };
    circular.self = circular;
    const meta = {
      id: 12345678901234567890n,
      circular,
      badJson: {
        toJSON: () => {
          throw new Error("toJSON failed");
        },
      },
      nested: {
        get field(): unknown {
          throw new Error("getter failed");
        },
      },
    };
    expect(() => log.info("odd values", meta)).not.toThrow();
    await until("the entry", () => u.messages.length === 1);
    expect(u.messages[0]?.entries[0]).toMatchObject({
      message: "odd values",
      extra: {
        id: "12345678901234567890",
        circular: expect.stringMatching(/^\[unserializable: Converting circular structure to JSON/),
        badJson: "[unserializable: toJSON failed]",
        nested: "[unserializable: getter failed]",
      },
    });
  });
});
