/**
 * The rules docker-compose.yml must follow, as a pure function over the parsed file so the rules themselves
 * can be tested against broken variants (compose.test.ts). Each problem names the service and what to change.
 */

export type Doc = Record<string, unknown>;
type Service = Record<string, unknown>;

/** Services built from this repository: they get the full hardening (non-root, read-only, no capabilities). */
export const OWN_SERVICES = ["broker", "log-consumer", "bus", "cli"];
/** The services that run a broker, and so publish the bus ports and mount the broker's keys: bus runs it in-process. */
const BROKERS = ["broker", "bus"];
/**
 * The profiles ./aixcl passes for each layout of the bus (test/stack/cli.test.ts checks that it does): the broker and
 * the consumer apart (the default), both in one process (AIXCL_BUS_PROCESSES=one), the consumer alone on someone
 * else's bus (AIXCL_BUS_HOST). Profile tools (the one-off cli) may join any of them.
 */
export const LAYOUTS: Record<string, string[]> = { "two processes": ["bus", "consumer"], "one process": ["bus-one"], "external bus": ["consumer"] };
/** The only capability a service may add back: Promtail reading other users' files in /var/log. */
const ALLOWED_CAP_ADD = ["DAC_READ_SEARCH"];

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Compose's own YAML tags (docker-compose.ha.yml), for the yaml package: !override and !reset read as plain values. */
export const composeTags = ["!override", "!reset"].flatMap((tag) => (["seq", "map"] as const).map((collection) => ({ tag, collection, resolve: (v: unknown) => v })));

export function services(doc: Doc): Record<string, Service> {
  return asRecord(doc.services) as Record<string, Service>;
}

/** KEY: value or KEY=value environment entries as a map. */
export function environment(service: Service): Record<string, string> {
  const env = service.environment;
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((e) => {
        const s = String(e);
        const i = s.indexOf("=");
        return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(asRecord(env)).map(([k, v]) => [k, String(v)]));
}

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
  bind: boolean;
}

/** Volumes in short (`src:dst[:ro]`) or long syntax. */
export function mounts(service: Service): Mount[] {
  return asList(service.volumes).map((v) => {
    if (typeof v === "string") {
      // ${VAR:-/default} may hold a colon-free path; split on the colons outside ${...}.
      const parts = v.split(/:(?![^{]*\})/);
      const [source = "", target = "", mode = ""] = parts.length === 1 ? ["", parts[0] ?? "", ""] : parts;
      return { source, target, readOnly: mode.split(",").includes("ro"), bind: /^[.$/~]/.test(source) };
    }
    const m = asRecord(v);
    return { source: String(m.source ?? ""), target: String(m.target ?? ""), readOnly: m.read_only === true, bind: m.type === "bind" };
  });
}

/**
 * The one address that may come from .env: the broker's two bus ports, for publishers on other machines, defaulting
 * to 127.0.0.1 (./aixcl start refuses another address without CURVE keys: check_bus_bind).
 */
export const BUS_BIND = "${AIXCL_BUS_BIND:-127.0.0.1}";
const BUS_PORTS = ["5555", "5556"];

function portProblems(name: string, service: Service): string[] {
  const problems: string[] = [];
  for (const p of asList(service.ports)) {
    if (typeof p === "string" || typeof p === "number") {
      // The host port may come from .env (${GRAFANA_PORT:-3000}); the address never does, but for the bus ports.
      const match = /^(127\.0\.0\.1|\$\{[A-Z0-9_]+:-[0-9.]+\}):(\d+|\$\{[A-Z0-9_]+:-\d+\}):(\d+)(\/(tcp|udp))?$/.exec(String(p));
      const address = match?.[1];
      const busPort = BROKERS.includes(name) && BUS_PORTS.includes(match?.[3] ?? "");
      if (address === undefined || (address !== "127.0.0.1" && !(busPort && address === BUS_BIND))) {
        problems.push(`${name}: port "${p}" must be published as 127.0.0.1:<host port>:<container port>${busPort ? ` (or ${BUS_BIND}:...)` : ""}`);
      }
    } else {
      const hostIp = asRecord(p).host_ip;
      if (hostIp !== "127.0.0.1") problems.push(`${name}: port ${JSON.stringify(p)} must set host_ip: 127.0.0.1`);
    }
  }
  return problems;
}

function imageProblems(name: string, service: Service, all: Record<string, Service>): string[] {
  const image = typeof service.image === "string" ? service.image : "";
  if (image === "") return [`${name}: no image; pin one (repository:version), or name the built image`];
  const digest = image.includes("@sha256:");
  const tag = /:([^/:@]+)(@|$)/.exec(image)?.[1];
  if (!digest && tag === undefined) return [`${name}: image ${image} has no tag; pin a version`];
  if (tag === "latest") return [`${name}: image ${image} uses latest; pin a version`];
  if (service.build !== undefined) {
    return service.pull_policy === "build" ? [] : [`${name}: built image ${image} needs pull_policy: build (never pull a registry image of that name)`];
  }
  const builtElsewhere = Object.values(all).some((s) => s.build !== undefined && s.image === image);
  if (builtElsewhere) return service.pull_policy === "never" ? [] : [`${name}: ${image} is built by another service; set pull_policy: never`];
  // A version, with the image's variant when it has one (nginx:1.30.6-alpine): never a moving tag (main, alpine).
  if (!digest && !/^v?\d+(\.\d+)+(-[a-z][a-z0-9.]*)?$/.test(tag ?? "")) return [`${name}: image ${image} must be pinned to a version (x.y.z), got tag ${tag}`];
  return [];
}

function isReadinessGated(service: Service): boolean {
  const deps = asRecord(service.depends_on);
  const conditions = Object.values(deps).map((d) => asRecord(d).condition);
  return asList(service.profiles).length > 0 && service.restart === "no" && conditions.length > 0 && conditions.every((c) => c === "service_healthy");
}

function healthProblems(name: string, service: Service): string[] {
  const hc = asRecord(service.healthcheck);
  const test = asList(hc.test);
  if (service.healthcheck !== undefined && hc.disable !== true && test.length > 1 && test[0] !== "NONE") return [];
  if (isReadinessGated(service)) return [];
  return [`${name}: needs a healthcheck (or, for a one-off tools service, depends_on every dependency with condition: service_healthy)`];
}

function hardeningProblems(name: string, service: Service): string[] {
  const problems: string[] = [];
  if (!asList(service.cap_drop).includes("ALL")) problems.push(`${name}: cap_drop must include ALL`);
  for (const cap of asList(service.cap_add)) {
    if (!ALLOWED_CAP_ADD.includes(String(cap))) problems.push(`${name}: cap_add ${cap} is not allowed`);
  }
  if (!asList(service.security_opt).some((o) => /^no-new-privileges(:true)?$/.test(String(o)))) {
    problems.push(`${name}: security_opt must include no-new-privileges:true`);
  }
  if (service.privileged === true) problems.push(`${name}: privileged containers are not allowed`);
  for (const ns of ["network_mode", "pid", "ipc", "userns_mode"]) {
    if (service[ns] === "host") problems.push(`${name}: ${ns}: host is not allowed (use the stack's bridge network)`);
  }
  if (OWN_SERVICES.includes(name)) {
    const user = String(service.user ?? "");
    if (user === "" || /^(0|root)(:|$)/.test(user)) problems.push(`${name}: must run as a non-root user`);
    if (service.read_only !== true) problems.push(`${name}: must have read_only: true`);
  }
  return problems;
}

function socketProblems(name: string, service: Service): string[] {
  return mounts(service)
    .filter((m) => /docker\.sock|podman\.sock/.test(`${m.source} ${m.target}`) && !m.readOnly)
    .map((m) => `${name}: the Docker socket ${m.source} must be mounted read-only (:ro)`);
}

/** Where ./aixcl start writes GRAFANA_ADMIN_PASSWORD of .env for Grafana (write_grafana_secret). */
export const GRAFANA_PASSWORD_FILE = "./.secrets/grafana_admin_password";

function grafanaProblems(all: Record<string, Service>, doc: Doc): string[] {
  const grafana = Object.entries(all).find(([, s]) => String(s.image ?? "").startsWith("grafana/grafana:"));
  if (!grafana) return ["no grafana/grafana service"];
  const [name, service] = grafana;
  const env = environment(service);
  const problems: string[] = [];
  if (env.GF_AUTH_ANONYMOUS_ENABLED !== "false") problems.push(`${name}: GF_AUTH_ANONYMOUS_ENABLED must be "false"`);
  if (env.GF_USERS_ALLOW_SIGN_UP !== "false") problems.push(`${name}: GF_USERS_ALLOW_SIGN_UP must be "false"`);
  // The password only from GRAFANA_ADMIN_PASSWORD, through the file ./aixcl start writes from it, never in the
  // environment (docker inspect shows that).
  if (env.GF_SECURITY_ADMIN_PASSWORD !== undefined) {
    problems.push(`${name}: GF_SECURITY_ADMIN_PASSWORD must not be set: docker inspect shows the environment; use GF_SECURITY_ADMIN_PASSWORD__FILE`);
  }
  const secret = /^\/run\/secrets\/([\w.-]+)$/.exec(env.GF_SECURITY_ADMIN_PASSWORD__FILE ?? "")?.[1];
  const granted = asList(service.secrets).map((s) => (typeof s === "string" ? s : String(asRecord(s).source)));
  if (secret === undefined || !granted.includes(secret) || asRecord(asRecord(doc.secrets)[secret]).file !== GRAFANA_PASSWORD_FILE) {
    problems.push(`${name}: GF_SECURITY_ADMIN_PASSWORD__FILE must be /run/secrets/<secret>, a secret of the service whose file is ${GRAFANA_PASSWORD_FILE}`);
  }
  if (env.GF_AUTH_DISABLE_LOGIN_FORM === "true") problems.push(`${name}: the admin password must come from GRAFANA_ADMIN_PASSWORD only`);
  return problems;
}

/**
 * Least privilege for the CurveZMQ keys: a service mounts at most its own folder of ./keys, the broker
 * ./keys/broker, a client ./keys/clients/<its MESSAGE_BUS_CLIENT_NAME>; never ./keys whole, which holds every
 * client's secret.
 */
function keyMountProblems(name: string, service: Service): string[] {
  const own = BROKERS.includes(name) ? "./keys/broker" : `./keys/clients/${environment(service).MESSAGE_BUS_CLIENT_NAME ?? "<MESSAGE_BUS_CLIENT_NAME>"}`;
  const source = (m: Mount) => m.source.replace(/\/$/, "");
  return mounts(service)
    .filter((m) => source(m) === "./keys" || source(m).startsWith("./keys/"))
    .filter((m) => source(m) !== own || !m.readOnly)
    .map((m) => `${name}: mounts ${m.source}; a service may mount only its own key folder, read-only (${own}:...:ro)`);
}

/** Every rule; an empty list means the file is fine. */
export function composeProblems(doc: Doc): string[] {
  const problems: string[] = [];
  if (doc.name !== "aixcl-logging") {
    problems.push(`name must be "aixcl-logging" (never "aixcl", AIXCL's own project: compose would take its containers for ours), got ${JSON.stringify(doc.name)}`);
  }
  const all = services(doc);
  const networks = Object.keys(asRecord(doc.networks));
  if (networks.length !== 1) problems.push(`exactly one network expected, got ${networks.length}`);
  for (const [name, service] of Object.entries(all)) {
    problems.push(...imageProblems(name, service, all), ...portProblems(name, service), ...healthProblems(name, service));
    problems.push(...hardeningProblems(name, service), ...socketProblems(name, service), ...keyMountProblems(name, service));
    const nets = Array.isArray(service.networks) ? service.networks : Object.keys(asRecord(service.networks));
    if (nets.length !== 1 || nets[0] !== networks[0]) problems.push(`${name}: must be on the stack's network ${networks[0]} only`);
    if (Array.isArray(service.depends_on)) problems.push(`${name}: depends_on must use the long form with condition: service_healthy`);
    for (const [dep, spec] of Object.entries(asRecord(service.depends_on))) {
      if (asRecord(spec).condition !== "service_healthy") problems.push(`${name}: depends_on ${dep} must wait for condition: service_healthy`);
    }
    if (service.mem_limit === undefined && asRecord(asRecord(asRecord(service.deploy).resources).limits).memory === undefined) {
      problems.push(`${name}: needs a memory limit (mem_limit)`);
    }
    // Long-running: no profile, or a profile of a layout of the bus; not the one-off tools.
    const longRunning = asList(service.profiles).every((p) => Object.values(LAYOUTS).flat().includes(String(p)));
    if (longRunning && !["unless-stopped", "always"].includes(String(service.restart))) {
      problems.push(`${name}: needs restart: unless-stopped`);
    }
  }
  problems.push(...grafanaProblems(all, doc), ...layoutProblems(all));
  return problems;
}

/**
 * In each layout of the bus, a named volume is mounted by one service at most (two consumers on one spool would wait
 * on its lock, two brokers on one backlog likewise), and a host port is published by one service at most (the second
 * container would not start).
 */
function layoutProblems(all: Record<string, Service>): string[] {
  const problems: string[] = [];
  for (const [layout, profiles] of Object.entries(LAYOUTS)) {
    const running = Object.entries(all).filter(([, s]) => {
      const own = asList(s.profiles).map(String);
      return own.length === 0 || own.some((p) => profiles.includes(p));
    });
    const users = new Map<string, string[]>();
    for (const [name, service] of running) {
      const volumes = mounts(service).filter((m) => !m.bind && m.source !== "").map((m) => `volume ${m.source}`);
      const ports = asList(service.ports).map((p) => `host port ${String(p).split(":").slice(0, -1).join(":")}`);
      for (const key of [...volumes, ...ports]) users.set(key, [...(users.get(key) ?? []), name]);
    }
    for (const [key, names] of users) if (names.length > 1) problems.push(`${layout} (profiles ${profiles.join(", ")}): ${key} is used by ${names.join(" and ")}; one service at most`);
  }
  return problems;
}
