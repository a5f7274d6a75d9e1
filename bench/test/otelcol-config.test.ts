import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { shippedConfig } from "@aixcl/testkit";
import { OTELCOL_ATTRIBUTES_CONFIG } from "../src/file-shippers.js";

type Operator = Record<string, unknown> & { type: string };
type Config = { receivers: { file_log: { operators: Operator[] } } };
const load = (file: string) => parse(readFileSync(file, "utf8")) as Config;

describe("the collector's two setups", () => {
  const today = load(shippedConfig.otelcol);
  const attributes = load(OTELCOL_ATTRIBUTES_CONFIG);

  it("differ only in what becomes of each JSON line", () => {
    const without = (c: Config) => ({ ...c, receivers: { ...c.receivers, file_log: { ...c.receivers.file_log, operators: [] } } });
    expect(without(attributes)).toEqual(without(today));
  });

  it("today's drops the parsed fields; the other keeps them as attributes, the message as the body", () => {
    expect(today.receivers.file_log.operators.at(-1)).toMatchObject({ type: "remove", field: "attributes.json" });
    const ops = attributes.receivers.file_log.operators;
    expect(ops[0]).toMatchObject({ type: "json_parser", severity: { parse_from: "attributes.level" } });
    expect(ops[0]?.parse_to).toBeUndefined();
    expect(ops.filter((o) => o.type === "move")).toEqual([expect.objectContaining({ from: "attributes.service", to: 'resource["service.name"]' }), expect.objectContaining({ from: "attributes.msg", to: "body" })]);
    expect(ops.filter((o) => o.type === "remove").map((o) => o.field)).toEqual(["attributes.level"]);
  });
});
