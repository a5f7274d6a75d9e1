import type { PushBuilder, PushEncoding } from "./encode.js";
import { JsonPushBuilder } from "./encode-json.js";
import { ProtobufPushBuilder } from "./encode-protobuf.js";

export function pushBuilder(encoding: PushEncoding): PushBuilder {
  return encoding === "protobuf" ? new ProtobufPushBuilder() : new JsonPushBuilder();
}
