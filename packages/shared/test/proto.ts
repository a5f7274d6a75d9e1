import protobuf from "protobufjs";

/**
 * The .proto files loaded by protobufjs: an encoder independent of ours, for the tests. (The services encode and
 * decode by hand; see src/wire/encode.ts and decode.ts.)
 */
const PROTO_DIR = new URL("../proto/", import.meta.url);

const root = new protobuf.Root();
// google/protobuf/{timestamp,any}.proto resolve from protobufjs' bundled copies.
root.loadSync(["aico/core/log_entry.proto", "aico/core/message.proto"].map((f) => new URL(f, PROTO_DIR).pathname));

export const LogEntryType = root.lookupType("aico.core.LogEntry");
export const AicoMessageType = root.lookupType("aico.core.AicoMessage");
