export * from "./config/index.js";
export * from "./curve/index.js";
export * from "./logger/index.js";
export * from "./ops/index.js";
export * from "./spool/index.js";
export * from "./wire/index.js";
