/**
 * Writes grafana/dashboards/*.json from the TypeScript sources (`npm run dashboards`). Files there that no
 * source produces are removed, since Grafana would keep provisioning them.
 */
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { dashboardFiles, renderDashboard } from "./index.js";

// src/ and dist/ both sit directly under grafana/, so this resolves the same from either.
const DASHBOARDS_DIR = fileURLToPath(new URL("../dashboards/", import.meta.url));

async function main(): Promise<void> {
  await mkdir(DASHBOARDS_DIR, { recursive: true });
  const files = dashboardFiles();
  for (const { file, dashboard } of files) {
    const path = join(DASHBOARDS_DIR, file);
    const text = renderDashboard(dashboard);
    const before = await readFile(path, "utf8").catch(() => undefined);
    if (before === text) {
      console.log(`unchanged ${path}`);
      continue;
    }
    await writeFile(path, text);
    console.log(`${before === undefined ? "created" : "updated"} ${path} (${dashboard.title})`);
  }
  const wanted = new Set(files.map((f) => f.file));
  for (const name of await readdir(DASHBOARDS_DIR)) {
    if (name.endsWith(".json") && !wanted.has(name)) {
      await rm(join(DASHBOARDS_DIR, name));
      console.log(`removed ${join(DASHBOARDS_DIR, name)} (no source produces it)`);
    }
  }
}

main().catch((err: unknown) => {
  console.error(`dashboard generation failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
});
