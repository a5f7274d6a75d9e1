export * from "./alertmanager.js";
export * from "./args.js";
export * from "./commands.js";
export * from "./duration.js";
export * from "./format.js";
export * from "./loki.js";
export { run } from "./run.js";
