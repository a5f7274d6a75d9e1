export * from "./decode.js";
export * from "./encode.js";
export * from "./endpoint.js";
export * from "./entry.js";
export * from "./level.js";
export * from "./topic.js";
export * from "./receive.js";
