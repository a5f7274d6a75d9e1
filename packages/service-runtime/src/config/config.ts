import { readFileSync } from "node:fs";
import { parse as parseYaml, YAMLParseError } from "yaml";

/** A configuration value that cannot be used; the message names the file, the key and what to do. */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly reason: string,
    readonly source: string,
  ) {
    super(`invalid configuration in ${source}: ${key}: ${reason}`);
    this.name = "ConfigError";
  }
}

/** Thrown by a parser; loadConfig turns it into a ConfigError with the key and source attached. */
export class InvalidValue extends Error {}

export interface Field<T> {
  readonly default: T;
  /** Environment variable that overrides the file. */
  readonly env?: string | undefined;
  /** Accepts YAML values and, for env overrides, their string forms. */
  parse(value: unknown): T;
}

export interface Schema {
  readonly [key: string]: Field<unknown> | Schema;
}

export type ConfigOf<S extends Schema> = {
  readonly [K in keyof S]: S[K] extends Field<infer T> ? T : S[K] extends Schema ? ConfigOf<S[K]> : never;
};

function isField(node: Field<unknown> | Schema): node is Field<unknown> {
  return typeof (node as Field<unknown>).parse === "function";
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface LoadOptions {
  /** YAML file to read. Its absence is an error: the services ship one. */
  file: string;
  env?: NodeJS.ProcessEnv;
}

function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError("(file)", `cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, file);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? `line ${error.linePos[0].line}` : "(file)";
    throw new ConfigError(where, `not valid YAML: ${(error as Error).message.split("\n")[0]}`, file);
  }
  if (doc === null || doc === undefined) return {};
  if (!isPlainObject(doc)) throw new ConfigError("(top level)", "must be a mapping of keys to values", file);
  return doc;
}

function build(schema: Schema, values: Record<string, unknown>, path: string, file: string, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const known = Object.keys(schema);
  for (const key of Object.keys(values)) {
    if (!known.includes(key)) throw new ConfigError(path + key, `unknown key (known keys here: ${known.join(", ")})`, file);
  }
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(schema)) {
    const dotted = path + key;
    const raw = values[key];
    if (!isField(node)) {
      if (raw !== undefined && raw !== null && !isPlainObject(raw)) throw new ConfigError(dotted, "must be a mapping", file);
      out[key] = build(node, (raw ?? {}) as Record<string, unknown>, `${dotted}.`, file, env);
      continue;
    }
    const fromEnv = node.env !== undefined ? env[node.env] : undefined;
    const [value, source, name] =
      fromEnv !== undefined && fromEnv !== "" ? [fromEnv, "environment", `${node.env} (${dotted})`] : [raw, file, dotted];
    if (value === undefined || value === null) {
      out[key] = node.default;
      continue;
    }
    try {
      out[key] = node.parse(value);
    } catch (error) {
      if (error instanceof InvalidValue) throw new ConfigError(name, error.message, source);
      throw error;
    }
  }
  return out;
}

/** Every key at its default: what an empty file gives without the environment. For tests and tools. */
export function defaultsOf<S extends Schema>(schema: S): ConfigOf<S> {
  return Object.fromEntries(
    Object.entries(schema).map(([key, node]) => [key, isField(node) ? node.default : defaultsOf(node)]),
  ) as ConfigOf<S>;
}

/**
 * Reads a YAML file against a schema, applies environment overrides, fills defaults and validates every value.
 * The first problem stops the load with a ConfigError naming the key and the reason.
 */
export function loadConfig<S extends Schema>(schema: S, options: LoadOptions): ConfigOf<S> {
  const env = options.env ?? process.env;
  return build(schema, readYaml(options.file), "", options.file, env) as ConfigOf<S>;
}
