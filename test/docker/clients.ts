/**
 * Applications sending to the running stack from the host, as users' applications do: Python's logging through
 * the pip-installed BusHandler, Node's pino and winston through the packed @aixcl/logging, and an OpenTelemetry SDK
 * over OTLP/HTTP into Loki's published port. Each returns what it ran, for the Docker tier to check in Loki.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { installNodeClient, requirePythonClient, tempDir, type ScriptResult } from "@aixcl/testkit";

/** Runs a Python program with the clients/python venv (in CI it must exist: requirePythonClient throws). */
export function runPython(program: string, env: Record<string, string> = {}, timeoutMs = 120_000): Promise<ScriptResult> {
  const need = requirePythonClient();
  if (need.skip !== undefined) throw new Error(`no Python client venv: ${need.skip}`);
  const file = join(tempDir("docker-py"), "app.py");
  writeFileSync(file, program);
  return new Promise((resolve) => {
    const child = spawn(need.python, [file], { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

/** A Python service logging through BusHandler with the default endpoint (127.0.0.1:5555): every kind of field. */
export const pythonFieldsProgram = (service: string) => `
import logging
log = logging.getLogger("shop.billing")
log.setLevel(logging.DEBUG)
from aixcl_logging import BusHandler
log.addHandler(BusHandler("${service}", "billing"))
def charge():
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("charging %s failed", "invoice-1234", extra={"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "invoice": 1234})
charge()
log.info("charged")
logging.shutdown()
`;

/** Numbered lines (seq=<n> ...) at \`rate\` per second for \`seconds\`, then logging.shutdown(): what the bus took. */
export const pythonNumberedProgram = (service: string, rate: number, seconds: number) => `
import logging, time
from aixcl_logging import BusHandler
handler = BusHandler("${service}", "seq", max_buffered=1_000_000, max_buffered_bytes=256 * 1024 * 1024, close_timeout=30)
log = logging.getLogger("numbered")
log.addHandler(handler)
log.setLevel(logging.INFO)
start = time.monotonic()
n = 0
while n < ${rate * seconds}:
    due = int((time.monotonic() - start) * ${rate})
    while n < min(due, ${rate * seconds}):
        log.info("seq=%d blk=%d python", n, n // 1000)
        n += 1
    time.sleep(0.005)
print(n, flush=True)
logging.shutdown()
print(handler.stats(), flush=True)
`;

/**
 * pino (through its worker-thread transport) and winston, each in an application of its own, from the packed package
 * installed outside the repository, as LOGGING.md shows them: pino flushes its transport at exit; winston's
 * transport is closed by hand.
 */
export async function runNodeTransports(service: string): Promise<ScriptResult[]> {
  const app = await installNodeClient();
  writeFileSync(
    join(app.dir, "pino-app.mjs"),
    `import pino from "pino";
const log = pino(pino.transport({ target: "@aixcl/logging/pino", options: { subsystem: "${service}", module: "pino" } }));
log.warn({ order: 7 }, "pino says");
`,
  );
  writeFileSync(
    join(app.dir, "winston-app.mjs"),
    `import winston from "winston";
import { AixclTransport } from "@aixcl/logging/winston";
const transport = new AixclTransport({ subsystem: "${service}", module: "winston" });
const log = winston.createLogger({ transports: [transport] });
log.error("winston says", { order: 8 });
log.close();
await transport.close();
`,
  );
  return [await app.node("pino-app.mjs", {}, 120_000), await app.node("winston-app.mjs", {}, 120_000)];
}

/** Records through the OpenTelemetry JavaScript SDK to Loki's OTLP endpoint, as any OTel-instrumented app sends them. */
export async function sendOtlp(lokiUrl: string, service: string, records: number): Promise<void> {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ "service.name": service, "service.namespace": "shop", "service.instance.id": "pid-123" }),
    processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${lokiUrl}/otlp/v1/logs` }) })],
  });
  const logger = provider.getLogger("checkout");
  for (let i = 0; i < records; i++) logger.emit({ severityNumber: SeverityNumber.ERROR, severityText: "ERROR", body: `otlp record ${i}`, attributes: { order: i } });
  await provider.shutdown();
}
