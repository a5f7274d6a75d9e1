import type { EncodedPush, PushBuilder } from "./encode.js";
import type { LokiEntry, StreamKey } from "./mapping.js";

type JsonValue = [string, string] | [string, string, Record<string, string>];

/** The JSON push body: values are [ns timestamp as string, line, structured metadata object]. */
export class JsonPushBuilder implements PushBuilder {
  private values: JsonValue[][] = [];

  add(stream: number, entry: LokiEntry): void {
    const value: JsonValue =
      entry.metadata.length === 0 ? [entry.timestampNs.toString(), entry.line] : [entry.timestampNs.toString(), entry.line, Object.fromEntries(entry.metadata)];
    (this.values[stream] ??= []).push(value);
  }

  build(streams: readonly StreamKey[]): EncodedPush {
    const body = { streams: streams.map((key, k) => ({ stream: Object.fromEntries(key.labels), values: this.values[k] ?? [] })) };
    this.values = [];
    return { body: Buffer.from(JSON.stringify(body)), contentType: "application/json" };
  }
}
