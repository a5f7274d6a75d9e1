export const LOG_LEVELS = ["unknown", "debug", "info", "warning", "error", "critical"] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

const NUMBER_BY_NAME: Record<LogLevelName, number> = {
  unknown: 0,
  debug: 10,
  info: 20,
  warning: 30,
  error: 40,
  critical: 50,
};
const NAME_BY_NUMBER = new Map<number, LogLevelName>(
  Object.entries(NUMBER_BY_NAME).map(([name, value]) => [value, name as LogLevelName]),
);

export function levelNumber(name: LogLevelName): number {
  return NUMBER_BY_NAME[name];
}

/** Values outside aico.core.LogLevel (a newer producer, a corrupt frame) become "unknown" rather than a new label value. */
export function levelName(value: number): LogLevelName {
  return NAME_BY_NUMBER.get(value) ?? "unknown";
}
