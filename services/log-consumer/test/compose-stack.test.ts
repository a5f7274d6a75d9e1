/**
 * What the compose stack must give the consumer for the spool and CURVE to work in containers (static: the
 * files, no Docker engine). test/stack/compose.test.ts checks the hardening rules for every service.
 */
import { existsSync, readFileSync } from "node:fs";
import { posix } from "node:path";
import { fileURLToPath } from "node:url";
import { STACK_KEY_CLIENTS } from "@aixcl/cli";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, "utf8");

interface Service {
  environment?: Record<string, string>;
  volumes?: string[];
  user?: string;
  read_only?: boolean;
}
const compose = parse(read("docker-compose.yml"), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const service = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
function mounts(s: Service) {
  return (s.volumes ?? []).map((v) => {
    const [source = "", target = "", mode = ""] = v.split(":");
    return { source, target, readOnly: mode.split(",").includes("ro") };
  });
}

describe("the compose stack and the log consumer", () => {
  it.each(["log-consumer", "bus"])("%s puts the spool on the log-consumer-spool volume, inside its read-only root filesystem", (name) => {
    const consumer = service(name);
    const dir = consumer.environment?.LOG_CONSUMER_SPOOL_DIR ?? "";
    expect(posix.isAbsolute(dir), `LOG_CONSUMER_SPOOL_DIR ${dir}`).toBe(true);
    const volume = mounts(consumer).find((m) => m.source === "log-consumer-spool");
    expect(volume, "log-consumer mounts the log-consumer-spool volume").toBeDefined();
    expect(volume?.readOnly).toBe(false);
    expect(dir === volume?.target || dir.startsWith(`${volume?.target}/`), `${dir} is on the volume at ${volume?.target}`).toBe(true);
    expect(Object.keys(compose.volumes)).toContain("log-consumer-spool");
    expect(consumer.read_only).toBe(true);
  });

  it("the image prepares the volume's mount point so the non-root service can write the new volume", () => {
    // Docker copies the image directory's owner and mode into a new named volume; without the directory in the
    // image the volume belongs to root, and the consumer (uid 1000, or the host user's) could not create its spool.
    const target = mounts(service("log-consumer")).find((m) => m.source === "log-consumer-spool")?.target ?? "";
    const dockerfile = read("services/log-consumer/Dockerfile");
    const final = dockerfile.split(/^FROM /m).at(-1) ?? "";
    const beforeUser = final.split(/^USER /m)[0] ?? "";
    const prepared = new RegExp(`^RUN .*mkdir -p ${target.replace(/[/.]/g, "\\$&")}(?=[\\s;&]|$).*(chmod 1777 |chown node)`, "m");
    expect(
      prepared.test(beforeUser),
      `services/log-consumer/Dockerfile must create ${target} before USER node, e.g.\n  RUN mkdir -p ${target} && chmod 1777 ${target}`,
    ).toBe(true);
  });

  it("mounts only its own folder of ./keys read-only where MESSAGE_BUS_KEYS_DIR says, for the broker and every bus client, with the names ./aixcl keys creates", () => {
    const clients = ["log-consumer", "cli"].map((name) => service(name).environment?.MESSAGE_BUS_CLIENT_NAME);
    expect(clients).toEqual([...STACK_KEY_CLIENTS]);
    // The bus runs the broker and a consumer that subscribes in-process (inproc://), with no keys of its own.
    const folders: Record<string, string> = { broker: "./keys/broker", bus: "./keys/broker", "log-consumer": "./keys/clients/log-consumer", cli: "./keys/clients/cli" };
    for (const [name, source] of Object.entries(folders)) {
      const s = service(name);
      const keysDir = s.environment?.MESSAGE_BUS_KEYS_DIR;
      expect(keysDir, `${name} sets MESSAGE_BUS_KEYS_DIR`).toBeDefined();
      // Exactly one folder of ./keys: no service sees another's secret key.
      expect(mounts(s).filter((m) => m.source.startsWith("./keys")), `${name} mounts ${source} at ${keysDir} and nothing else of ./keys`).toEqual([
        { source, target: keysDir, readOnly: true },
      ]);
    }
  });

  it("./keys exists in the checkout (Docker would create it as root) and keeps every key out of git", () => {
    expect(existsSync(`${root}keys`)).toBe(true);
    expect(read("keys/.gitignore").split("\n").filter((l) => l !== "" && !l.startsWith("#"))).toEqual(["*", "!.gitignore"]);
  });
});
