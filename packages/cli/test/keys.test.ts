import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { clientKeyFiles, loadClientKeys } from "@aixcl/client-logger";
import { brokerKeyFiles, generateKeys, loadBrokerKeys, stackKeyDirs } from "@aixcl/service-runtime";
import { tempDir } from "@aixcl/testkit";
import { parseArgs, run, UsageError } from "../src/index.js";

function capture() {
  let out = "";
  let err = "";
  return {
    io: {
      stdout: { write: (s: string) => ((out += s), true) },
      stderr: { write: (s: string) => ((err += s), true) },
      env: {},
      signal: new AbortController().signal,
    },
    out: () => out,
    err: () => err,
  };
}

describe("keys", () => {
  it("parses clients and the folder, always including the stack's own clients", () => {
    expect(parseArgs(["keys"], {})).toEqual({ kind: "keys", dir: "keys", clients: ["log-consumer", "cli"], shownDir: "keys" });
    expect(parseArgs(["keys", "my-app", "--dir", "/k"], {})).toEqual({ kind: "keys", dir: "/k", clients: ["log-consumer", "cli", "my-app"], shownDir: "/k" });
    expect(parseArgs(["keys", "cli"], { MESSAGE_BUS_KEYS_DIR: "/etc/aixcl/keys" })).toEqual({ kind: "keys", dir: "/etc/aixcl/keys", clients: ["log-consumer", "cli"], shownDir: "/etc/aixcl/keys" });
    expect(parseArgs(["keys", "--dir", "/keys-rw", "--show-dir", "keys"], {})).toMatchObject({ dir: "/keys-rw", shownDir: "keys" });
    expect(() => parseArgs(["keys", "My App"], {})).toThrow(UsageError);
    expect(() => parseArgs(["keys", "--colour"], {})).toThrow(/keys: unknown option --colour \(options: --dir, --show-dir\)/);
  });

  it("creates the key pairs, secrets 0600, and an allow-list of every client; a second run keeps them", async () => {
    const dir = join(tempDir("cli-keys"), "keys");
    const first = capture();
    expect(await run(["keys", "my-app", "--dir", dir], first.io)).toBe(0);
    expect(first.out()).toContain(`created ${brokerKeyFiles(stackKeyDirs(dir).broker).secretKey}`);
    expect(first.out()).toContain("allow-list");
    expect(loadBrokerKeys(stackKeyDirs(dir).broker).allowed.map((c) => c.name)).toEqual(["cli", "log-consumer", "my-app"]);
    expect(statSync(clientKeyFiles(stackKeyDirs(dir).client("my-app"), "my-app").secretKey).mode & 0o777).toBe(0o600);

    const second = capture();
    expect(await run(["keys", "--dir", dir], second.io)).toBe(0);
    expect(second.out()).toContain("nothing created");
    expect(loadBrokerKeys(stackKeyDirs(dir).broker).allowed).toHaveLength(3);
  });

  // ./aixcl runs this in a container that mounts the user's keys/ at /keys-rw: its messages must name keys/.
  it("names the files as --show-dir says, not by the path it wrote them to", async () => {
    const dir = join(tempDir("cli-keys"), "keys-rw");
    const run1 = capture();
    expect(await run(["keys", "--dir", dir, "--show-dir", "keys"], run1.io)).toBe(0);
    expect(run1.out()).toContain("created keys/broker/broker.secret (mode 600) and its .pub");
    expect(run1.out()).toContain("created keys/clients/log-consumer/clients/log-consumer.secret");
    expect(run1.out()).toContain("allow-list keys/broker/allowed_clients");
    expect(run1.out()).not.toContain(dir);
    const run2 = capture();
    expect(await run(["keys", "--dir", dir, "--show-dir", "keys"], run2.io)).toBe(0);
    expect(run2.out()).toContain("every key already existed in keys; nothing created");
  });

  it("parses list, revoke and register; other words are client names", () => {
    expect(parseArgs(["keys", "list"], {})).toEqual({ kind: "keys-list", dir: "keys", shownDir: "keys" });
    expect(parseArgs(["keys", "revoke", "my-app", "--dir", "/k", "--show-dir", "keys"], {})).toEqual({ kind: "keys-revoke", dir: "/k", name: "my-app", shownDir: "keys" });
    expect(parseArgs(["keys", "register", "laptop", "pub.key"], {})).toMatchObject({ kind: "keys-register", name: "laptop", publicKey: "pub.key" });
    expect(() => parseArgs(["keys", "revoke"], {})).toThrow(/keys revoke: usage: keys revoke <client>/);
    expect(() => parseArgs(["keys", "revoke", "a", "b"], {})).toThrow(/usage: keys revoke <client>/);
    expect(() => parseArgs(["keys", "register", "Bad Name", "k"], {})).toThrow(/client name "Bad Name"/);
    expect(() => parseArgs(["keys", "list", "x"], {})).toThrow(/usage: keys list/);
  });

  it("revoke, list and register: a revoked client stays out after another keys run; a registered one has no secret here", async () => {
    const dir = join(tempDir("cli-keys"), "keys-rw");
    const say = async (args: string[]) => {
      const io = capture();
      const status = await run([...args, "--dir", dir, "--show-dir", "keys"], io.io);
      return { status, out: io.out(), err: io.err() };
    };
    await say(["keys", "my-app"]);
    const revoked = await say(["keys", "revoke", "my-app"]);
    expect(revoked.status).toBe(0);
    expect(revoked.out).toMatch(/^revoked: my-app \(.{40}\), listed in keys\/revoked_clients$/m);
    expect(revoked.out).toContain("allow-list keys/broker/allowed_clients: cli, log-consumer\n");
    expect((await say(["keys"])).out).toContain("allow-list keys/broker/allowed_clients: cli, log-consumer\n");

    // A pair made on the laptop; only the public key's file comes here.
    const laptop = tempDir("cli-keys");
    generateKeys(laptop, ["laptop"]);
    const own = loadClientKeys(stackKeyDirs(laptop).client("laptop"), "laptop");
    const file = clientKeyFiles(stackKeyDirs(laptop).client("laptop"), "laptop").publicKey;
    const registered = await say(["keys", "register", "laptop", file]);
    expect(registered.out).toContain(`registered laptop (${own.publicKey}); its folder keys/clients/laptop holds the broker's public key for it`);
    expect((await say(["keys", "register", "other", "nonsense"])).err).toContain("neither a 40-character Z85 public key nor a file holding one");

    const list = await say(["keys", "list"]);
    expect(list.out.split("\n").map((l) => l.split(/\s+/).slice(0, 3).join(" "))).toEqual([
      "CLIENT STATE SECRET",
      "cli allowed here",
      "laptop allowed registered",
      "log-consumer allowed here",
      "my-app revoked here",
      "",
    ]);
    expect(list.out).toContain(own.publicKey);
    expect((await say(["keys", "revoke", "nobody"])).err).toContain('there is no client "nobody"');
  });

  it("fails with the operating system's reason when the folder cannot be created", async () => {
    const file = join(tempDir("cli-keys"), "a-file");
    writeFileSync(file, "");
    await expect(run(["keys", "--dir", join(file, "keys")], capture().io)).rejects.toThrow(/ENOTDIR/);
  });
});
