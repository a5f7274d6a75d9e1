import { isIP } from "node:net";
import type { Field } from "./config.js";
import { InvalidValue } from "./config.js";

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function field<T>(defaultValue: T, env: string | undefined, parse: (value: unknown) => T): Field<T> {
  return { default: defaultValue, env, parse };
}

export interface IntegerOptions {
  min?: number;
  max?: number;
  env?: string;
}

export function integer(defaultValue: number, options: IntegerOptions = {}): Field<number> {
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = options;
  return field(defaultValue, options.env, (value) => {
    const n = typeof value === "string" && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isSafeInteger(n)) throw new InvalidValue(`expected a whole number, got ${describe(value)}`);
    if (n < min || n > max) throw new InvalidValue(`must be between ${min} and ${max}, got ${n}`);
    return n;
  });
}

/** A TCP port; 0 asks the OS for a free one (tests). */
export function port(defaultValue: number, env?: string): Field<number> {
  return integer(defaultValue, { min: 0, max: 65535, env });
}

export function boolean(defaultValue: boolean, env?: string): Field<boolean> {
  return field(defaultValue, env, (value) => {
    if (typeof value === "boolean") return value;
    if (value === "true" || value === "1") return true;
    if (value === "false" || value === "0") return false;
    throw new InvalidValue(`expected true or false, got ${describe(value)}`);
  });
}

export function string(defaultValue: string, env?: string): Field<string> {
  return field(defaultValue, env, (value) => {
    if (typeof value !== "string" || value.trim() === "") throw new InvalidValue(`expected a non-empty string, got ${describe(value)}`);
    return value.trim();
  });
}

/** A file or directory path; the empty string means "not set". */
export function optionalPath(env?: string): Field<string> {
  return field("", env, (value) => {
    if (typeof value !== "string") throw new InvalidValue(`expected a path, got ${describe(value)}`);
    return value.trim();
  });
}

export function oneOf<const T extends string>(choices: readonly T[], defaultValue: T, env?: string): Field<T> {
  return field(defaultValue, env, (value) => {
    if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
      throw new InvalidValue(`expected one of ${choices.join(", ")}, got ${describe(value)}`);
    }
    return value as T;
  });
}

const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** An IP address or a host name (what ZeroMQ and HTTP servers accept for bind and connect). */
export function host(defaultValue: string, env?: string): Field<string> {
  return field(defaultValue, env, (value) => {
    if (typeof value !== "string" || (isIP(value) === 0 && !HOSTNAME.test(value))) {
      throw new InvalidValue(`expected an IP address or host name, got ${describe(value)}`);
    }
    return value;
  });
}

export function httpUrl(defaultValue: string, env?: string): Field<string> {
  return field(defaultValue, env, (value) => {
    let url: URL | undefined;
    try {
      url = typeof value === "string" ? new URL(value) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      throw new InvalidValue(`expected an http:// or https:// URL, got ${describe(value)}`);
    }
    return url.toString().replace(/\/$/, "");
  });
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration like "500ms", "10s", "5m" or a number of milliseconds; returns milliseconds. */
export function duration(defaultMs: number, env?: string): Field<number> {
  return field(defaultMs, env, (value) => {
    if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
    const match = typeof value === "string" ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim()) : null;
    if (!match) throw new InvalidValue(`expected a duration like 500ms, 10s or 5m, got ${describe(value)}`);
    return Number(match[1]) * (DURATION_UNITS[match[2] as string] as number);
  });
}

const BYTE_UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** A size like "1MiB", "512KB" or a number of bytes; returns bytes. */
export function bytes(defaultBytes: number, env?: string): Field<number> {
  return field(defaultBytes, env, (value) => {
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
    const match = typeof value === "string" ? /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)$/.exec(value.trim()) : null;
    if (!match) throw new InvalidValue(`expected a size like 1MiB, 512KB or a number of bytes, got ${describe(value)}`);
    return Math.round(Number(match[1]) * (BYTE_UNITS[match[2] as string] as number));
  });
}

/** A list of strings; from the environment, comma-separated. */
export function stringList(defaultValue: readonly string[], env?: string): Field<readonly string[]> {
  return field(defaultValue, env, (value) => {
    const list = typeof value === "string" ? value.split(",").map((s) => s.trim()) : value;
    if (!Array.isArray(list) || list.some((s) => typeof s !== "string" || s === "")) {
      throw new InvalidValue(`expected a list of non-empty strings, got ${describe(value)}`);
    }
    return list as string[];
  });
}

/** A mapping of string keys to string values, each key checked by `validKey`; from the environment, k=v,k=v. */
export function stringMap(
  defaultValue: Readonly<Record<string, string>>,
  validKey: (key: string) => string | undefined,
  env?: string,
): Field<Readonly<Record<string, string>>> {
  return field(defaultValue, env, (value) => {
    const map =
      typeof value === "string"
        ? Object.fromEntries(value.split(",").map((pair) => pair.split("=").map((s) => s.trim())))
        : value;
    if (typeof map !== "object" || map === null || Array.isArray(map)) throw new InvalidValue(`expected a mapping, got ${describe(value)}`);
    for (const [k, v] of Object.entries(map)) {
      const problem = validKey(k);
      if (problem) throw new InvalidValue(`key ${JSON.stringify(k)}: ${problem}`);
      if (typeof v !== "string") throw new InvalidValue(`value of ${JSON.stringify(k)} must be a string, got ${describe(v)}`);
    }
    return map as Record<string, string>;
  });
}
