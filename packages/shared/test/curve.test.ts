import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "@aixcl/testkit";
import { curveKeyPair } from "zeromq";
import {
  brokerKeyFiles,
  clientKeyFiles,
  clientKeysFromEnv,
  curveEnabled,
  generateKeys,
  KeyFileError,
  loadBrokerKeys,
  loadClientKeys,
  readAllowList,
  z85Decode,
  z85Encode,
} from "../src/index.js";

const tmp = () => tempDir("keys");

describe("Z85", () => {
  it("matches the RFC 32 test vector", () => {
    const bytes = Uint8Array.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    expect(z85Encode(bytes)).toBe("HelloWorld");
    expect(z85Decode("HelloWorld")).toEqual(bytes);
  });

  it("round-trips zeromq's own CURVE keys", () => {
    const { publicKey } = curveKeyPair();
    const raw = z85Decode(publicKey);
    expect(raw).toHaveLength(32);
    expect(z85Encode(raw as Uint8Array)).toBe(publicKey);
  });

  it("rejects text that is not Z85", () => {
    expect(z85Decode("Hello")).toBeDefined();
    expect(z85Decode("Hell")).toBeUndefined();
    expect(z85Decode("Hello Wor")).toBeUndefined();
    expect(z85Decode("\"\"\"\"\"")).toBeUndefined();
    expect(z85Decode("#####")).toBeUndefined();
  });
});

describe("key files", () => {
  it("generates the broker's and each client's key pair, secrets mode 0600, and the allow-list", () => {
    const dir = tmp();
    const created = generateKeys(dir, ["log-consumer", "cli"]);
    expect(created).toHaveLength(3);
    for (const file of [brokerKeyFiles(dir).secretKey, clientKeyFiles(dir, "cli").secretKey, clientKeyFiles(dir, "log-consumer").secretKey]) {
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
    const broker = loadBrokerKeys(dir);
    expect(broker.allowed.map((c) => c.name)).toEqual(["cli", "log-consumer"]);
    const consumer = loadClientKeys(dir, "log-consumer");
    expect(consumer.serverKey).toBe(broker.publicKey);
    expect(broker.allowed.find((c) => c.name === "log-consumer")?.key).toEqual(z85Decode(consumer.publicKey));
    expect(curveEnabled(dir)).toBe(true);
    expect(curveEnabled("")).toBe(false);
  });

  it("keeps existing keys and adds new clients to the allow-list", () => {
    const dir = tmp();
    generateKeys(dir, ["a"]);
    const before = readFileSync(brokerKeyFiles(dir).secretKey, "utf8");
    expect(generateKeys(dir, ["b"])).toEqual([clientKeyFiles(dir, "b").secretKey]);
    expect(readFileSync(brokerKeyFiles(dir).secretKey, "utf8")).toBe(before);
    expect(readAllowList(brokerKeyFiles(dir).allowList).map((c) => c.name)).toEqual(["a", "b"]);
  });

  it("refuses a secret key that group or others can read", () => {
    const dir = tmp();
    generateKeys(dir, ["a"]);
    chmodSync(clientKeyFiles(dir, "a").secretKey, 0o644);
    expect(() => loadClientKeys(dir, "a")).toThrow(/readable by group or others \(mode 644\); run chmod 600/);
  });

  it("reads keys containing #, a Z85 character, and skips comment lines", () => {
    const file = join(tmp(), "allowed_clients");
    const key = z85Encode(Uint8Array.from({ length: 32 }, (_, i) => (i === 3 ? 84 : i)));
    expect(key).toContain("#");
    writeFileSync(file, `# admitted clients\n${key} laptop\n#\n`);
    expect(readAllowList(file).map((c) => [z85Encode(c.key), c.name])).toEqual([[key, "laptop"]]);
  });

  it.each([
    ["", /lists no client/],
    ["# only a comment\n", /lists no client/],
    ["not-a-key laptop\n", /line 1: "not-a-key" is not a 40-character Z85 public key/],
  ])("an allow-list of %j is refused", (text, reason) => {
    const file = join(tmp(), "allowed_clients");
    writeFileSync(file, text);
    expect(() => readAllowList(file)).toThrow(reason);
  });

  it("a missing allow-list or key says how to create it", () => {
    const dir = tmp();
    expect(() => readAllowList(join(dir, "allowed_clients"))).toThrow(KeyFileError);
    expect(() => loadClientKeys(dir, "x")).toThrow(/missing; create keys with `.\/aixcl keys`/);
    expect(() => generateKeys(dir, ["Bad Name"])).toThrow(/client names are lower-case/);
  });

  it("a keys folder that exists but cannot be read is an error, not a silent fall-back to plaintext", () => {
    const file = join(tmp(), "not-a-dir");
    writeFileSync(file, "");
    expect(() => curveEnabled(file)).toThrow(/cannot read it \(ENOTDIR\)/);
    expect(() => clientKeysFromEnv({ MESSAGE_BUS_KEYS_DIR: file })).toThrow(KeyFileError);
    expect(curveEnabled(join(tmp(), "absent"))).toBe(false);
  });

  it("clients find their keys from the environment, and need a name when the bus has keys", () => {
    const dir = tmp();
    expect(clientKeysFromEnv({ MESSAGE_BUS_KEYS_DIR: dir })).toBeUndefined();
    generateKeys(dir, ["app"]);
    expect(() => clientKeysFromEnv({ MESSAGE_BUS_KEYS_DIR: dir })).toThrow(/set MESSAGE_BUS_CLIENT_NAME/);
    expect(clientKeysFromEnv({ MESSAGE_BUS_KEYS_DIR: dir, MESSAGE_BUS_CLIENT_NAME: "app" })?.publicKey).toBe(loadClientKeys(dir, "app").publicKey);
    expect(clientKeysFromEnv({ MESSAGE_BUS_KEYS_DIR: dir }, "app")).toBeDefined();
  });
});
