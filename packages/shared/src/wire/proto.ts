import protobuf from "protobufjs";

/** Folder holding the .proto files; the same relative path from src/ and dist/. */
const PROTO_DIR = new URL("../../proto/", import.meta.url);

const root = new protobuf.Root();
// google/protobuf/{timestamp,any}.proto resolve from protobufjs' bundled copies.
root.loadSync(["aico/core/log_entry.proto", "aico/core/message.proto"].map((f) => new URL(f, PROTO_DIR).pathname));

export const LogEntryType = root.lookupType("aico.core.LogEntry");
export const AicoMessageType = root.lookupType("aico.core.AicoMessage");

/** Type URL AICO uses when it packs a LogEntry into the envelope's `any_payload`. */
export const LOG_ENTRY_TYPE_URL = "type.googleapis.com/aico.core.LogEntry";
