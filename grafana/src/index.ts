import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { applicationLogsDashboard } from "./application-logs.js";
import { containerLogsDashboard } from "./container-logs.js";
import { pipelineDashboard } from "./pipeline.js";

/** A dashboard and the file it is provisioned from (relative to grafana/dashboards/). */
export interface DashboardFile {
  readonly file: string;
  readonly dashboard: Dashboard;
}

/** Every dashboard we ship; the generator writes exactly these files. */
export function dashboardFiles(): DashboardFile[] {
  return [
    { file: "container-logs.json", dashboard: containerLogsDashboard() },
    { file: "application-logs.json", dashboard: applicationLogsDashboard() },
    { file: "logging-pipeline.json", dashboard: pipelineDashboard() },
  ];
}

/** The checked-in form: stable key order as built, two-space indent, trailing newline. */
export function renderDashboard(dashboard: Dashboard): string {
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}
