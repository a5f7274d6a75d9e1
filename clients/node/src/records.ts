import type { LogLevelName } from "@aixcl/wire";
import type { Extra, LogContext } from "@aixcl/client-logger";
import { extraText, readField } from "@aixcl/client-logger";

/** A pino or winston record as the logger's log() takes it (context.module: the record's own, see moduleKey). */
export interface MappedRecord {
  level: LogLevelName;
  message: string;
  extra: Extra;
  context: LogContext;
}

/**
 * pino's levels are numbers (trace 10, debug 20, info 30, warn 40, error 50, fatal 60); a custom level becomes the
 * nearest standard one at or below it, as the Python handler does with Python's levels.
 */
export function pinoLevel(value: number): LogLevelName {
  if (value >= 60) return "critical";
  if (value >= 50) return "error";
  if (value >= 40) return "warning";
  if (value >= 30) return "info";
  return "debug";
}

/** winston's npm and syslog level names. */
const WINSTON_LEVELS: Readonly<Record<string, LogLevelName>> = {
  emerg: "critical",
  alert: "critical",
  crit: "critical",
  error: "error",
  warning: "warning",
  warn: "warning",
  notice: "info",
  info: "info",
  http: "info",
  verbose: "debug",
  debug: "debug",
  silly: "debug",
};

/**
 * A winston level by name. A custom level becomes the nearest standard level at or below it in severity, found
 * through the logger's `levels` (winston numbers the most severe 0), or debug when it is below them all;
 * "unknown" when the logger does not know it either.
 */
export function winstonLevel(name: string, levels?: Readonly<Record<string, number>>): LogLevelName {
  const known = WINSTON_LEVELS[name];
  if (known) return known;
  const priority = levels?.[name];
  if (levels === undefined || priority === undefined) return "unknown";
  let nearest: { priority: number; level: LogLevelName } | undefined;
  for (const [other, p] of Object.entries(levels)) {
    const level = WINSTON_LEVELS[other];
    if (level && p >= priority && (!nearest || p < nearest.priority)) nearest = { priority: p, level };
  }
  return nearest?.level ?? "debug";
}

/** Field names that fill the LogEntry's own fields instead of `extra` (the Python handler reads the same). */
const CONTEXT_FIELDS = { trace_id: "traceId", session_id: "sessionId", user_uuid: "userUuid" } as const;

/** Milliseconds since the epoch, or an ISO date, as nanoseconds; undefined when it is neither. */
function timeNs(value: unknown): bigint | undefined {
  const ms = typeof value === "number" ? value : typeof value === "string" ? Date.parse(value) : Number.NaN;
  return Number.isFinite(ms) ? BigInt(Math.round(ms * 1000)) * 1000n : undefined;
}

/** An error's stack (which starts with its message), or its message; undefined for anything else. */
function errorText(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { stack, message } = value as { stack?: unknown; message?: unknown };
  return typeof stack === "string" ? stack : typeof message === "string" ? message : undefined;
}

/**
 * Everything but the `consumed` fields goes to `extra`, except trace_id, session_id and user_uuid, which fill their
 * fields as text whatever their type. A null field is no field, as a None attribute is none to the Python handler
 * (spec/wire/records.json). A field whose getter throws goes as a placeholder: the record is the application's own
 * object (winston's info).
 */
function fields(record: Record<string, unknown>, consumed: ReadonlySet<string>, context: LogContext): Extra {
  const extra: Extra = {};
  for (const key of Object.keys(record)) {
    if (consumed.has(key)) continue;
    const value = readField(record, key);
    if (value === undefined || value === null) continue;
    const field = CONTEXT_FIELDS[key as keyof typeof CONTEXT_FIELDS];
    if (field) context[field] = extraText(value);
    else extra[key] = value;
  }
  return extra;
}

/**
 * The record's module from its `moduleKey` field (a child logger's bindings put it there) into `context.module`,
 * and the field out of `extra`. Only a non-empty string is a module; anything else stays a field.
 */
function takeModule(record: Record<string, unknown>, moduleKey: string | undefined, consumed: Set<string>, context: LogContext): void {
  if (moduleKey === undefined) return;
  const value = readField(record, moduleKey);
  if (typeof value !== "string" || value === "") return;
  context.module = value;
  consumed.add(moduleKey);
}

/**
 * With an error, the line is the message followed by the error's stack, as Python's logging formats exceptions;
 * just the stack when the message only repeats the error's (`logger.error(err)`: the stack's first line is
 * "Error: <message>").
 */
function withError(message: string, error: string | undefined): string {
  if (error === undefined) return message;
  const firstLine = error.split("\n", 1)[0] as string;
  if (message === "" || firstLine === message || firstLine.endsWith(`: ${message}`)) return error;
  return `${message}\n${error}`;
}

/** The field a record's module is read from when the transport has no `module` of its own. */
export const DEFAULT_MODULE_KEY = "module";

/** The transports' choice between one module for every record and each record's own. */
export interface ModuleOptions {
  /** Every record's module. Leave it out for one transport for a whole application: each record names its own. */
  module?: string;
  /** The field a record's module is read from when `module` is left out. Default "module" (DEFAULT_MODULE_KEY). */
  moduleKey?: string;
}

/**
 * The field to read each record's module from: none with a fixed `module` (a `module` field then stays in extra,
 * as any other); `moduleKey`, default "module", without. Both given contradict each other: an error saying so.
 */
export function recordModuleKey(options: ModuleOptions): string | undefined {
  if (options.module !== undefined && options.moduleKey !== undefined) {
    throw new TypeError(`@aixcl/logging: give "module" (${JSON.stringify(options.module)} for every record) or "moduleKey" (each record's module from that field), not both`);
  }
  return options.module === undefined ? (options.moduleKey ?? DEFAULT_MODULE_KEY) : undefined;
}

export interface PinoKeys {
  messageKey: string;
  errorKey: string;
  /** The field holding the record's module; undefined: the record has none (the transport's `module` is fixed). */
  moduleKey?: string | undefined;
}

/** A pino record (one parsed line): level, time and message are pino's; `err` becomes part of the line. */
export function pinoRecord(record: Record<string, unknown>, keys: PinoKeys = { messageKey: "msg", errorKey: "err" }): MappedRecord {
  const context: LogContext = {};
  const time = timeNs(record.time);
  if (time !== undefined) context.timestampNs = time;
  const consumed = new Set(["level", "time", keys.messageKey, keys.errorKey]);
  takeModule(record, keys.moduleKey, consumed, context);
  const raw = record[keys.messageKey];
  const message = withError(raw === undefined ? "" : extraText(raw), errorText(record[keys.errorKey]));
  const level = typeof record.level === "number" ? pinoLevel(record.level) : "unknown";
  return { level, message, extra: fields(record, consumed, context), context };
}

/** winston keeps the level it was logged at under this symbol (info.level may carry colour codes). */
const LEVEL = Symbol.for("level");

export interface WinstonRecordOptions {
  /** The logger's levels, for custom level names (winstonLevel). */
  levels?: Readonly<Record<string, number>> | undefined;
  /** The field holding the record's module (`logger.child({ module })` adds it); undefined: the record has none. */
  moduleKey?: string | undefined;
}

/** A winston info object: level, message, `timestamp` (format.timestamp()) and `stack` (format.errors()) are winston's. */
export function winstonRecord(info: Record<string | symbol, unknown>, options: WinstonRecordOptions = {}): MappedRecord {
  const context: LogContext = {};
  const consumed = new Set(["level", "message", "stack"]);
  takeModule(info as Record<string, unknown>, options.moduleKey, consumed, context);
  const time = timeNs(info.timestamp);
  if (time !== undefined) {
    context.timestampNs = time;
    consumed.add("timestamp");
  }
  const name = String(info[LEVEL] ?? info.level ?? "");
  const raw = info.message;
  const text = raw === undefined ? "" : extraText(raw);
  const message = withError(text, typeof info.stack === "string" ? info.stack : undefined);
  return { level: winstonLevel(name, options.levels), message, extra: fields(info as Record<string, unknown>, consumed, context), context };
}
