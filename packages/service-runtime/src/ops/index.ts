export * from "./log.js";
export * from "./run.js";
export * from "./server.js";
