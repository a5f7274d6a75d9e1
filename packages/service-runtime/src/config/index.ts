export * from "./config.js";
export * from "./fields.js";
export * from "./message-bus.js";
