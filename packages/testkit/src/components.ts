import { execFile, execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export type ComponentName = "loki" | "promtail" | "prometheus" | "promtool" | "alertmanager" | "amtool" | "versitygw" | "otelcol";

/** Repository root: this file is <root>/packages/testkit/{src,dist}/components.{ts,js}. */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** The config files we ship, which the harness runs unmodified (see each start function for redirection). */
export const shippedConfig = {
  loki: `${repoRoot}loki/loki-config.yml`,
  /** The HA profile's (docker-compose.ha.yml): three instances on one S3 bucket. */
  lokiHa: `${repoRoot}loki/loki-ha.yml`,
  promtail: `${repoRoot}promtail/promtail-config.yml`,
  prometheus: `${repoRoot}prometheus/prometheus.yml`,
  alertmanager: `${repoRoot}alertmanager/alertmanager.yml`,
  /** Loki's local rule store: `<dir>/<tenant>/*.yaml`, tenant "fake" (auth_enabled: false). */
  lokiRules: `${repoRoot}loki/rules`,
  /** The rule files prometheus.yml names (rules/*.yml, relative to it). */
  prometheusRules: `${repoRoot}prometheus/rules`,
  /** The OpenTelemetry Collector's, for the benchmark's second reference shipper (not part of the stack). */
  otelcol: `${repoRoot}bench/otelcol/config.yaml`,
} as const;

const resolved = new Map<ComponentName, string | undefined>();

/**
 * Path of the cached build of `name` at the version docker-compose.yml (versitygw: docker-compose.ha.yml) pins, or
 * undefined when it has not been built (`npm run components`). scripts/components.sh owns the pin-to-path rule;
 * this asks it.
 */
export function componentBinary(name: ComponentName): string | undefined {
  if (!resolved.has(name)) {
    let path: string | undefined;
    try {
      path = execFileSync("bash", [`${repoRoot}scripts/components.sh`, "--path", name], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      }).trim();
    } catch {
      path = undefined;
    }
    resolved.set(name, path || undefined);
  }
  return resolved.get(name);
}

export type ComponentRequirement = { path: string; skip?: undefined } | { path?: undefined; skip: string };

/**
 * For tests that need a real component: `{ path }` when it is built, otherwise `{ skip: reason }` so the
 * test can skip visibly. With CI=true a missing binary throws instead: CI never skips real-component tests.
 */
export function requireComponent(name: ComponentName): ComponentRequirement {
  const path = componentBinary(name);
  if (path) return { path };
  const reason =
    name === "otelcol"
      ? "otelcol is not built for the version pinned in bench/otelcol/builder-config.yaml; run `npm run components -- otelcol`"
      : `${name} is not built for the version pinned in docker-compose.yml (versitygw: docker-compose.ha.yml); run \`npm run components\``;
  if (process.env["CI"] === "true") throw new Error(`CI=true and ${reason}`);
  return { skip: reason };
}

/** For harness code: the binary's path, or an error naming the command that builds it. */
export function requiredBinary(name: ComponentName): string {
  const r = requireComponent(name);
  if (r.skip !== undefined) throw new Error(r.skip);
  return r.path;
}

/** Like requireComponent for several components: the first missing one decides the skip reason. */
export function requireComponents(...names: ComponentName[]): { paths: Record<ComponentName, string>; skip?: string } {
  const paths = {} as Record<ComponentName, string>;
  for (const name of names) {
    const r = requireComponent(name);
    if (r.skip !== undefined) return { paths, skip: r.skip };
    paths[name] = r.path;
  }
  return { paths };
}

/** Runs a component binary to completion (verify/check modes); never throws on a non-zero exit. */
export function runComponent(name: ComponentName, args: string[], env: Record<string, string> = {}): Promise<{ status: number; output: string }> {
  const bin = requiredBinary(name);
  return new Promise((resolve) => {
    execFile(bin, args, { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ status, output: `${stdout}${stderr}` });
    });
  });
}
