import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { brokerKeyFiles, clientKeyFiles, loadBrokerKeys } from "@aixcl/shared";
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
    expect(first.out()).toContain(`created ${brokerKeyFiles(dir).secretKey}`);
    expect(first.out()).toContain("allow-list");
    expect(loadBrokerKeys(dir).allowed.map((c) => c.name)).toEqual(["cli", "log-consumer", "my-app"]);
    expect(statSync(clientKeyFiles(dir, "my-app").secretKey).mode & 0o777).toBe(0o600);

    const second = capture();
    expect(await run(["keys", "--dir", dir], second.io)).toBe(0);
    expect(second.out()).toContain("nothing created");
    expect(loadBrokerKeys(dir).allowed).toHaveLength(3);
  });

  // ./aixcl runs this in a container that mounts the user's keys/ at /keys-rw: its messages must name keys/.
  it("names the files as --show-dir says, not by the path it wrote them to", async () => {
    const dir = join(tempDir("cli-keys"), "keys-rw");
    const run1 = capture();
    expect(await run(["keys", "--dir", dir, "--show-dir", "keys"], run1.io)).toBe(0);
    expect(run1.out()).toContain("created keys/broker.secret (mode 600) and its .pub");
    expect(run1.out()).toContain("created keys/clients/log-consumer.secret");
    expect(run1.out()).toContain("allow-list keys/");
    expect(run1.out()).not.toContain(dir);
    const run2 = capture();
    expect(await run(["keys", "--dir", dir, "--show-dir", "keys"], run2.io)).toBe(0);
    expect(run2.out()).toContain("every key already existed in keys; nothing created");
  });

  it("fails with the operating system's reason when the folder cannot be created", async () => {
    const file = join(tempDir("cli-keys"), "a-file");
    writeFileSync(file, "");
    await expect(run(["keys", "--dir", join(file, "keys")], capture().io)).rejects.toThrow(/ENOTDIR/);
  });
});
