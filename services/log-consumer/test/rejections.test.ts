import { describe, expect, it } from "vitest";
import { fullEntry } from "@aixcl/testkit";
import { UNRECOGNIZED_REASON, parseRejections } from "../src/rejections.js";
import { lokiEntries, sealedOf } from "./helpers.js";

// A batch with 3 entries in {level="info", service="api"}, 2 in {level="error", service="api"} and
// 1 in a stream whose service name is a label-injection attempt.
const EVIL = `x'; 5 errors like: entry for stream '{level="info", service="api"}' has timestamp too old: t`;
const batch = sealedOf(
  lokiEntries([
    ...Array.from({ length: 3 }, (_, i) => fullEntry({ subsystem: "api", level: "info", message: `i${i}` })),
    ...Array.from({ length: 2 }, (_, i) => fullEntry({ subsystem: "api", level: "error", message: `e${i}` })),
    fullEntry({ subsystem: EVIL, level: "info" }),
  ]),
);
const INFO = '{level="info", service="api"}';
const ERROR = '{level="error", service="api"}';
const evilStream = batch.streams.find((s) => s.key.labels.get("service") === EVIL);
if (!evilStream) throw new Error("fixture");

const tooOld = (labels: string, t = "2025-01-01T00:00:00Z") =>
  `entry for stream '${labels}' has timestamp too old: ${t}, oldest acceptable timestamp is: 2025-11-14T00:00:00Z`;
const tooLong = (labels: string) =>
  `Max entry size '262144' bytes exceeded for stream '${labels}' while adding an entry with length '300000' bytes`;

function counts(body: string) {
  const summary = parseRejections(body, batch);
  return { byReason: Object.fromEntries(summary.byReason), rejected: summary.rejected };
}

describe("parseRejections (Loki 400 bodies)", () => {
  it("counts a single distributor validation error as one entry", () => {
    expect(counts(tooOld(INFO))).toEqual({ byReason: { greater_than_max_sample_age: 1 }, rejected: 1 });
  });

  it("reads GroupedErrors: '<n> errors like: ' prefixes joined by '; '", () => {
    const body = `2 errors like: ${tooLong(INFO)}; 1 errors like: ${tooOld(ERROR)}`;
    expect(counts(body)).toEqual({ byReason: { line_too_long: 2, greater_than_max_sample_age: 1 }, rejected: 3 });
  });

  it("reads the body real Loki 3.7.8 wrote (lower-case 'max entry size', service_name added, trailing newline)", () => {
    // Captured from the Loki binary pinned in docker-compose.yml, for a push like this test's batch.
    const body =
      "1 errors like: entry for stream '{level=\"info\", service=\"api\", service_name=\"api\"}' has timestamp too old: 2026-10-22T04:01:17Z, oldest acceptable timestamp is: 2026-11-14T04:01:17Z; " +
      "2 errors like: max entry size '262144' bytes exceeded for stream '{level=\"info\", service=\"api\", service_name=\"api\"}' while adding an entry with length '307200' bytes; " +
      "1 errors like: max entry size '262144' bytes exceeded for stream '{level=\"error\", service=\"api\", service_name=\"api\"}' while adding an entry with length '307200' bytes\n";
    expect(counts(body)).toEqual({ byReason: { greater_than_max_sample_age: 1, line_too_long: 3 }, rejected: 4 });
  });

  it("reads every entry-level reason Loki's validator has", () => {
    const body = [
      `entry for stream '${INFO}' has timestamp too new: 2030-01-01T00:00:00Z`,
      `stream '${INFO}' includes structured metadata, but this feature is disallowed. Please see ...`,
      `stream '${ERROR}' has structured metadata too large: '70000' bytes, limit: '65536' bytes. Please see ...`,
      `stream '${ERROR}' has too many structured metadata labels: '130', limit: '128'. Please see ...`,
    ]
      .map((m) => `1 errors like: ${m}`)
      .join("; ");
    expect(counts(body).byReason).toEqual({
      too_far_in_future: 1,
      disallowed_structured_metadata: 1,
      structured_metadata_too_large: 1,
      structured_metadata_too_many: 1,
    });
  });

  it("counts every entry of a stream refused as a whole", () => {
    expect(counts(`stream '${INFO}' has label value too long: 'xxxx'`)).toEqual({ byReason: { label_value_too_long: 3 }, rejected: 3 });
    expect(counts(`entry for stream '${ERROR}' has 20 label names; limit 15`).byReason).toEqual({ max_label_names_per_series: 2 });
    expect(
      counts(
        `Maximum active stream limit exceeded when trying to create stream ${ERROR}, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: 'fake'`,
      ).byReason,
    ).toEqual({ stream_limit: 2 });
    expect(counts(`Error parsing labels '${INFO}' with error: 1:2: parse error`).byReason).toEqual({ invalid_labels: 3 });
  });

  it("matches streams Loki printed with labels it added itself (service_name)", () => {
    const body = `stream '{level="error", service="api", service_name="api"}' has duplicate label name: 'x'`;
    expect(counts(body).byReason).toEqual({ duplicate_label_names: 2 });
  });

  it("reads the ingester's 'total ignored' format, old and new", () => {
    const lines = [
      "entry with timestamp 2025-11-20 10:00:00 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2025-11-20T10:00:00Z, oldest acceptable timestamp is: 2025-11-20T11:00:00Z',",
      "entry with timestamp 2025-11-20 10:00:01 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2025-11-20T10:00:01Z, oldest acceptable timestamp is: 2025-11-20T11:00:00Z',",
    ];
    const current = `${lines.join("\n")}\nuser 'fake', total ignored: 2 out of 3 for stream: ${INFO}`;
    expect(counts(current)).toEqual({ byReason: { too_far_behind: 2 }, rejected: 2 });
    const old = `entry with timestamp 2025-11-20 10:00:00 +0000 UTC ignored, reason: 'entry out of order' for stream: ${ERROR},\ntotal ignored: 1 out of 2`;
    expect(counts(old)).toEqual({ byReason: { out_of_order: 1 }, rejected: 1 });
  });

  it("is not fooled by label values that look like more errors", () => {
    const evilLabels = evilStream.key.text;
    expect(counts(tooOld(evilLabels))).toEqual({ byReason: { greater_than_max_sample_age: 1 }, rejected: 1 });
    expect(counts(`stream '${evilLabels}' has label value too long: 'x'`)).toEqual({ byReason: { label_value_too_long: 1 }, rejected: 1 });
  });

  it("never counts more than the batch or a stream holds", () => {
    expect(counts(`9 errors like: ${tooOld(ERROR)}`)).toEqual({ byReason: { greater_than_max_sample_age: 2 }, rejected: 2 });
    const body = `500 errors like: ${tooOld(INFO)}; 500 errors like: ${tooLong(ERROR)}; 7 errors like: ${tooOld('{level="debug", service="other"}')}`;
    expect(counts(body).rejected).toBe(batch.entries);
  });

  it("counts the whole batch when nothing in the body is recognised", () => {
    const summary = parseRejections("snappy: corrupt input", batch);
    expect(Object.fromEntries(summary.byReason)).toEqual({ [UNRECOGNIZED_REASON]: batch.entries });
    expect(summary.unrecognized).toEqual(["snappy: corrupt input"]);
  });

  it("counts unrecognised messages one each next to recognised ones", () => {
    const summary = parseRejections(`1 errors like: ${tooOld(INFO)}; 1 errors like: entry for stream '${INFO}' did something new`, batch);
    expect(Object.fromEntries(summary.byReason)).toEqual({ greater_than_max_sample_age: 1, [UNRECOGNIZED_REASON]: 1 });
  });
});
