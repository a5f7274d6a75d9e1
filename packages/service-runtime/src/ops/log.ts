export type ServiceLogLevel = "debug" | "info" | "warn" | "error";

export interface ServiceLog {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

let stdoutLost = false;

/**
 * Writes to stdout unless it has failed. When whoever read it has gone (a closed pipe: EPIPE), a write error is
 * emitted on process.stdout, and unhandled it would end up as an uncaught exception that leaves the service's
 * ZeroMQ threads running and the process deaf to SIGTERM. A service must go on, and stop when told, without it.
 */
function writeStdout(line: string): void {
  if (stdoutLost) return;
  if (process.stdout.listenerCount("error") === 0) process.stdout.on("error", () => (stdoutLost = true));
  process.stdout.write(line);
}

/**
 * The services' own log: one JSON object per line on stdout, which Promtail picks up from the container.
 * Services never log through the bus, so a bus or Loki problem cannot feed back into itself.
 */
export function serviceLog(service: string, minLevel: ServiceLogLevel = "info", write: (line: string) => void = writeStdout): ServiceLog {
  const order: ServiceLogLevel[] = ["debug", "info", "warn", "error"];
  const min = order.indexOf(minLevel);
  const emit = (level: ServiceLogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (order.indexOf(level) < min) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, service, msg, ...fields })}\n`);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}
