export * from "./config/index.js";
export * from "./keys.js";
export * from "./ops/index.js";
export * from "./spool/index.js";
