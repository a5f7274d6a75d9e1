import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CHAINED_TRACEBACK, chainedTracebackProgram } from "./traceback.js";
import { printComponentLogsOnFailure, repoRoot, requireComponents, runComponent, shippedConfig, startLoki, startPromtail, tempDir, type LokiHandle, type PromtailHandle } from "@aixcl/testkit";

const need = requireComponents("promtail", "loki");
if (need.skip) console.warn(`[skipped] Promtail tests: ${need.skip}`);
printComponentLogsOnFailure();

const checkSyntax = (file: string) => runComponent("promtail", [`-config.file=${file}`, "-config.expand-env=true", "-check-syntax"]);

describe.skipIf(need.skip !== undefined)("promtail/promtail-config.yml in the real Promtail", () => {
  it("passes promtail -check-syntax (with -config.expand-env=true, as the stack runs it)", async () => {
    const r = await checkSyntax(shippedConfig.promtail);
    expect(r.output).toContain("Valid config file");
    expect(r.status).toBe(0);
  });

  it("-check-syntax rejects a broken variant (the check can fail)", async () => {
    const dir = tempDir("promtail-bad");
    const bad = join(dir, "promtail-config.yml");
    writeFileSync(bad, readFileSync(shippedConfig.promtail, "utf8").replace("refresh_interval: 5s", "refresh_interval: soon"));
    const r = await checkSyntax(bad);
    expect(r.status).not.toBe(0);
  });

  describe("Promtail from the shipped file, pushing into a real Loki", () => {
    let loki: LokiHandle;
    let promtail: PromtailHandle;
    let varLog: string;
    const run = randomUUID();

    beforeAll(async () => {
      loki = await startLoki();
      varLog = tempDir("varlog");
      // The file exists before Promtail starts, as /var/log files do; more lines are appended while it runs.
      writeFileSync(join(varLog, "app.log"), `plain line one ${run}\n`);
      promtail = await startPromtail({ lokiUrl: loki.url, varLogDir: varLog });
    });
    afterAll(async () => {
      await promtail?.stop();
      await loki?.stop();
    });

    it("ships a known /var/log file through the shipped `system` job, findable with LogQL", async () => {
      appendFileSync(join(varLog, "app.log"), `plain line two ${run}\n`);
      const streams = await loki.waitFor(`{job="varlogs"} |= "${run}"`, 2, 20_000);
      const lines = streams.flatMap((s) => s.values.map((v) => v[1]));
      expect(lines).toEqual(expect.arrayContaining([`plain line one ${run}`, `plain line two ${run}`]));
      expect(streams[0]?.stream).toMatchObject({ job: "varlogs", filename: join(varLog, "app.log") });
      // Plain lines get no level label from our JSON stage.
      expect(streams[0]?.stream).not.toHaveProperty("level");
    });

    it("promotes the level of JSON lines to a `level` label, normalised to the bus's level names", async () => {
      appendFileSync(
        join(varLog, "app.log"),
        [
          JSON.stringify({ level: "WARN", msg: `json warn ${run}` }),
          JSON.stringify({ severity: "error", msg: `json error ${run}` }),
          JSON.stringify({ level: "info", msg: `json info ${run}` }),
        ].join("\n") + "\n",
      );
      const warn = await loki.waitFor(`{job="varlogs", level="warning"} |= "${run}"`, 1, 20_000);
      expect(warn[0]?.values[0]?.[1]).toContain(`json warn ${run}`);
      const error = await loki.waitFor(`{job="varlogs", level="error"} |= "${run}"`, 1, 20_000);
      expect(error[0]?.values[0]?.[1]).toContain(`json error ${run}`);
      const info = await loki.waitFor(`{job="varlogs", level="info"} |= "${run}"`, 1, 20_000);
      expect(info[0]?.values[0]?.[1]).toContain(`json info ${run}`);
    });

    it("joins a real Python traceback and a Java stack trace into one entry each; single lines stay single", async () => {
      const mark = `trace-${run}`;
      const python = spawnSync("python3", ["-c", chainedTracebackProgram(mark, "stdout", `ErrorHandler started ${mark}`)], { encoding: "utf8" });
      expect(python.status, python.stderr).toBe(0);
      const [traceback, single] = python.stdout.trimEnd().split(`\nErrorHandler started`);
      expect(traceback).toMatch(CHAINED_TRACEBACK);
      const java = [`Exception in thread "main" java.lang.IllegalStateException: boom ${mark}`, "\tat Main.run(Main.java:10)", "Caused by: java.io.IOException: disk", "\tat Main.io(Main.java:20)", "\t... 1 more"].join("\n");
      appendFileSync(join(varLog, "app.log"), `${python.stdout}${java}\nlast line ${mark}\n`);
      const streams = await loki.waitFor(`{job="varlogs"} |= "${mark}"`, 4, 20_000);
      const lines = streams.flatMap((s) => s.values).sort((a, b) => (a[0] < b[0] ? -1 : 1)).map((v) => v[1]);
      expect(lines).toEqual([traceback, `ErrorHandler started${single}`, java, `last line ${mark}`]);
    });

    it("records its read position in the positions file (what the promtail-positions volume keeps)", async () => {
      await expect.poll(() => { try { return readFileSync(promtail.positionsFile, "utf8"); } catch { return ""; } }, { timeout: 15_000 }).toContain(join(varLog, "app.log"));
    });
  });
});

describe("how docker-compose.yml runs the shipped Promtail config", () => {
  it("passes -config.expand-env=true, which the file's ${VAR:-default} references need, and mounts the file", () => {
    const compose = parse(readFileSync(join(repoRoot, "docker-compose.yml"), "utf8")) as { services: Record<string, { command?: string[]; volumes?: string[] }> };
    const promtail = compose.services["promtail"];
    expect(readFileSync(shippedConfig.promtail, "utf8")).toMatch(/\$\{PROMTAIL_LOKI_URL:-/);
    expect(promtail?.command).toContain("-config.expand-env=true");
    const mount = promtail?.volumes?.find((v) => v.startsWith("./promtail/promtail-config.yml:"));
    expect(mount, "promtail-config.yml mounted into the container").toBeDefined();
    const inContainer = mount?.split(":")[1];
    expect(promtail?.command).toContain(`-config.file=${inContainer}`);
  });
});
