export * from "./logger.js";
export { extraText, extraTexts, readField, unserializable } from "./extra.js";
export { fitEntry, MAX_MESSAGE_BYTES, truncationMarker } from "./fit.js";
export { BoundedQueue, SendQueue } from "./queue.js";
export * from "./throttle.js";
export * from "./keys.js";
export * from "./z85.js";
