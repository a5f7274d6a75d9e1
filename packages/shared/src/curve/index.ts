export * from "./keys.js";
export * from "./z85.js";
