import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printComponentLogsOnFailure, queryAll, requireComponents, runComponent, shippedConfig, startLokiHa, type LokiHaCluster } from "@aixcl/testkit";

// loki/loki-ha.yml, the HA profile's Loki (docker-compose.ha.yml), in three real Lokis on a real versitygw: what
// the profile promises of Loki itself. The gateway and the faults under load are the Docker tier's
// (test/docker/ha.docker.test.ts).
const need = requireComponents("loki", "versitygw");
if (need.skip) console.warn(`[skipped] Loki HA tests: ${need.skip}`);
printComponentLogsOnFailure();

const HA_ENV = { LOKI_INSTANCE_ID: "loki-1", LOKI_COMPACTOR_MODE: "main" };

async function push(url: string, lines: string[], service = "ha-test"): Promise<number> {
  const now = BigInt(Date.now()) * 1_000_000n;
  const values = lines.map((l, i) => [String(now + BigInt(i)), l]);
  const res = await fetch(`${url}/loki/api/v1/push`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ streams: [{ stream: { service }, values }] }),
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  return res.status;
}

async function lines(url: string, service = "ha-test"): Promise<string[]> {
  return (await queryAll(url, `{service="${service}"}`)).map((v) => v[1]);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe.skipIf(need.skip !== undefined)("loki/loki-ha.yml in three real Lokis on versitygw", () => {
  it("passes loki -verify-config with the environment the compose file gives it", async () => {
    const r = await runComponent("loki", [`-config.file=${shippedConfig.lokiHa}`, "-config.expand-env=true", "-verify-config"], HA_ENV);
    expect(r.output).toContain("config is valid");
    expect(r.status).toBe(0);
  });

  describe("a cluster of three", () => {
    let ha: LokiHaCluster;
    beforeAll(async () => {
      ha = await startLokiHa();
    }, 180_000);
    afterAll(async () => {
      await ha?.stop();
    });

    it("a line pushed to one instance is read from each of the others", async () => {
      const [a, b, c] = ha.instances;
      expect(await push(a!.url, ["first"])).toBe(204);
      expect(await lines(b!.url)).toEqual(["first"]);
      expect(await lines(c!.url)).toEqual(["first"]);
    });

    it("with one instance killed, pushes to the others are taken and every line is still read; restarted, it reads them too", async () => {
      const [a, b, c] = ha.instances;
      await b!.kill();
      expect(await push(a!.url, ["while loki-2 is down (1)"])).toBe(204);
      expect(await push(c!.url, ["while loki-2 is down (2)"])).toBe(204);
      expect((await lines(c!.url)).sort()).toEqual(["first", "while loki-2 is down (1)", "while loki-2 is down (2)"]);
      await b!.start();
      expect((await lines(b!.url)).sort()).toEqual(["first", "while loki-2 is down (1)", "while loki-2 is down (2)"]);
    }, 180_000);

    it("with two of three down, a push fails instead of being kept by one (replication 3, quorum 2)", async () => {
      const [a, b, c] = ha.instances;
      await b!.kill();
      await c!.kill();
      try {
        // The ring still lists them until their heartbeats time out; either way one live ingester is not a quorum.
        expect(await push(a!.url, ["one alone"], "ha-quorum")).toBeGreaterThanOrEqual(500);
      } finally {
        await Promise.all([b!.start(), c!.start()]);
      }
    }, 240_000);

    it("/flush writes the chunks to the bucket, under the tenant's prefix", async () => {
      await Promise.all(ha.instances.map((x) => fetch(`${x.url}/flush`, { method: "POST" })));
      const deadline = Date.now() + 30_000;
      let chunks: string[] = [];
      while (Date.now() < deadline) {
        chunks = filesUnder(ha.store.bucketDir).filter((f) => f.includes(`${ha.store.bucketDir}/fake/`));
        if (chunks.length > 0) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(chunks.length).toBeGreaterThan(0);
    }, 60_000);

    it("with the store stopped, pushes are still taken and recent lines read (the ingesters hold them until it is back)", async () => {
      const [a, b] = ha.instances;
      await ha.store.stop();
      try {
        expect(await push(a!.url, ["store down"], "ha-store")).toBe(204);
        expect(await lines(b!.url, "ha-store")).toEqual(["store down"]);
      } finally {
        await ha.store.start();
      }
    }, 60_000);
  });
});
