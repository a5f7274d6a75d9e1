import { readFileSync } from "node:fs";

/**
 * Loki's credentials: basic auth or a bearer token, from settings or from files (Docker secrets), and the user
 * info of loki.url, which becomes basic auth. Plain functions, so the rules are tested without sockets.
 */

/** The loki.* settings this module reads. */
export interface LokiAuthSettings {
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly password_file: string;
  readonly bearer_token: string;
  readonly bearer_token_file: string;
}

/** A problem with the credential settings; `key` names the setting. */
export class LokiAuthError extends Error {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${key}: ${reason}`);
    this.name = "LokiAuthError";
  }
}

/** What the client sends: the URL without user info, and an Authorization header that can be read again. */
export interface LokiCredentials {
  /** loki.url without its user info. */
  readonly url: string;
  readonly scheme: "none" | "basic" | "bearer";
  /** The Authorization header, or undefined without credentials. */
  header(): string | undefined;
  /** Reads the password or token file again (after Loki refused them: a rotated secret is picked up). */
  reload(): void;
}

const USER_INFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/?#\s@]*@/gi;

/** Text with the user info of every URL in it replaced by "***": what may be logged or put in an error. */
export function redactUrls(text: string): string {
  return text.replace(USER_INFO, "$1***@");
}

/** Reads a secret file: its content without a trailing newline (what `echo secret > file` adds). */
function readSecret(key: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new LokiAuthError(key, `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); give a file this user can read`);
  }
  const secret = text.replace(/\r?\n$/, "");
  if (secret === "") throw new LokiAuthError(key, `${file} is empty`);
  return secret;
}

/**
 * The credentials the settings describe; throws LokiAuthError naming the setting when they contradict each
 * other or a file cannot be read. At most one of: user info in loki.url, loki.username (with loki.password or
 * loki.password_file), loki.bearer_token or loki.bearer_token_file.
 */
export function lokiCredentials(settings: LokiAuthSettings): LokiCredentials {
  const url = new URL(settings.url);
  const fromUrl = url.username !== "" || url.password !== "";
  const userInfo = { username: decodeUserInfo(url.username), password: decodeUserInfo(url.password) };
  url.username = "";
  url.password = "";
  const bare = url.toString().replace(/\/$/, "");
  const given = [
    fromUrl && "user info in loki.url",
    (settings.username !== "" || settings.password !== "" || settings.password_file !== "") && "loki.username",
    settings.bearer_token !== "" && "loki.bearer_token",
    settings.bearer_token_file !== "" && "loki.bearer_token_file",
  ].filter((g): g is string => g !== false);
  if (given.length > 1) throw new LokiAuthError("loki", `credentials are given more than once (${given.join(", ")}); keep one`);
  if (settings.password !== "" && settings.password_file !== "") {
    throw new LokiAuthError("loki.password", "set loki.password or loki.password_file, not both");
  }
  if (settings.username === "" && (settings.password !== "" || settings.password_file !== "")) {
    throw new LokiAuthError("loki.username", "a password needs a user name: set loki.username (LOKI_USERNAME)");
  }

  let read: () => string | undefined;
  let scheme: LokiCredentials["scheme"] = "none";
  if (fromUrl) {
    scheme = "basic";
    read = () => basic(userInfo.username, userInfo.password);
  } else if (settings.username !== "") {
    scheme = "basic";
    read = () => basic(settings.username, settings.password_file !== "" ? readSecret("loki.password_file", settings.password_file) : settings.password);
  } else if (settings.bearer_token !== "" || settings.bearer_token_file !== "") {
    scheme = "bearer";
    read = () => `Bearer ${settings.bearer_token_file !== "" ? readSecret("loki.bearer_token_file", settings.bearer_token_file) : settings.bearer_token}`;
  } else {
    read = () => undefined;
  }
  let header = read();
  return {
    url: bare,
    scheme,
    header: () => header,
    reload() {
      try {
        header = read();
      } catch {
        // The file is being replaced, or gone: keep what was read, and try again at the next refusal.
      }
    },
  };
}

/** User info is percent-encoded in a URL (a password with @ or : must be); a stray % is taken as it is. */
function decodeUserInfo(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}
