import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { curveKeyPair } from "zeromq";
import type { KeyPair } from "@aixcl/client-logger";
import { assertReadableDir, clientKeyFiles, KeyFileError, readKey, serverKeyFile, z85Decode } from "@aixcl/client-logger";

/**
 * What the broker reads (MESSAGE_BUS_KEYS_DIR): broker.pub, broker.secret and allowed_clients ("<Z85 public key>
 * <name>" per line: who it admits). A client's folder and the reading rules are @aixcl/client-logger's.
 *
 * `./aixcl keys` keeps one such folder per container, so each is mounted alone and no container sees another's
 * secret (see stackKeyDirs below).
 */
export interface AllowedClient {
  key: Uint8Array;
  name: string;
}

export function brokerKeyFiles(dir: string): { publicKey: string; secretKey: string; allowList: string } {
  return { publicKey: serverKeyFile(dir), secretKey: join(dir, "broker.secret"), allowList: join(dir, "allowed_clients") };
}

/** True when the directory holds the broker's secret key, i.e. the bus is to run with CURVE. */
export function curveEnabled(dir: string): boolean {
  if (dir === "") return false;
  assertReadableDir(dir);
  return existsSync(brokerKeyFiles(dir).secretKey);
}

/** "<key> <name>" lines of a key list (allow-list, revoked list); "#" lines are comments. */
function readKeyList(file: string): { z85: string; key: Uint8Array; name: string }[] {
  const entries: { z85: string; key: Uint8Array; name: string }[] = [];
  readFileSync(file, "utf8").split("\n").forEach((raw, index) => {
    const line = raw.trim();
    const [z85 = "", name = `line ${index + 1}`] = line.split(/\s+/);
    const key = z85.length === 40 ? z85Decode(z85) : undefined;
    // "#" is a Z85 character (though never a key's first: 84 x 85^4 exceeds 32 bits), so a line is a comment
    // only when it does not start with a key.
    if (line === "" || (!key && line.startsWith("#"))) return;
    if (!key) throw new KeyFileError(file, `line ${index + 1}: ${JSON.stringify(z85)} is not a 40-character Z85 public key`);
    entries.push({ z85, key, name });
  });
  return entries;
}

export function readAllowList(file: string): AllowedClient[] {
  if (!existsSync(file)) throw new KeyFileError(file, "missing: with CURVE on, the broker admits only the clients listed there; create it with `./aixcl keys`");
  const clients = readKeyList(file).map(({ key, name }) => ({ key, name }));
  if (clients.length === 0) throw new KeyFileError(file, "lists no client, so nobody could connect; add clients with `./aixcl keys`");
  return clients;
}

export function loadBrokerKeys(dir: string): KeyPair & { allowed: AllowedClient[] } {
  const files = brokerKeyFiles(dir);
  return { publicKey: readKey(files.publicKey, false), secretKey: readKey(files.secretKey, true), allowed: readAllowList(files.allowList) };
}

const SECRET_MODE = 0o600;

function writeKeyPair(publicFile: string, secretFile: string, pair: KeyPair): void {
  writeFileSync(publicFile, `${pair.publicKey}\n`, { mode: 0o644 });
  writeFileSync(secretFile, `${pair.secretKey}\n`, { mode: SECRET_MODE });
  chmodSync(secretFile, SECRET_MODE);
}

const CLIENT_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function checkName(name: string): void {
  if (!CLIENT_NAME.test(name)) throw new KeyFileError(name, "client names are lower-case letters, digits, - and _ (up to 64)");
}

/**
 * The stack's keys folder (./keys), one folder per reader:
 *   broker/                       the broker's folder (its pair and the allow-list); only the broker mounts it
 *   clients/<name>/               a client's folder: broker.pub and clients/<name>.{pub,secret}, the layout the
 *                                 clients read, so it is what an application's machine gets (and the consumer
 *                                 and the cli container mount theirs alone)
 *   revoked_clients               "<Z85 public key> <name>" per line: keys that stay out of the allow-list
 */
export function stackKeyDirs(root: string): { broker: string; clients: string; revoked: string; client(name: string): string } {
  return {
    broker: join(root, "broker"),
    clients: join(root, "clients"),
    revoked: join(root, "revoked_clients"),
    client: (name) => join(root, "clients", name),
  };
}

export type ClientState = "allowed" | "revoked";

export interface StackClient {
  name: string;
  publicKey: string;
  state: ClientState;
  /** False for a client that registered a public key it made itself: its secret is on its own machine. */
  secretHere: boolean;
}

function revokedKeys(root: string): Set<string> {
  const file = stackKeyDirs(root).revoked;
  return new Set(existsSync(file) ? readKeyList(file).map((e) => e.z85) : []);
}

/** The layout ./aixcl keys wrote before each container got its own folder: ./aixcl moves it (migrate_key_layout). */
function refuseFlatLayout(root: string): void {
  for (const old of ["broker.secret", "broker.pub", "allowed_clients"]) {
    if (existsSync(join(root, old))) throw new KeyFileError(join(root, old), "is in the old single-folder layout; run ./aixcl keys from the checkout, which moves it to broker/ and clients/<name>/");
  }
}

function clientNames(root: string): string[] {
  const dir = stackKeyDirs(root).clients;
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && CLIENT_NAME.test(e.name) && existsSync(clientKeyFiles(join(dir, e.name), e.name).publicKey))
    .map((e) => e.name)
    .sort();
}

/** Every client of the stack's keys folder, with its state, by name. */
export function listClients(root: string): StackClient[] {
  const dirs = stackKeyDirs(root);
  const revoked = revokedKeys(root);
  return clientNames(root).map((name) => {
    const files = clientKeyFiles(dirs.client(name), name);
    const publicKey = readKey(files.publicKey, false);
    return { name, publicKey, state: revoked.has(publicKey) ? "revoked" : "allowed", secretHere: existsSync(files.secretKey) };
  });
}

/**
 * Copies the broker's public key into every client's folder and rewrites the allow-list: every client whose
 * public key is not revoked. Generation, revocation and registration all end here, so a revoked key stays out.
 */
function refresh(root: string): void {
  const dirs = stackKeyDirs(root);
  const broker = brokerKeyFiles(dirs.broker);
  const brokerPublic = readKey(broker.publicKey, false);
  for (const name of clientNames(root)) writeFileSync(serverKeyFile(dirs.client(name)), `${brokerPublic}\n`, { mode: 0o644 });
  const lines = listClients(root)
    .filter((c) => c.state === "allowed")
    .map((c) => `${c.publicKey} ${c.name}`);
  writeFileSync(
    broker.allowList,
    `# Clients the broker admits (CURVE public key, name), written by ./aixcl keys from clients/ minus revoked_clients.\n# Revoke with ./aixcl keys revoke <name>: an edit here is undone by the next ./aixcl keys.\n${lines.join("\n")}\n`,
    { mode: 0o644 },
  );
}

function mkdirPrivate(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * Creates the broker's key pair (unless present) and one for each named client (unless it has a key that is
 * not revoked: a revoked client named again gets a new pair, which is how a key is rotated), then refreshes the
 * clients' copies of the broker's public key and the allow-list. Returns the secret files it created.
 */
export function generateKeys(root: string, clients: readonly string[]): string[] {
  clients.forEach(checkName);
  if (existsSync(root)) refuseFlatLayout(root);
  const dirs = stackKeyDirs(root);
  mkdirPrivate(dirs.broker);
  mkdirPrivate(dirs.clients);
  const created: string[] = [];
  const broker = brokerKeyFiles(dirs.broker);
  if (!existsSync(broker.secretKey)) {
    writeKeyPair(broker.publicKey, broker.secretKey, curveKeyPair());
    created.push(broker.secretKey);
  }
  const revoked = revokedKeys(root);
  for (const name of clients) {
    const files = clientKeyFiles(dirs.client(name), name);
    if (existsSync(files.publicKey) && !revoked.has(readKey(files.publicKey, false))) continue;
    mkdirPrivate(join(dirs.client(name), "clients"));
    writeKeyPair(files.publicKey, files.secretKey, curveKeyPair());
    created.push(files.secretKey);
  }
  refresh(root);
  return created;
}

/** Puts a client's current public key on the revoked list for good and takes it off the allow-list. */
export function revokeClient(root: string, name: string): { publicKey: string; already: boolean } {
  checkName(name);
  refuseFlatLayout(root);
  const dirs = stackKeyDirs(root);
  const file = clientKeyFiles(dirs.client(name), name).publicKey;
  if (!existsSync(file)) throw new KeyFileError(file, `missing: there is no client ${JSON.stringify(name)}; ./aixcl keys list shows the clients`);
  const publicKey = readKey(file, false);
  const already = revokedKeys(root).has(publicKey);
  if (!already) {
    const header = existsSync(dirs.revoked) ? "" : "# Keys the broker never admits again (CURVE public key, name), written by ./aixcl keys revoke.\n";
    appendFileSync(dirs.revoked, `${header}${publicKey} ${name}\n`, { mode: 0o644 });
  }
  refresh(root);
  return { publicKey, already };
}

/**
 * Admits a client by a public key it made itself (its secret never leaves its machine): writes its folder
 * (public key and the broker's public key, no secret) and the allow-list. Creates the broker's pair when missing.
 */
export function registerClient(root: string, name: string, publicKey: string): void {
  checkName(name);
  const key = publicKey.trim();
  if (key.length !== 40 || z85Decode(key) === undefined) throw new KeyFileError(name, `${JSON.stringify(key)} is not a 40-character Z85 CURVE public key`);
  if (existsSync(root)) refuseFlatLayout(root);
  const revoked = revokedKeys(root);
  if (revoked.has(key)) throw new KeyFileError(name, "that public key was revoked; make a new key pair and register its public key");
  const dirs = stackKeyDirs(root);
  const files = clientKeyFiles(dirs.client(name), name);
  if (existsSync(files.publicKey)) {
    const current = readKey(files.publicKey, false);
    if (current !== key && !revoked.has(current)) {
      throw new KeyFileError(files.publicKey, `client ${JSON.stringify(name)} already has another key; revoke it first (./aixcl keys revoke ${name}) or choose another name`);
    }
  }
  mkdirPrivate(join(dirs.client(name), "clients"));
  // A secret made here for an earlier, revoked key does not belong to the registered one.
  rmSync(files.secretKey, { force: true });
  writeFileSync(files.publicKey, `${key}\n`, { mode: 0o644 });
  generateKeys(root, []);
}
