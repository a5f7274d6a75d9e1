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
    expect(parseArgs(["keys"], {})).toEqual({ kind: "keys", dir: "keys", clients: ["log-consumer", "cli"] });
    expect(parseArgs(["keys", "my-app", "--dir", "/k"], {})).toEqual({ kind: "keys", dir: "/k", clients: ["log-consumer", "cli", "my-app"] });
    expect(parseArgs(["keys", "cli"], { MESSAGE_BUS_KEYS_DIR: "/etc/aixcl/keys" })).toEqual({ kind: "keys", dir: "/etc/aixcl/keys", clients: ["log-consumer", "cli"] });
    expect(() => parseArgs(["keys", "My App"], {})).toThrow(UsageError);
    expect(() => parseArgs(["keys", "--colour"], {})).toThrow(/keys: unknown option --colour \(options: --dir\)/);
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

  it("fails with the operating system's reason when the folder cannot be created", async () => {
    const file = join(tempDir("cli-keys"), "a-file");
    writeFileSync(file, "");
    await expect(run(["keys", "--dir", join(file, "keys")], capture().io)).rejects.toThrow(/ENOTDIR/);
  });
});
