import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Doc } from "./compose-rules.js";
import { composeProblems, composeTags, environment, mounts, services } from "./compose-rules.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const read = (path: string) => readFileSync(join(root, path), "utf8");
// Compose resolves YAML merge keys (<<: *anchor); the yaml package does so only when asked.
const load = (text: string) => parse(text, { merge: true, customTags: composeTags }) as Doc;
const composeText = read("docker-compose.yml");
const compose = () => load(composeText);
const svc = (name: string) => {
  const s = services(compose())[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
/** The parsed file with one service's key replaced, to show a rule catches it. */
function withChange(name: string, key: string, value: unknown): Doc {
  const doc = compose();
  const s = services(doc)[name] as Record<string, unknown>;
  if (value === undefined) delete s[key];
  else s[key] = value;
  return doc;
}

describe("docker-compose.yml follows the stack's rules", () => {
  it("has no problems", () => {
    expect(composeProblems(compose())).toEqual([]);
  });

  it("has none with docker-compose.ha.yml over it (the HA profile), and a rule still catches what it is for there", () => {
    // Compose merges a service of the second file into the first's key by key; the gateway (loki) keeps the single
    // instance's hardening and replaces the rest. compose-config.test.ts checks the real merge (!override, !reset).
    const merged = (change?: (ha: Doc) => void): Doc => {
      const doc = compose();
      const ha = load(read("docker-compose.ha.yml"));
      change?.(ha);
      const base = services(doc);
      for (const [name, s] of Object.entries(services(ha))) base[name] = { ...(base[name] ?? {}), ...s };
      return doc;
    };
    expect(composeProblems(merged())).toEqual([]);
    const withS3Port = merged((ha) => {
      services(ha)["s3"]!.ports = ["7070:7070"];
    });
    expect(composeProblems(withS3Port)).toContain('s3: port "7070:7070" must be published as 127.0.0.1:<host port>:<container port>');
  });

  it("runs the seven services under the project name aixcl-logging, the one-process bus in the stead of two, plus the on-demand cli", () => {
    const doc = compose();
    expect(doc.name).toBe("aixcl-logging");
    expect(Object.keys(services(doc)).sort()).toEqual(["alertmanager", "broker", "bus", "cli", "grafana", "log-consumer", "loki", "prometheus", "promtail"]);
  });

  describe("each rule catches what it is for", () => {
    it.each([
      ["loki", "image", "grafana/loki:latest", "loki: image grafana/loki:latest uses latest; pin a version"],
      ["loki", "image", "grafana/loki", "loki: image grafana/loki has no tag; pin a version"],
      ["prometheus", "image", "prom/prometheus:main", "prometheus: image prom/prometheus:main must be pinned to a version (x.y.z), got tag main"],
      ["broker", "pull_policy", undefined, "broker: built image aixcl-broker:local needs pull_policy: build"],
      ["grafana", "ports", ["3000:3000"], 'grafana: port "3000:3000" must be published as 127.0.0.1:<host port>:<container port>'],
      ["grafana", "ports", ["0.0.0.0:3000:3000"], 'grafana: port "0.0.0.0:3000:3000" must be published'],
      ["grafana", "ports", [{ target: 3000, published: 3000 }], "grafana: port"],
      ["loki", "healthcheck", undefined, "loki: needs a healthcheck"],
      ["loki", "healthcheck", { test: ["NONE"] }, "loki: needs a healthcheck"],
      ["promtail", "network_mode", "host", "promtail: network_mode: host is not allowed"],
      ["promtail", "pid", "host", "promtail: pid: host is not allowed"],
      ["promtail", "privileged", true, "promtail: privileged containers are not allowed"],
      ["promtail", "cap_add", ["SYS_ADMIN"], "promtail: cap_add SYS_ADMIN is not allowed"],
      ["loki", "cap_drop", undefined, "loki: cap_drop must include ALL"],
      ["grafana", "security_opt", [], "grafana: security_opt must include no-new-privileges:true"],
      ["broker", "user", undefined, "broker: must run as a non-root user"],
      ["log-consumer", "user", "root", "log-consumer: must run as a non-root user"],
      ["broker", "read_only", false, "broker: must have read_only: true"],
      ["broker", "mem_limit", undefined, "broker: needs a memory limit"],
      ["broker", "restart", "no", "broker: needs restart: unless-stopped"],
      ["grafana", "depends_on", ["loki"], "grafana: depends_on must use the long form with condition: service_healthy"],
      ["grafana", "depends_on", { loki: { condition: "service_started" } }, "grafana: depends_on loki must wait for condition: service_healthy"],
      ["promtail", "volumes", ["/var/run/docker.sock:/var/run/docker.sock"], "promtail: the Docker socket /var/run/docker.sock must be mounted read-only (:ro)"],
      ["promtail", "volumes", ["${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock:rw"], "promtail: the Docker socket ${DOCKER_SOCKET"],
      ["loki", "ports", ["127.0.0.1:${LOKI_PORT:-3100}"], "loki: port"],
      ["loki", "ports", ["${LOKI_HOST:-127.0.0.1}:3100:3100"], "loki: port"],
      // AIXCL_BUS_BIND, for the broker's two bus ports only, and only with 127.0.0.1 as its default.
      ["loki", "ports", ["${AIXCL_BUS_BIND:-127.0.0.1}:${LOKI_PORT:-3100}:3100"], "loki: port"],
      ["broker", "ports", ["${AIXCL_BUS_BIND:-127.0.0.1}:${BROKER_METRICS_PORT:-9464}:9464"], "broker: port"],
      ["broker", "ports", ["${AIXCL_BUS_BIND:-0.0.0.0}:${BROKER_PUB_PORT:-5555}:5555"], "broker: port"],
      ["broker", "ports", ["${BUS_ADDRESS:-127.0.0.1}:${BROKER_SUB_PORT:-5556}:5556"], "broker: port"],
      ["broker", "ports", ["0.0.0.0:5555:5555"], "broker: port"],
      ["promtail", "networks", ["default"], "promtail: must be on the stack's network aixcl only"],
      ["alertmanager", "image", "prom/alertmanager:latest", "alertmanager: image prom/alertmanager:latest uses latest; pin a version"],
      ["alertmanager", "ports", ["9093:9093"], 'alertmanager: port "9093:9093" must be published as 127.0.0.1:<host port>:<container port>'],
      ["alertmanager", "healthcheck", undefined, "alertmanager: needs a healthcheck"],
      ["alertmanager", "security_opt", undefined, "alertmanager: security_opt must include no-new-privileges:true"],
      ["alertmanager", "mem_limit", undefined, "alertmanager: needs a memory limit"],
      ["bus", "ports", ["${AIXCL_BUS_BIND:-127.0.0.1}:${CONSUMER_METRICS_PORT:-9465}:9465"], "bus: port"],
      ["bus", "ports", ["0.0.0.0:5556:5556"], "bus: port"],
      ["bus", "user", undefined, "bus: must run as a non-root user"],
      ["bus", "read_only", false, "bus: must have read_only: true"],
      ["bus", "mem_limit", undefined, "bus: needs a memory limit"],
      ["bus", "restart", "no", "bus: needs restart: unless-stopped"],
      ["bus", "pull_policy", "never", "bus: built image aixcl-log-consumer:local needs pull_policy: build"],
      // A layout that would run two consumers on one spool, or two brokers on one backlog and one set of ports.
      ["log-consumer", "profiles", undefined, "one process (profiles bus-one): volume log-consumer-spool is used by log-consumer and bus; one service at most"],
      ["bus", "profiles", ["bus-one", "consumer"], "two processes (profiles bus, consumer): volume log-consumer-spool is used by log-consumer and bus; one service at most"],
      ["bus", "profiles", ["bus-one", "bus"], "two processes (profiles bus, consumer): host port ${AIXCL_BUS_BIND:-127.0.0.1}:${BROKER_PUB_PORT:-5555} is used by broker and bus"],
      ["broker", "profiles", ["bus", "bus-one"], "one process (profiles bus-one): volume broker-backlog is used by broker and bus"],
    ])("%s.%s = %j", (name, key, value, problem) => {
      const found = composeProblems(withChange(name, key, value));
      expect(found.some((p) => p.startsWith(problem))).toBe(true);
    });

    it("the one-off cli service needs its readiness gate when it has no healthcheck", () => {
      expect(composeProblems(withChange("cli", "depends_on", undefined))).toContain(
        "cli: needs a healthcheck (or, for a one-off tools service, depends_on every dependency with condition: service_healthy)",
      );
    });

    it.each([
      ["GF_AUTH_ANONYMOUS_ENABLED", "true", 'grafana: GF_AUTH_ANONYMOUS_ENABLED must be "false"'],
      ["GF_USERS_ALLOW_SIGN_UP", "true", 'grafana: GF_USERS_ALLOW_SIGN_UP must be "false"'],
      ["GF_SECURITY_ADMIN_PASSWORD", "${GRAFANA_ADMIN_PASSWORD:?required}", "grafana: GF_SECURITY_ADMIN_PASSWORD must not be set: docker inspect shows the environment"],
      ["GF_SECURITY_ADMIN_PASSWORD__FILE", "/etc/grafana/password", "grafana: GF_SECURITY_ADMIN_PASSWORD__FILE must be /run/secrets/<secret>"],
      ["GF_SECURITY_ADMIN_PASSWORD__FILE", "/run/secrets/other", "grafana: GF_SECURITY_ADMIN_PASSWORD__FILE must be /run/secrets/<secret>"],
    ])("grafana %s=%s", (key, value, problem) => {
      const doc = compose();
      const grafana = services(doc).grafana as Record<string, unknown>;
      grafana.environment = { ...environment(grafana), [key]: value };
      expect(composeProblems(doc).some((p) => p.startsWith(problem))).toBe(true);
    });

    it("grafana's password secret must come from the file ./aixcl start writes", () => {
      const doc = compose();
      (doc.secrets as Record<string, Record<string, unknown>>).grafana_admin_password = { file: "./grafana.password" };
      expect(composeProblems(doc)).toContainEqual(expect.stringMatching(/^grafana: GF_SECURITY_ADMIN_PASSWORD__FILE must be .* whose file is \.\/\.secrets\/grafana_admin_password/));
    });

    it.each([
      ["broker", "./keys:/keys:ro", "broker: mounts ./keys; a service may mount only its own key folder, read-only (./keys/broker:...:ro)"],
      ["log-consumer", "./keys:/keys:ro", "log-consumer: mounts ./keys; a service may mount only its own key folder"],
      ["log-consumer", "./keys/broker:/keys:ro", "log-consumer: mounts ./keys/broker; a service may mount only its own key folder, read-only (./keys/clients/log-consumer:...:ro)"],
      ["cli", "./keys/clients/log-consumer:/keys:ro", "cli: mounts ./keys/clients/log-consumer"],
      ["cli", "./keys/clients/cli:/keys", "cli: mounts ./keys/clients/cli"],
      ["bus", "./keys:/keys:ro", "bus: mounts ./keys; a service may mount only its own key folder, read-only (./keys/broker:...:ro)"],
      ["bus", "./keys/clients/log-consumer:/keys:ro", "bus: mounts ./keys/clients/log-consumer; a service may mount only its own key folder, read-only (./keys/broker:...:ro)"],
    ])("%s mounting %s", (name, volume, problem) => {
      const doc = compose();
      const s = services(doc)[name] as Record<string, unknown>;
      s.volumes = [...(s.volumes as unknown[]).filter((v) => !String(v).includes("keys")), volume];
      expect(composeProblems(doc)).toContainEqual(expect.stringContaining(problem));
    });

    it.each(["logging", "aixcl"])("the project name %s (aixcl is AIXCL's own)", (name) => {
      expect(composeProblems({ ...compose(), name })[0]).toMatch(/^name must be "aixcl-logging"/);
    });
  });
});

describe("docker-compose.yml agrees with the files it mounts", () => {
  it("every bind-mounted file or directory of the repository exists (Docker would create an empty directory instead)", () => {
    // Key folders are not in git (keys/ is ignored): ./aixcl makes exactly these before compose runs (KEY_MOUNTS).
    const keyMounts = /^KEY_MOUNTS="([^"]+)"$/m.exec(read("aixcl"))?.[1]?.split(" ").map((d) => `./keys/${d}`) ?? [];
    const keyed: string[] = [];
    for (const [name, service] of Object.entries(services(compose()))) {
      for (const m of mounts(service).filter((x) => x.source.startsWith("./"))) {
        if (m.source.startsWith("./keys/")) keyed.push(m.source);
        else expect(existsSync(join(root, m.source)), `${name} mounts ${m.source}`).toBe(true);
      }
    }
    // The bus mounts the broker's folder too.
    expect([...new Set(keyed)].sort()).toEqual(keyMounts.sort());
  });

  it("every named volume is declared, and data lives on the six named volumes", () => {
    const declared = Object.keys((compose().volumes ?? {}) as object);
    expect(declared.sort()).toEqual(["alertmanager-data", "broker-backlog", "grafana-data", "log-consumer-spool", "loki-data", "prometheus-data", "promtail-positions"]);
    for (const [name, service] of Object.entries(services(compose()))) {
      for (const m of mounts(service).filter((x) => !x.bind && x.source !== "")) expect(declared, `${name} uses volume ${m.source}`).toContain(m.source);
    }
  });

  it("Loki runs as uid 10001 with every path it writes on the loki-data volume at /loki, which the image creates for that uid", () => {
    const loki = svc("loki");
    expect(loki.user).toBe("10001:10001");
    const data = mounts(loki).find((m) => m.source === "loki-data");
    expect(data?.target).toBe("/loki");
    const config = parse(read("loki/loki-config.yml")) as Record<string, Record<string, unknown>>;
    const paths: [string, string][] = [];
    const collect = (node: unknown, key = "") => {
      if (typeof node === "string" && /(path_prefix|_directory|working_directory|rule_path)$/.test(key)) paths.push([key, node]);
      else if (node && typeof node === "object") for (const [k, v] of Object.entries(node)) collect(v, k);
    };
    collect(config);
    expect(paths.length).toBeGreaterThan(2);
    // The ruler only reads its rules folder; everything else is written.
    for (const [key, p] of paths.filter(([k]) => k !== "rules_directory")) expect(p === "/loki" || p.startsWith("/loki/"), `${key}: ${p} in loki-config.yml`).toBe(true);
  });

  it("Loki's ruler reads the repository's loki/rules, mounted read-only where the config says, one folder per tenant", () => {
    const config = parse(read("loki/loki-config.yml")) as { auth_enabled: boolean; common: { storage: { filesystem: { rules_directory: string } } }; ruler: { alertmanager_url: string } };
    const rules = mounts(svc("loki")).find((m) => m.source === "./loki/rules");
    expect(rules).toMatchObject({ target: config.common.storage.filesystem.rules_directory, readOnly: true });
    // auth_enabled: false makes every request tenant "fake"; the local rule store reads <dir>/<tenant>/*.yaml.
    expect(config.auth_enabled).toBe(false);
    expect(readdirSync(join(root, "loki/rules"))).toEqual(["fake"]);
    expect(readdirSync(join(root, "loki/rules/fake")).every((f) => /\.ya?ml$/.test(f))).toBe(true);
    expect(config.ruler.alertmanager_url).toBe("http://alertmanager:9093");
  });

  it("Alertmanager runs as the image's nobody, read-only, one instance, its silences on a named volume", () => {
    const am = svc("alertmanager");
    expect(am.user).toBe("65534:65534");
    expect(am.read_only).toBe(true);
    const command = am.command as string[];
    const storage = command.find((c) => c.startsWith("--storage.path="))?.slice("--storage.path=".length);
    expect(mounts(am).find((m) => m.target === storage)?.source).toBe("alertmanager-data");
    // No gossip port listening on every interface of the container.
    expect(command).toContain("--cluster.listen-address=");
    expect(command).toContain("--web.external-url=http://127.0.0.1:${ALERTMANAGER_PORT:-9093}/");
  });

  it("Loki's healthcheck uses the loki binary itself: the image has no shell, wget or curl", () => {
    const test = (svc("loki").healthcheck as { test: string[] }).test;
    expect(test.slice(0, 3)).toEqual(["CMD", "/usr/bin/loki", "-health"]);
    expect(test.join(" ")).not.toMatch(/wget|curl|CMD-SHELL|\bsh\b/);
  });

  it("each service reads the config file it mounts", () => {
    const configs: Record<string, [string, string]> = {
      loki: ["./loki/loki-config.yml", "-config.file="],
      promtail: ["./promtail/promtail-config.yml", "-config.file="],
      prometheus: ["./prometheus/prometheus.yml", "--config.file="],
      alertmanager: ["./alertmanager/alertmanager.yml", "--config.file="],
    };
    for (const [name, [source, flag]] of Object.entries(configs)) {
      const s = svc(name);
      const mount = mounts(s).find((m) => m.source === source);
      expect(mount?.readOnly, `${name} mounts ${source} read-only`).toBe(true);
      expect(s.command as string[], `${name} command`).toContain(`${flag}${mount?.target}`);
    }
  });

  it("Promtail expands ${VAR} in its config, keeps positions on a named volume and reads /var/log read-only", () => {
    const promtail = svc("promtail");
    const config = parse(read("promtail/promtail-config.yml")) as { positions: { filename: string } };
    if (read("promtail/promtail-config.yml").includes("${")) expect(promtail.command as string[]).toContain("-config.expand-env=true");
    const positionsDir = posix.dirname(config.positions.filename);
    const positions = mounts(promtail).find((m) => m.target === positionsDir);
    expect(positions?.source).toBe("promtail-positions");
    expect(mounts(promtail).find((m) => m.target === "/var/log")).toMatchObject({ source: "/var/log", readOnly: true });
  });

  it("every Prometheus scrape target and Alertmanager is a compose service on a port that service listens on", () => {
    const config = parse(read("prometheus/prometheus.yml")) as {
      scrape_configs: { job_name: string; static_configs?: { targets: string[] }[]; dns_sd_configs?: { names: string[]; port: number }[] }[];
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
    };
    const all = services(compose());
    const targets = [...config.scrape_configs, ...config.alerting.alertmanagers].flatMap((j) => [
      ...(j.static_configs ?? []).flatMap((s) => s.targets),
      ...("dns_sd_configs" in j ? (j.dns_sd_configs ?? []).flatMap((d) => d.names.map((n) => `${n}:${d.port}`)) : []),
    ]);
    expect(targets.length).toBeGreaterThanOrEqual(8);
    expect(config.alerting.alertmanagers.flatMap((a) => a.static_configs.flatMap((s) => s.targets))).toEqual(["alertmanager:9093"]);
    for (const target of targets) {
      const [host, port] = target.split(":");
      if (host === "localhost") continue;
      // The HA profile's Loki instances (docker-compose.ha.yml) publish nothing: Loki's own port, on the network only.
      const haInstance = host === "loki" ? undefined : services(load(read("docker-compose.ha.yml")))[host as string];
      if (haInstance !== undefined) {
        expect(String(haInstance.image), `scrape target ${target}`).toMatch(/^grafana\/loki:/);
        expect(port, `scrape target ${target}`).toBe(String((parse(read("loki/loki-ha.yml")) as { server: { http_listen_port: number } }).server.http_listen_port));
        continue;
      }
      const service = all[host as string];
      expect(service, `scrape target ${target}`).toBeDefined();
      const containerPorts = ((service?.ports ?? []) as string[]).map((p) => String(p).split(":").at(-1));
      expect(containerPorts, `scrape target ${target}`).toContain(port);
    }
  });

  it("Prometheus finds its rule files where prometheus.yml names them, mounted read-only beside it", () => {
    const config = parse(read("prometheus/prometheus.yml")) as { rule_files: string[] };
    const prometheus = svc("prometheus");
    const configTarget = mounts(prometheus).find((m) => m.source === "./prometheus/prometheus.yml")?.target ?? "";
    expect(config.rule_files).toEqual(["rules/*.yml"]);
    expect(mounts(prometheus).find((m) => m.source === "./prometheus/rules")).toMatchObject({ target: posix.join(posix.dirname(configTarget), "rules"), readOnly: true });
    expect(readdirSync(join(root, "prometheus/rules")).filter((f) => f.endsWith(".yml")).length).toBeGreaterThan(0);
  });

  it("Grafana gets the provisioning directory and every dashboard file lies under a dashboards provider's path", () => {
    const grafana = svc("grafana");
    const grafanaMounts = mounts(grafana);
    expect(grafanaMounts.find((m) => m.source === "./grafana/provisioning")).toMatchObject({ target: "/etc/grafana/provisioning", readOnly: true });
    const providerDir = join(root, "grafana/provisioning/dashboards");
    const providerFiles = existsSync(providerDir) ? readdirSync(providerDir).filter((f) => /\.ya?ml$/.test(f)) : [];
    expect(providerFiles, "grafana/provisioning/dashboards/*.yml (a dashboards provider)").not.toEqual([]);
    const providerPaths = providerFiles.flatMap((f) =>
      ((parse(readFileSync(join(providerDir, f), "utf8")) as { providers?: { options?: { path?: string } }[] }).providers ?? []).map((p) => p.options?.path ?? ""),
    );
    const dashboards = readdirSync(join(root, "grafana/dashboards")).filter((f) => f.endsWith(".json"));
    expect(dashboards.length).toBeGreaterThanOrEqual(3);
    for (const file of dashboards) {
      // Where the file appears inside the container, through whichever mount covers grafana/dashboards.
      const mount = grafanaMounts.find((m) => m.bind && `./grafana/dashboards/${file}`.startsWith(`${m.source}/`));
      expect(mount, `grafana/dashboards/${file} is mounted into Grafana`).toBeDefined();
      const inContainer = posix.join(mount?.target ?? "", `./grafana/dashboards/${file}`.slice((mount?.source ?? "").length));
      expect(
        providerPaths.some((p) => p !== "" && inContainer.startsWith(`${p.replace(/\/$/, "")}/`)),
        `${inContainer} is under a provider path (${providerPaths.join(", ")})`,
      ).toBe(true);
    }
  });

  it("the cli one-off's output is never collected, so logs tail cannot feed on itself", () => {
    const cli = svc("cli");
    expect(cli.logging).toEqual({ driver: "none" });
    expect(cli.entrypoint).toEqual(["node", "packages/cli/dist/main.js"]);
    expect(cli.image).toBe(svc("log-consumer").image);
    expect(read("services/log-consumer/Dockerfile")).toMatch(/COPY --from=build \/src\/packages\/cli\/dist packages\/cli\/dist/);
  });

  it("the broker publishes its two bus ports on AIXCL_BUS_BIND (127.0.0.1 by default), its metrics on 127.0.0.1", () => {
    expect(svc("broker").ports).toEqual([
      "${AIXCL_BUS_BIND:-127.0.0.1}:${BROKER_PUB_PORT:-5555}:5555",
      "${AIXCL_BUS_BIND:-127.0.0.1}:${BROKER_SUB_PORT:-5556}:5556",
      "127.0.0.1:${BROKER_METRICS_PORT:-9464}:9464",
    ]);
    expect(read(".env.example")).toMatch(/^AIXCL_BUS_BIND=127\.0\.0\.1$/m);
  });

  it("the one-process bus: the broker's and the consumer's ports, both /readyz in its health, reached by both names, `npm run bus`'s node options", () => {
    const bus = svc("bus");
    expect(bus.ports).toEqual([...(svc("broker").ports as string[]), ...(svc("log-consumer").ports as string[])]);
    expect(bus.networks).toEqual({ aixcl: { aliases: ["broker", "log-consumer"] } });
    const health = (bus.healthcheck as { test: string[] }).test.join(" ");
    for (const port of ["9464", "9465"]) expect(health).toContain(port);
    expect(health).toMatch(/every\(\(r\) => r\.ok\)/);
    // The consumer's image, built as log-consumer builds it, running services/bus with the options `npm run bus` has.
    expect(bus.image).toBe(svc("log-consumer").image);
    expect(bus.build).toEqual(svc("log-consumer").build);
    const script = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts.bus ?? "";
    expect(["tsc -b &&", ...(bus.command as string[])].join(" ")).toBe(script);
    const dockerfile = read("services/log-consumer/Dockerfile");
    expect(dockerfile).toMatch(/^COPY --from=build \/src\/services\/bus\/dist services\/bus\/dist$/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/src\/services\/broker\/dist services\/broker\/dist$/m);
    // The broker's and the consumer's settings, but no client name: the consumer inside needs no keys.
    expect(environment(bus)).toEqual({ ...environment(svc("broker")), ...environment(svc("log-consumer")), MESSAGE_BUS_HOST: "0.0.0.0", MESSAGE_BUS_SUB_PORT: undefined, MESSAGE_BUS_CLIENT_NAME: undefined } as unknown as Record<string, string>);
    expect(bus.stop_grace_period).toBe(svc("log-consumer").stop_grace_period);
  });

  it("the consumer's remote Loki credentials are secrets of the consumer alone, never values in the environment", () => {
    const doc = compose();
    const granted = Object.entries(services(doc))
      .filter(([, s]) => Array.isArray(s.secrets) && (s.secrets as string[]).some((x) => String(x).startsWith("loki_")))
      .map(([name]) => name);
    expect(granted).toEqual(["log-consumer", "bus"]);
    expect(svc("log-consumer").secrets).toEqual(["loki_password", "loki_bearer_token"]);
    expect(svc("bus").secrets).toEqual(["loki_password", "loki_bearer_token"]);
    const secrets = doc.secrets as Record<string, { file: string }>;
    expect(secrets.loki_password?.file).toBe("./.secrets/loki_password");
    expect(secrets.loki_bearer_token?.file).toBe("./.secrets/loki_bearer_token");
    const env = environment(svc("log-consumer"));
    expect(env).toMatchObject({
      LOKI_URL: "${AIXCL_LOKI_URL:-http://loki:3100}",
      LOKI_PASSWORD_FILE: "${AIXCL_LOKI_PASSWORD:+/run/secrets/loki_password}",
      LOKI_BEARER_TOKEN_FILE: "${AIXCL_LOKI_BEARER_TOKEN:+/run/secrets/loki_bearer_token}",
    });
    // Compose only tests whether .env sets the password or token (${X:+...}): their values are never interpolated.
    const code = composeText.replace(/^\s*#.*$/gm, "");
    const uses = [...code.matchAll(/\$\{(AIXCL_LOKI_PASSWORD|AIXCL_LOKI_BEARER_TOKEN)(\W[^}]*)\}/g)].map((m) => m[2]);
    expect(uses).toEqual([":+/run/secrets/loki_password", ":+/run/secrets/loki_bearer_token", ":+/run/secrets/loki_password", ":+/run/secrets/loki_bearer_token"]);
    expect(Object.keys(env).filter((k) => /^LOKI_(PASSWORD|BEARER_TOKEN)$/.test(k))).toEqual([]);
    expect(environment(svc("bus"))).toMatchObject({ LOKI_URL: env.LOKI_URL, LOKI_PASSWORD_FILE: env.LOKI_PASSWORD_FILE, LOKI_BEARER_TOKEN_FILE: env.LOKI_BEARER_TOKEN_FILE });
  });

  it(".env.example documents every variable docker-compose.yml reads, and holds no password", () => {
    const example = read(".env.example");
    const code = composeText.replace(/^\s*#.*$/gm, "");
    const used = [...code.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1] as string);
    expect(used.length).toBeGreaterThan(5);
    for (const name of new Set(used)) expect(example, `.env.example lacks ${name}`).toMatch(new RegExp(`^${name}=`, "m"));
    expect(example).toMatch(/^GRAFANA_ADMIN_PASSWORD=$/m);
  });
});

describe("the Dockerfiles", () => {
  const workspaces = (JSON.parse(read("package.json")) as { workspaces: string[] }).workspaces;

  for (const name of ["broker", "log-consumer"]) {
    describe(name, () => {
      const build = svc(name).build as { context: string; dockerfile: string };
      const text = read(build.dockerfile);
      const stages = text.split(/^FROM /m).slice(1);
      const final = stages.at(-1) ?? "";

      // A `# syntax=` directive makes BuildKit fetch a frontend image from Docker Hub before anything else:
      // behind a proxy, air-gapped, or on a machine with no registry, no build can start.
      it("needs no image from a registry beyond its base (no `# syntax=` frontend directive)", () => {
        expect(text).not.toMatch(/^#\s*syntax\s*=/im);
      });

      it("builds from the repository root with the Dockerfile under its service folder", () => {
        expect(build.context).toBe(".");
        expect(build.dockerfile).toBe(`services/${name}/Dockerfile`);
      });

      it("copies every workspace's package.json, so npm ci sees the lockfile's workspace tree", () => {
        for (const ws of workspaces) expect(text, `${build.dockerfile} misses ${ws}/package.json`).toContain(`COPY ${ws}/package.json ${ws}/`);
      });

      it("builds with npm ci and tsc -b, and ships production dependencies only", () => {
        expect(text).toMatch(/RUN npm ci [^\n]*--include-workspace-root/);
        expect(text).toMatch(/RUN npx tsc -b /);
        expect(text).toMatch(/RUN npm ci --omit=dev /);
        expect(final).toMatch(/COPY --from=deps \/src\/node_modules node_modules/);
        expect(final).not.toMatch(/COPY --from=build \/src\/node_modules/);
      });

      it("runs on Node 24 LTS as the unprivileged node user", () => {
        expect(text).toMatch(/^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
        // Every stage starts from the pinned Node image, directly or through an earlier stage.
        const names = ["${NODE_IMAGE}"];
        for (const stage of stages) {
          const [, base, as] = /^(\S+)(?:[ \t]+AS[ \t]+(\S+))?/i.exec(stage) ?? [];
          expect(names, `FROM ${base}`).toContain(base);
          if (as) names.push(as);
        }
        expect(final).toMatch(/^USER node$/m);
        expect(final).toMatch(/^ENV NODE_ENV=production$/m);
      });

      // The wire format is encoded and decoded by hand (no protobufjs, no .proto files at run time): the images carry
      // the config file only; test/stack/dockerfile-runtime.test.ts starts the services from exactly these files.
      it("copies the files the code reads at run time (config), and no .proto files nobody reads", () => {
        expect(final).toMatch(/COPY config\/message_bus\.yaml/);
        expect(final).not.toMatch(/COPY \S*proto/);
      });
    });
  }

  it("our services keep their data on named volumes whose mount points their images create writable by any uid", () => {
    // They run as the host user's uid (AIXCL_UID), and a new named volume takes the mount point's owner and mode
    // from the image: without 1777 there, the service could not write its own volume.
    const backlog: [volume: string, variable: string] = ["broker-backlog", "MESSAGE_BUS_BACKLOG_DIR"];
    const spool: [volume: string, variable: string] = ["log-consumer-spool", "LOG_CONSUMER_SPOOL_DIR"];
    // The bus mounts the two services' own volumes, so a switch between the layouts keeps what they hold.
    const dataDirs: Record<string, [volume: string, variable: string][]> = { broker: [backlog], "log-consumer": [spool], bus: [backlog, spool] };
    for (const [name, service] of Object.entries(services(compose()))) {
      if (!service.build) continue;
      const named = mounts(service).filter((m) => !m.bind && m.source !== "");
      expect(named.map((m) => m.source), `${name}'s named volumes`).toEqual((dataDirs[name] ?? []).map(([volume]) => volume));
    }
    for (const [name, [volume, variable]] of Object.entries(dataDirs).flatMap(([n, dirs]) => dirs.map((d) => [n, d] as const))) {
      const service = svc(name);
      expect(String(service.user)).toMatch(/^\$\{AIXCL_UID/);
      const mount = mounts(service).find((m) => m.source === volume);
      expect(mount?.readOnly, `${name} mounts ${volume} writable`).toBe(false);
      const target = mount?.target as string;
      expect(environment(service)[variable], `${name}: ${variable}`).toMatch(new RegExp(`^${target}/`));
      const dockerfile = read((service.build as { dockerfile: string }).dockerfile);
      const final = dockerfile.split(/^FROM /m).at(-1) ?? "";
      expect(final, `${name}'s image creates ${target} with mode 1777`).toContain(`RUN mkdir -p ${target} && chmod 1777 ${target}`);
    }
  });

  it(".dockerignore keeps .env, node_modules and build output out of the context", () => {
    const ignore = read(".dockerignore").split("\n");
    for (const entry of [".env", "**/node_modules", "**/dist", ".git"]) expect(ignore).toContain(entry);
  });
});
