import protobuf from "protobufjs";

const root = new protobuf.Root();
// google/protobuf/timestamp.proto resolves from protobufjs' bundled copy.
root.loadSync(new URL("../proto/push.proto", import.meta.url).pathname);

/**
 * Loki's PushRequest from proto/push.proto. The service writes push bodies by hand (its hot path); the tests
 * decode them with this type, generated from the .proto, to check the two agree.
 */
export const PushRequestType = root.lookupType("logproto.PushRequest");
