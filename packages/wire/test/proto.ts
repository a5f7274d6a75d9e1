import protobuf from "protobufjs";

/**
 * The .proto files loaded by protobufjs: an encoder independent of ours, for the tests. (The services encode and
 * decode by hand; see src/wire/encode.ts and decode.ts.)
 */
const PROTO_DIR = new URL("../proto/", import.meta.url);

const root = new protobuf.Root();
// Imports resolve from proto/, as protoc's -I does (aixcl/bus/log_batch.proto imports aico/core/log_entry.proto);
// google/protobuf/{timestamp,any}.proto resolve from protobufjs' bundled copies.
const resolveDefault = root.resolvePath.bind(root);
root.resolvePath = (origin, target) => (target.startsWith("aico/") || target.startsWith("aixcl/") ? new URL(target, PROTO_DIR).pathname : resolveDefault(origin, target));
root.loadSync(["aico/core/log_entry.proto", "aico/core/message.proto", "aixcl/bus/log_batch.proto"].map((f) => new URL(f, PROTO_DIR).pathname));

export const LogEntryType = root.lookupType("aico.core.LogEntry");
export const AicoMessageType = root.lookupType("aico.core.AicoMessage");
export const LogBatchType = root.lookupType("aixcl.bus.LogBatch");
