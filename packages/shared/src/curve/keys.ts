import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { curveKeyPair } from "zeromq";
import { z85Decode } from "./z85.js";

/**
 * Key directory layout (what `./aixcl keys` writes):
 *   broker.pub, broker.secret              the broker's CURVE key pair (Z85, 40 characters each)
 *   clients/<name>.pub, clients/<name>.secret   one key pair per client
 *   allowed_clients                        "<Z85 public key> <name>" per line: who the broker admits
 * Secret files are mode 0600 and refused when group or others can read them.
 */
export interface KeyPair {
  publicKey: string;
  secretKey: string;
}

export interface ClientKeys extends KeyPair {
  /** The broker's public key, which a CURVE client must know in advance. */
  serverKey: string;
}

export interface AllowedClient {
  key: Uint8Array;
  name: string;
}

/** Why a key file is unusable, naming the file and what to do. */
export class KeyFileError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = "KeyFileError";
  }
}

const SECRET_MODE = 0o600;

function readKey(file: string, secret: boolean): string {
  if (!existsSync(file)) throw new KeyFileError(file, "missing; create keys with `./aixcl keys`");
  if (secret && (statSync(file).mode & 0o077) !== 0) {
    throw new KeyFileError(file, `readable by group or others (mode ${(statSync(file).mode & 0o777).toString(8)}); run chmod 600 on it`);
  }
  const key = readFileSync(file, "utf8").trim();
  if (key.length !== 40 || z85Decode(key) === undefined) throw new KeyFileError(file, "not a 40-character Z85 CURVE key");
  return key;
}

export function brokerKeyFiles(dir: string): { publicKey: string; secretKey: string; allowList: string } {
  return { publicKey: join(dir, "broker.pub"), secretKey: join(dir, "broker.secret"), allowList: join(dir, "allowed_clients") };
}

export function clientKeyFiles(dir: string, name: string): { publicKey: string; secretKey: string } {
  return { publicKey: join(dir, "clients", `${name}.pub`), secretKey: join(dir, "clients", `${name}.secret`) };
}

/**
 * Throws when a configured keys folder exists but cannot be read: existsSync would then answer "no keys" and
 * the bus would silently run plaintext.
 */
function assertReadableDir(dir: string): void {
  try {
    readdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    throw new KeyFileError(dir, `cannot read it (${code}): it must be readable by uid ${process.getuid?.() ?? "?"}, the user this process runs as (AIXCL_UID in .env)`);
  }
}

/** True when the directory holds the broker's secret key, i.e. the bus is to run with CURVE. */
export function curveEnabled(dir: string): boolean {
  if (dir === "") return false;
  assertReadableDir(dir);
  return existsSync(brokerKeyFiles(dir).secretKey);
}

export function readAllowList(file: string): AllowedClient[] {
  if (!existsSync(file)) throw new KeyFileError(file, "missing: with CURVE on, the broker admits only the clients listed there; create it with `./aixcl keys`");
  const clients: AllowedClient[] = [];
  readFileSync(file, "utf8").split("\n").forEach((raw, index) => {
    const line = raw.trim();
    const [z85 = "", name = `line ${index + 1}`] = line.split(/\s+/);
    const key = z85.length === 40 ? z85Decode(z85) : undefined;
    // "#" is a Z85 character (though never a key's first: 84 x 85^4 exceeds 32 bits), so a line is a comment
    // only when it does not start with a key.
    if (line === "" || (!key && line.startsWith("#"))) return;
    if (!key) throw new KeyFileError(file, `line ${index + 1}: ${JSON.stringify(z85)} is not a 40-character Z85 public key`);
    clients.push({ key, name });
  });
  if (clients.length === 0) throw new KeyFileError(file, "lists no client, so nobody could connect; add clients with `./aixcl keys`");
  return clients;
}

export function loadBrokerKeys(dir: string): KeyPair & { allowed: AllowedClient[] } {
  const files = brokerKeyFiles(dir);
  return { publicKey: readKey(files.publicKey, false), secretKey: readKey(files.secretKey, true), allowed: readAllowList(files.allowList) };
}

export function loadClientKeys(dir: string, name: string): ClientKeys {
  const files = clientKeyFiles(dir, name);
  return {
    serverKey: readKey(brokerKeyFiles(dir).publicKey, false),
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
  if (!existsSync(brokerKeyFiles(dir).publicKey)) return undefined;
  const name = env.MESSAGE_BUS_CLIENT_NAME || defaultName;
  if (!name) throw new KeyFileError(dir, "holds the broker's key, so the bus needs CURVE: set MESSAGE_BUS_CLIENT_NAME to the client whose key pair to use");
  return loadClientKeys(dir, name);
}

/** zeromq socket options that make a client socket speak CURVE to the broker. */
export function curveClientOptions(keys: ClientKeys): { curveServerKey: string; curvePublicKey: string; curveSecretKey: string } {
  return { curveServerKey: keys.serverKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey };
}

function writeKeyPair(publicFile: string, secretFile: string, pair: KeyPair): void {
  writeFileSync(publicFile, `${pair.publicKey}\n`, { mode: 0o644 });
  writeFileSync(secretFile, `${pair.secretKey}\n`, { mode: SECRET_MODE });
  chmodSync(secretFile, SECRET_MODE);
}

const CLIENT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/**
 * Creates the broker's key pair (unless present) and one for each named client (unless present), and
 * (re)writes the allow-list from every client key in the directory. Returns what it created.
 */
export function generateKeys(dir: string, clients: readonly string[]): string[] {
  const created: string[] = [];
  for (const name of clients) {
    if (!CLIENT_NAME.test(name)) throw new KeyFileError(name, "client names are lower-case letters, digits, - and _ (up to 64)");
  }
  mkdirSync(join(dir, "clients"), { recursive: true, mode: 0o700 });
  const broker = brokerKeyFiles(dir);
  if (!existsSync(broker.secretKey)) {
    writeKeyPair(broker.publicKey, broker.secretKey, curveKeyPair());
    created.push(broker.secretKey);
  }
  for (const name of clients) {
    const files = clientKeyFiles(dir, name);
    if (existsSync(files.secretKey)) continue;
    writeKeyPair(files.publicKey, files.secretKey, curveKeyPair());
    created.push(files.secretKey);
  }
  const names = new Set([...clients, ...existingClients(dir)]);
  const lines = [...names].sort().map((name) => `${readKey(clientKeyFiles(dir, name).publicKey, false)} ${name}`);
  writeFileSync(broker.allowList, `# Clients the broker admits (CURVE public key, name). Remove a line to revoke.\n${lines.join("\n")}\n`, { mode: 0o644 });
  return created;
}

function existingClients(dir: string): string[] {
  return readdirSync(join(dir, "clients"))
    .filter((f) => f.endsWith(".pub"))
    .map((f) => f.slice(0, -4));
}
