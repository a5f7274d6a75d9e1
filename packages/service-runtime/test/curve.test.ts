import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "@aixcl/testkit";
import { curveKeyPair } from "zeromq";
import { clientKeyFiles, clientKeysFromEnv, KeyFileError, loadClientKeys, z85Decode, z85Encode } from "@aixcl/client-logger";
import {
  brokerKeyFiles,
  curveEnabled,
  generateKeys,
  listClients,
  loadBrokerKeys,
  readAllowList,
  registerClient,
  revokeClient,
  stackKeyDirs,
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
  // Helpers naming the files of one client's own folder in the stack's keys/.
  const brokerFiles = (root: string) => brokerKeyFiles(stackKeyDirs(root).broker);
  const clientFiles = (root: string, name: string) => clientKeyFiles(stackKeyDirs(root).client(name), name);
  const clientKeys = (root: string, name: string) => loadClientKeys(stackKeyDirs(root).client(name), name);
  const allowed = (root: string) => readAllowList(brokerFiles(root).allowList).map((c) => c.name);

  it("generates the broker's and each client's key pair, secrets mode 0600, and the allow-list", () => {
    const dir = tmp();
    const created = generateKeys(dir, ["log-consumer", "cli"]);
    expect(created).toHaveLength(3);
    for (const file of [brokerFiles(dir).secretKey, clientFiles(dir, "cli").secretKey, clientFiles(dir, "log-consumer").secretKey]) {
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
    const broker = loadBrokerKeys(stackKeyDirs(dir).broker);
    expect(broker.allowed.map((c) => c.name)).toEqual(["cli", "log-consumer"]);
    const consumer = clientKeys(dir, "log-consumer");
    expect(consumer.serverKey).toBe(broker.publicKey);
    expect(broker.allowed.find((c) => c.name === "log-consumer")?.key).toEqual(z85Decode(consumer.publicKey));
    expect(curveEnabled(stackKeyDirs(dir).broker)).toBe(true);
    expect(curveEnabled("")).toBe(false);
  });

  // Each folder is what one container mounts: it must hold exactly what that reader may see.
  it("gives the broker and each client a folder of its own: no folder holds another's secret", () => {
    const dir = tmp();
    generateKeys(dir, ["log-consumer", "cli", "app"]);
    const files = (sub: string) => readdirSync(sub, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => relative(sub, join(e.parentPath, e.name))).sort();
    expect(files(stackKeyDirs(dir).broker)).toEqual(["allowed_clients", "broker.pub", "broker.secret"]);
    for (const name of ["app", "cli", "log-consumer"]) {
      expect(files(stackKeyDirs(dir).client(name))).toEqual(["broker.pub", `clients/${name}.pub`, `clients/${name}.secret`]);
      expect(statSync(stackKeyDirs(dir).client(name)).mode & 0o777).toBe(0o700);
    }
    expect(statSync(stackKeyDirs(dir).broker).mode & 0o777).toBe(0o700);
  });

  it("keeps existing keys and adds new clients to the allow-list", () => {
    const dir = tmp();
    generateKeys(dir, ["a"]);
    const before = readFileSync(brokerFiles(dir).secretKey, "utf8");
    expect(generateKeys(dir, ["b"])).toEqual([clientFiles(dir, "b").secretKey]);
    expect(readFileSync(brokerFiles(dir).secretKey, "utf8")).toBe(before);
    expect(allowed(dir)).toEqual(["a", "b"]);
  });

  it("a revoked client stays out of the allow-list whatever later runs do; naming it again gives it a new pair", () => {
    const dir = tmp();
    generateKeys(dir, ["a", "b"]);
    const old = clientKeys(dir, "a").publicKey;
    expect(revokeClient(dir, "a")).toEqual({ publicKey: old, already: false });
    expect(allowed(dir)).toEqual(["b"]);
    expect(revokeClient(dir, "a").already).toBe(true);
    generateKeys(dir, []);
    generateKeys(dir, ["b"]);
    expect(allowed(dir)).toEqual(["b"]);
    expect(listClients(dir).map((c) => [c.name, c.state])).toEqual([["a", "revoked"], ["b", "allowed"]]);
    // Rotation: the name again makes a new pair, admitted; the old key stays revoked.
    expect(generateKeys(dir, ["a"])).toEqual([clientFiles(dir, "a").secretKey]);
    expect(clientKeys(dir, "a").publicKey).not.toBe(old);
    expect(allowed(dir)).toEqual(["a", "b"]);
    expect(readFileSync(stackKeyDirs(dir).revoked, "utf8")).toContain(`${old} a`);
    expect(() => revokeClient(dir, "nobody")).toThrow(/there is no client "nobody"; .\/aixcl keys list shows the clients/);
  });

  it("registers a client by its public key alone: no secret on this side, admitted, and refused when revoked or taken", () => {
    const dir = tmp();
    const own = curveKeyPair();
    registerClient(dir, "laptop", own.publicKey);
    expect(existsSync(clientFiles(dir, "laptop").secretKey)).toBe(false);
    expect(listClients(dir)).toEqual([{ name: "laptop", publicKey: own.publicKey, state: "allowed", secretHere: false }]);
    expect(allowed(dir)).toEqual(["laptop"]);
    expect(readFileSync(join(stackKeyDirs(dir).client("laptop"), "broker.pub"), "utf8")).toBe(readFileSync(brokerFiles(dir).publicKey, "utf8"));
    // ./aixcl keys laptop later keeps the registered key instead of making a pair.
    expect(generateKeys(dir, ["laptop"])).toEqual([]);
    expect(() => registerClient(dir, "laptop", curveKeyPair().publicKey)).toThrow(/already has another key; revoke it first/);
    revokeClient(dir, "laptop");
    expect(() => registerClient(dir, "laptop", own.publicKey)).toThrow(/that public key was revoked/);
    const next = curveKeyPair().publicKey;
    registerClient(dir, "laptop", next);
    expect(allowed(dir)).toEqual(["laptop"]);
    expect(() => registerClient(dir, "x", "not-a-key")).toThrow(/is not a 40-character Z85 CURVE public key/);
  });

  it("refuses the old single-folder layout, which ./aixcl moves", () => {
    const dir = tmp();
    writeFileSync(join(dir, "broker.secret"), "x");
    expect(() => generateKeys(dir, [])).toThrow(/old single-folder layout; run .\/aixcl keys/);
  });

  it("refuses a secret key that group or others can read", () => {
    const dir = tmp();
    generateKeys(dir, ["a"]);
    chmodSync(clientFiles(dir, "a").secretKey, 0o644);
    expect(() => clientKeys(dir, "a")).toThrow(/readable by group or others \(mode 644\); run chmod 600/);
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
    const root = tmp();
    const dir = stackKeyDirs(root).client("app");
    expect(clientKeysFromEnv({ MESSAGE_BUS_KEYS_DIR: dir })).toBeUndefined();
    generateKeys(root, ["app"]);
    expect(() => clientKeysFromEnv({ MESSAGE_BUS_KEYS_DIR: dir })).toThrow(/set MESSAGE_BUS_CLIENT_NAME/);
    expect(clientKeysFromEnv({ MESSAGE_BUS_KEYS_DIR: dir, MESSAGE_BUS_CLIENT_NAME: "app" })?.publicKey).toBe(loadClientKeys(dir, "app").publicKey);
    expect(clientKeysFromEnv({ MESSAGE_BUS_KEYS_DIR: dir }, "app")).toBeDefined();
  });
});
