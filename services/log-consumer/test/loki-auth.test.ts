/** Loki's credentials from settings, files and loki.url's user info, and URL redaction: plain functions. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@aixcl/testkit";
import { describe, expect, it } from "vitest";
import { LokiAuthError, lokiCredentials, redactUrls } from "../src/loki-auth.js";

const none = { url: "http://loki:3100", username: "", password: "", password_file: "", bearer_token: "", bearer_token_file: "" };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("redactUrls", () => {
  it("replaces the user info of every URL in a text, and nothing else", () => {
    expect(redactUrls("https://user:tok3n@loki.example:443/x?q=1")).toBe("https://***@loki.example:443/x?q=1");
    expect(redactUrls("to http://a@h and HTTPS://b:c@h2/p, then http://plain:3100")).toBe("to http://***@h and HTTPS://***@h2/p, then http://plain:3100");
    expect(redactUrls("expected a URL, got \"htps://u:p%40ss@host\"")).toBe("expected a URL, got \"htps://***@host\"");
    expect(redactUrls("user@example.com wrote")).toBe("user@example.com wrote");
  });
});

describe("lokiCredentials", () => {
  it("sends nothing without credentials", () => {
    const c = lokiCredentials(none);
    expect({ url: c.url, scheme: c.scheme, header: c.header() }).toEqual({ url: "http://loki:3100", scheme: "none", header: undefined });
  });

  it("moves loki.url's user info into basic auth (percent-decoded) and strips it from the URL", () => {
    const c = lokiCredentials({ ...none, url: "https://us%40er:p%3Ass@loki.example/prefix" });
    expect(c.url).toBe("https://loki.example/prefix");
    expect(c.scheme).toBe("basic");
    expect(c.header()).toBe(basic("us@er", "p:ss"));
  });

  it("takes basic auth from settings or a password file (a trailing newline is not part of it)", () => {
    expect(lokiCredentials({ ...none, username: "aixcl", password: "pw" }).header()).toBe(basic("aixcl", "pw"));
    const file = join(tempDir("loki-auth"), "password");
    writeFileSync(file, "from-file\n");
    expect(lokiCredentials({ ...none, username: "aixcl", password_file: file }).header()).toBe(basic("aixcl", "from-file"));
  });

  it("takes a bearer token from a setting or a file, and reads the file again after a refusal", () => {
    expect(lokiCredentials({ ...none, bearer_token: "abc" }).header()).toBe("Bearer abc");
    const file = join(tempDir("loki-auth"), "token");
    writeFileSync(file, "old\n");
    const c = lokiCredentials({ ...none, bearer_token_file: file });
    expect(c.scheme).toBe("bearer");
    expect(c.header()).toBe("Bearer old");
    writeFileSync(file, "new\n");
    expect(c.header()).toBe("Bearer old");
    c.reload();
    expect(c.header()).toBe("Bearer new");
    // A file being replaced (briefly empty or gone) keeps what was read.
    writeFileSync(file, "");
    c.reload();
    expect(c.header()).toBe("Bearer new");
  });

  it("refuses credentials given twice, a password without a user name, an unreadable file; errors carry no secret", () => {
    const refused = (settings: Partial<typeof none>) => {
      try {
        lokiCredentials({ ...none, ...settings });
      } catch (error) {
        expect(error).toBeInstanceOf(LokiAuthError);
        expect((error as Error).message).not.toContain("s3cret");
        return (error as LokiAuthError).key;
      }
      throw new Error("not refused");
    };
    expect(refused({ url: "http://u:s3cret@loki:3100", username: "u", password: "s3cret" })).toBe("loki");
    expect(refused({ username: "u", password: "s3cret", bearer_token: "s3cret" })).toBe("loki");
    expect(refused({ bearer_token: "s3cret", bearer_token_file: "/f" })).toBe("loki");
    expect(refused({ password: "s3cret" })).toBe("loki.username");
    expect(refused({ username: "u", password_file: join(tempDir("loki-auth"), "missing") })).toBe("loki.password_file");
  });
});
