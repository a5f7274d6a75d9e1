export * from "./format.js";
export * from "./lock.js";
export * from "./metrics.js";
export * from "./spool.js";
