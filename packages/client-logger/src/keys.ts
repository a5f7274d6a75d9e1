import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { z85Decode } from "./z85.js";

/**
 * What a client reads (MESSAGE_BUS_KEYS_DIR): broker.pub (the broker's public key), clients/<name>.pub and
 * clients/<name>.secret (its own pair). Keys are Z85, 40 characters. Secret files are mode 0600 and refused when
 * group or others can read them.
 *
 * The broker's folder and the stack's keys folder that `./aixcl keys` keeps are @aixcl/service-runtime's; the
 * reading rules here serve both.
 */
export interface KeyPair {
  publicKey: string;
  secretKey: string;
}

export interface ClientKeys extends KeyPair {
  /** The broker's public key, which a CURVE client must know in advance. */
  serverKey: string;
}

/** Why a key file is unusable, naming the file and what to do. */
export class KeyFileError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = "KeyFileError";
  }
}

/** A 40-character Z85 key from its file; a secret one must be private to its owner. */
export function readKey(file: string, secret: boolean): string {
  if (!existsSync(file)) throw new KeyFileError(file, "missing; create keys with `./aixcl keys`");
  if (secret && (statSync(file).mode & 0o077) !== 0) {
    throw new KeyFileError(file, `readable by group or others (mode ${(statSync(file).mode & 0o777).toString(8)}); run chmod 600 on it`);
  }
  const key = readFileSync(file, "utf8").trim();
  if (key.length !== 40 || z85Decode(key) === undefined) throw new KeyFileError(file, "not a 40-character Z85 CURVE key");
  return key;
}

/** The broker's public key in a keys folder: the broker's own and every client's copy go by this one name. */
export function serverKeyFile(dir: string): string {
  return join(dir, "broker.pub");
}

export function clientKeyFiles(dir: string, name: string): { publicKey: string; secretKey: string } {
  return { publicKey: join(dir, "clients", `${name}.pub`), secretKey: join(dir, "clients", `${name}.secret`) };
}

/**
 * Throws when a configured keys folder exists but cannot be read: existsSync would then answer "no keys" and
 * the bus would silently run plaintext.
 */
export function assertReadableDir(dir: string): void {
  try {
    readdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    throw new KeyFileError(dir, `cannot read it (${code}): it must be readable by uid ${process.getuid?.() ?? "?"}, the user this process runs as (AIXCL_UID in .env)`);
  }
}

export function loadClientKeys(dir: string, name: string): ClientKeys {
  const files = clientKeyFiles(dir, name);
  return {
    serverKey: readKey(serverKeyFile(dir), false),
    publicKey: readKey(files.publicKey, false),
    secretKey: readKey(files.secretKey, true),
  };
}

/**
 * The client keys named by the environment: MESSAGE_BUS_KEYS_DIR holding the broker's public key turns CURVE
 * on, and MESSAGE_BUS_CLIENT_NAME (default `defaultName`) picks the key pair. Undefined means plaintext.
 */
export function clientKeysFromEnv(env: NodeJS.ProcessEnv, defaultName?: string): ClientKeys | undefined {
  const dir = env.MESSAGE_BUS_KEYS_DIR ?? "";
  if (dir === "") return undefined;
  assertReadableDir(dir);
  if (!existsSync(serverKeyFile(dir))) return undefined;
  const name = env.MESSAGE_BUS_CLIENT_NAME || defaultName;
  if (!name) throw new KeyFileError(dir, "holds the broker's key, so the bus needs CURVE: set MESSAGE_BUS_CLIENT_NAME to the client whose key pair to use");
  return loadClientKeys(dir, name);
}

/** zeromq socket options that make a client socket speak CURVE to the broker. */
export function curveClientOptions(keys: ClientKeys): { curveServerKey: string; curvePublicKey: string; curveSecretKey: string } {
  return { curveServerKey: keys.serverKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey };
}
