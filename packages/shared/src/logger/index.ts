export * from "./logger.js";
export { BoundedQueue } from "./queue.js";
