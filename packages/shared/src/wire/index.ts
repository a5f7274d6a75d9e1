export * from "./decode.js";
export * from "./encode.js";
export * from "./entry.js";
export * from "./level.js";
export * from "./topic.js";
export { LOG_ENTRY_TYPE_URL } from "./proto.js";
export * from "./receive.js";
