/**
 * docker-compose.yml through compose-go, the loader Docker Compose itself uses (test/stack/compose-config is
 * a ten-line Go wrapper, pinned in its go.mod): the compose-spec schema validation and the ${VAR} interpolation
 * that `docker compose config` performs, run without a Docker engine. Go is already required to build the
 * real components, so like them this runs in CI and may skip elsewhere.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "@aixcl/testkit";

const root = fileURLToPath(new URL("../../", import.meta.url));
const goFound = spawnSync("bash", ["-c", "command -v go || ls /usr/local/go/bin/go"], { encoding: "utf8" }).stdout.trim().split("\n")[0] ?? "";
const skip = goFound === "" ? "no Go toolchain (needed to build compose-go, as for the components)" : undefined;
if (skip && process.env.CI === "true") throw new Error(`CI=true and ${skip}`);
if (skip) console.warn(`SKIPPED test/stack/compose-config.test.ts: ${skip}`);

interface Port {
  host_ip?: string;
  target: number;
  published?: string;
}
interface Resolved {
  name: string;
  services: Record<string, { image?: string; ports?: Port[]; environment?: Record<string, string>; volumes?: { source: string; target: string; read_only?: boolean }[]; profiles?: string[]; secrets?: { source: string; target?: string }[]; entrypoint?: string[] | null; command?: string[] | null }>;
  secrets?: Record<string, { file?: string }>;
}

describe.skipIf(skip !== undefined)("docker-compose.yml as Docker Compose loads it (compose-go)", () => {
  let dir: string;
  let bin: string;

  beforeAll(() => {
    dir = tempDir("compose-config");
    bin = join(dir, "compose-config");
    execFileSync(goFound, ["build", "-o", bin, "."], { cwd: join(root, "test/stack/compose-config"), stdio: "pipe", timeout: 600_000 });
  }, 600_000);

  /** Every profile unless `profiles` names some: then the services compose enables with them. */
  function load(envText: string, composeFile = join(root, "docker-compose.yml"), profiles?: string[]) {
    const envFile = join(dir, "test.env");
    writeFileSync(envFile, envText);
    const r = spawnSync(bin, [composeFile, root, envFile, ...(profiles ? [profiles.join(",")] : [])], { encoding: "utf8", timeout: 60_000 });
    return { status: r.status, stderr: r.stderr, project: r.status === 0 ? (JSON.parse(r.stdout) as Resolved) : undefined };
  }

  /** .env as ./aixcl start writes it: .env.example with a generated password. */
  const dotEnv = (password = "k3Jq9sZpW2xYv8LmN4bT6cRd1fGh5aEu") =>
    readFileSync(join(root, ".env.example"), "utf8").replace(/^GRAFANA_ADMIN_PASSWORD=$/m, `GRAFANA_ADMIN_PASSWORD=${password}`);

  it("loads and validates with the .env ./aixcl start creates, every port on 127.0.0.1", () => {
    const r = load(dotEnv());
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const project = r.project as Resolved;
    expect(project.name).toBe("aixcl");
    expect(Object.keys(project.services).sort()).toEqual(["alertmanager", "broker", "bus", "cli", "grafana", "log-consumer", "loki", "prometheus", "promtail"]);
    const ports = Object.values(project.services).flatMap((s) => s.ports ?? []);
    expect(ports).toHaveLength(13);
    for (const p of ports) expect(p.host_ip, JSON.stringify(p)).toBe("127.0.0.1");
    // The password is nowhere in the resolved project (docker inspect would show an environment variable): Grafana
    // reads the file ./aixcl start writes from .env.
    expect(JSON.stringify(project)).not.toContain("k3Jq9sZpW2xYv8LmN4bT6cRd1fGh5aEu");
    expect(project.services.grafana?.environment?.GF_SECURITY_ADMIN_PASSWORD__FILE).toBe("/run/secrets/grafana_admin_password");
    expect(project.services.grafana?.secrets?.map((x) => x.source)).toEqual(["grafana_admin_password"]);
    expect(project.secrets?.grafana_admin_password?.file).toBe(join(root, ".secrets/grafana_admin_password"));
    // Each service sees its own key folder only.
    const keys = (service: string) => project.services[service]?.volumes?.filter((v) => v.target === "/keys").map((v) => [v.source, v.read_only]);
    expect(keys("broker")).toEqual([[join(root, "keys/broker"), true]]);
    expect(keys("bus")).toEqual([[join(root, "keys/broker"), true]]);
    expect(keys("log-consumer")).toEqual([[join(root, "keys/clients/log-consumer"), true]]);
    expect(keys("cli")).toEqual([[join(root, "keys/clients/cli"), true]]);
    const socket = project.services.promtail?.volumes?.find((v) => v.target === "/var/run/docker.sock");
    expect(socket).toMatchObject({ source: "/var/run/docker.sock", read_only: true });
  });

  it("takes host ports and the Docker socket path from .env", () => {
    const r = load(`${dotEnv()}\nGRAFANA_PORT=3300\nALERTMANAGER_PORT=19093\nDOCKER_SOCKET=/run/user/1000/docker.sock\n`);
    expect(r.status).toBe(0);
    expect(r.project?.services.grafana?.ports?.[0]).toMatchObject({ host_ip: "127.0.0.1", published: "3300", target: 3000 });
    expect(r.project?.services.alertmanager?.ports?.[0]).toMatchObject({ host_ip: "127.0.0.1", published: "19093", target: 9093 });
    // Alertmanager's links follow the published port; the command's ${...} is interpolated like the ports.
    expect((r.project?.services.alertmanager as { command?: string[] } | undefined)?.command).toContain("--web.external-url=http://127.0.0.1:19093/");
    expect(r.project?.services.promtail?.volumes?.find((v) => v.target === "/var/run/docker.sock")?.source).toBe("/run/user/1000/docker.sock");
  });

  it("publishes the two bus ports on AIXCL_BUS_BIND, the broker's metrics still on 127.0.0.1", () => {
    const r = load(`${dotEnv()}\nAIXCL_BUS_BIND=192.168.1.20\n`);
    expect(r.stderr).toBe("");
    const ports = r.project?.services.broker?.ports ?? [];
    expect(ports.map((p) => [p.host_ip, p.target])).toEqual([["192.168.1.20", 5555], ["192.168.1.20", 5556], ["127.0.0.1", 9464]]);
    // Every other service stays on 127.0.0.1.
    expect((r.project?.services.bus?.ports ?? []).map((p) => [p.host_ip, p.target])).toEqual([["192.168.1.20", 5555], ["192.168.1.20", 5556], ["127.0.0.1", 9464], ["127.0.0.1", 9465]]);
    const others = Object.entries(r.project?.services ?? {}).filter(([name]) => name !== "broker" && name !== "bus").flatMap(([, s]) => s.ports ?? []);
    for (const p of others) expect(p.host_ip, JSON.stringify(p)).toBe("127.0.0.1");
  });

  it("points the consumer at a remote Loki from .env: URL, CA file, tenant, user; the password only as a secret file", () => {
    const consumer = (envText: string) => {
      const r = load(envText);
      expect(r.stderr).toBe("");
      return r.project?.services["log-consumer"];
    };
    // The defaults: the stack's Loki, no credentials, the CA mount unused.
    const local = consumer(dotEnv());
    expect(local?.environment).toMatchObject({ LOKI_URL: "http://loki:3100", LOKI_CA_FILE: "", LOKI_USERNAME: "", LOKI_PASSWORD_FILE: "", LOKI_BEARER_TOKEN_FILE: "" });
    expect(local?.volumes?.find((v) => v.target === "/etc/aixcl/loki-ca.pem")).toMatchObject({ source: "/dev/null", read_only: true });
    expect(local?.secrets?.map((x) => x.source)).toEqual(["loki_password", "loki_bearer_token"]);

    const remote = consumer(
      `${dotEnv()}\nAIXCL_LOKI_URL=https://logs.example.net\nAIXCL_LOKI_CA_FILE=./certs/ca.pem\nAIXCL_LOKI_TENANT_ID=team-a\nAIXCL_LOKI_USERNAME=edge-1\nAIXCL_LOKI_PASSWORD=pa55-Xq7\nAIXCL_CONSUMER_LABELS=host=berlin-1\n`,
    );
    expect(remote?.environment).toMatchObject({
      LOKI_URL: "https://logs.example.net",
      LOKI_CA_FILE: "/etc/aixcl/loki-ca.pem",
      LOKI_TENANT_ID: "team-a",
      LOKI_USERNAME: "edge-1",
      LOKI_PASSWORD_FILE: "/run/secrets/loki_password",
      LOKI_BEARER_TOKEN_FILE: "",
      LOG_CONSUMER_STATIC_LABELS: "host=berlin-1",
    });
    expect(remote?.volumes?.find((v) => v.target === "/etc/aixcl/loki-ca.pem")).toMatchObject({ source: join(root, "certs/ca.pem"), read_only: true });
    const token = consumer(`${dotEnv()}\nAIXCL_LOKI_URL=https://logs.example.net\nAIXCL_LOKI_BEARER_TOKEN=t0ken-Zr4\n`);
    expect(token?.environment).toMatchObject({ LOKI_PASSWORD_FILE: "", LOKI_BEARER_TOKEN_FILE: "/run/secrets/loki_bearer_token" });
    // Neither secret is anywhere in the resolved project, the files are the ones ./aixcl start writes, and no other
    // service gets them.
    const project = load(`${dotEnv()}\nAIXCL_LOKI_USERNAME=edge-1\nAIXCL_LOKI_PASSWORD=pa55-Xq7\nAIXCL_LOKI_BEARER_TOKEN=t0ken-Zr4\n`).project as Resolved;
    expect(JSON.stringify(project)).not.toMatch(/pa55-Xq7|t0ken-Zr4/);
    expect(project.secrets?.loki_password?.file).toBe(join(root, ".secrets/loki_password"));
    expect(project.secrets?.loki_bearer_token?.file).toBe(join(root, ".secrets/loki_bearer_token"));
    const holders = Object.entries(project.services).filter(([, s]) => s.secrets?.some((x) => x.source.startsWith("loki_"))).map(([name]) => name);
    expect(holders.sort()).toEqual(["bus", "log-consumer"]);
    // The bus resolves the consumer's Loki settings the same way.
    const bus = load(`${dotEnv()}\nAIXCL_LOKI_URL=https://logs.example.net\nAIXCL_LOKI_USERNAME=edge-1\nAIXCL_LOKI_PASSWORD=pa55-Xq7\n`).project?.services.bus;
    expect(bus?.environment).toMatchObject({ LOKI_URL: "https://logs.example.net", LOKI_USERNAME: "edge-1", LOKI_PASSWORD_FILE: "/run/secrets/loki_password", LOKI_BEARER_TOKEN_FILE: "" });
  });

  describe.each([
    ["two processes (the default)", ["bus", "consumer"], ["broker", "log-consumer"]],
    ["one process", ["bus-one"], ["bus"]],
    ["someone else's bus (AIXCL_BUS_HOST)", ["consumer"], ["log-consumer"]],
  ])("the bus' layout: %s, the profiles ./aixcl passes", (_, profiles, bus) => {
    it("loads with the cli beside it (its dependencies of other layouts are not required), and runs the bus' services of this layout only", () => {
      const r = load(dotEnv(), join(root, "docker-compose.yml"), [...profiles, "tools"]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(Object.keys(r.project?.services ?? {}).sort()).toEqual(["alertmanager", ...bus, "cli", "grafana", "loki", "prometheus", "promtail"].sort());
    });

    it("one consumer on the spool, one broker on the backlog, and every port on 127.0.0.1 once", () => {
      const project = load(dotEnv(), join(root, "docker-compose.yml"), profiles).project as Resolved;
      const on = (volume: string) => Object.entries(project.services).filter(([, s]) => s.volumes?.some((v) => v.source === volume)).map(([name]) => name);
      expect(on("log-consumer-spool")).toEqual([bus.at(-1)]);
      expect(on("broker-backlog")).toEqual(bus.includes("log-consumer") && bus.length === 1 ? [] : [bus[0]]);
      const ports = Object.values(project.services).flatMap((s) => s.ports ?? []);
      expect(new Set(ports.map((p) => p.published)).size).toBe(ports.length);
      for (const p of ports) expect(p.host_ip, JSON.stringify(p)).toBe("127.0.0.1");
    });
  });

  // Without .env (./aixcl keys, clean) nothing needs the password: it is in a file only `up` of Grafana reads.
  it("loads without a Grafana password in .env", () => {
    const r = load("");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("validates against the compose schema (a misspelt key fails, so the check can fail)", () => {
    const broken = join(dir, "docker-compose.yml");
    copyFileSync(join(root, "docker-compose.yml"), broken);
    writeFileSync(broken, readFileSync(broken, "utf8").replace("    mem_limit: 1g", "    mem_limt: 1g"));
    const r = load(dotEnv(), broken);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/mem_limt/);
  });

  describe("with docker-compose.ha.yml (the HA profile: ./aixcl start --ha)", () => {
    const haFiles = `${join(root, "docker-compose.yml")},${join(root, "docker-compose.ha.yml")}`;
    const secretKey = "Zq7wX2cV9bN4mK8jH3gF6dS1aP5oI0uY";
    const haEnv = () => `${dotEnv()}\nAIXCL_LOKI_MODE=ha\nAIXCL_S3_ACCESS_KEY_ID=aixcl-abc\nAIXCL_S3_SECRET_ACCESS_KEY=${secretKey}\n`;

    it("replaces the single Loki by a gateway under its name and port, adds three instances and the store, publishes nothing new", () => {
      const r = load(haEnv(), haFiles);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const project = r.project as Resolved;
      expect(Object.keys(project.services).sort()).toEqual(["alertmanager", "broker", "bus", "cli", "grafana", "log-consumer", "loki", "loki-1", "loki-2", "loki-3", "prometheus", "promtail", "s3"]);
      const gateway = project.services.loki!;
      expect(gateway.image).toMatch(/^nginx:\d+\.\d+\.\d+/);
      // !override and !reset took: none of the single instance's mounts or command is left on the gateway.
      expect(gateway.volumes?.map((v) => v.target)).toEqual(["/etc/nginx/loki-gateway.conf"]);
      expect(gateway.command ?? []).toEqual([]);
      expect(gateway.ports).toEqual([expect.objectContaining({ host_ip: "127.0.0.1", target: 3100, published: "3100" })]);
      for (const name of ["loki-1", "loki-2", "loki-3", "s3"]) expect(project.services[name]?.ports ?? []).toEqual([]);
      const ports = Object.values(project.services).flatMap((s) => s.ports ?? []);
      expect(ports).toHaveLength(13);
      for (const p of ports) expect(p.host_ip, JSON.stringify(p)).toBe("127.0.0.1");
    });

    it("runs the instances on the single instance's pinned image, each with its own volume and instance id", () => {
      const single = load(dotEnv()).project as Resolved;
      const project = load(haEnv(), haFiles).project as Resolved;
      const ids = new Set<string>();
      const volumes = new Set<string>();
      for (const name of ["loki-1", "loki-2", "loki-3"]) {
        const s = project.services[name]!;
        expect(s.image).toBe(single.services.loki?.image);
        ids.add(s.environment?.LOKI_INSTANCE_ID ?? "");
        volumes.add(s.volumes?.find((v) => v.target === "/loki")?.source ?? "");
      }
      expect([...ids].sort()).toEqual(["loki-1", "loki-2", "loki-3"]);
      expect(volumes.size).toBe(3);
      expect(project.services["loki-1"]?.environment?.LOKI_COMPACTOR_MODE).toBe("main");
      expect(project.services["loki-2"]?.environment?.LOKI_COMPACTOR_MODE).toBeUndefined();
    });

    it("keeps the S3 keys out of every environment: only the instances and the store mount the secret file", () => {
      const project = load(haEnv(), haFiles).project as Resolved;
      expect(JSON.stringify(project)).not.toContain(secretKey);
      const holders = Object.entries(project.services)
        .filter(([, s]) => s.secrets?.some((x) => x.source === "s3_credentials"))
        .map(([name]) => name)
        .sort();
      expect(holders).toEqual(["loki-1", "loki-2", "loki-3", "s3"]);
      expect(project.secrets?.s3_credentials?.file).toBe(join(root, ".secrets/s3_credentials"));
      expect(project.services.grafana?.secrets?.map((x) => x.source)).toEqual(["grafana_admin_password"]);
    });

    it("points the instances at the user's S3 when .env names one", () => {
      const r = load(`${haEnv()}AIXCL_S3_ENDPOINT=s3.eu-west-1.amazonaws.com\nAIXCL_S3_BUCKET=team-logs\nAIXCL_S3_REGION=eu-west-1\nAIXCL_S3_INSECURE=false\n`, haFiles);
      expect(r.status).toBe(0);
      expect(r.project?.services["loki-2"]?.environment).toMatchObject({
        LOKI_S3_ENDPOINT: "s3.eu-west-1.amazonaws.com",
        LOKI_S3_BUCKET: "team-logs",
        LOKI_S3_REGION: "eu-west-1",
        LOKI_S3_INSECURE: "false",
        AWS_SHARED_CREDENTIALS_FILE: "/run/secrets/s3_credentials",
      });
    });
  });
});
