import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { lokiDisk, receivedIn, storeDisk, storePerLine, sumMetric } from "../src/loki-store.js";

describe("Loki's disk, before and after a run", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const put = (root: string, path: string, bytes: number) => {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), Buffer.alloc(bytes));
  };

  it("counts chunks, uploaded index files and the TSDB head's WAL apart, and nothing else Loki writes", () => {
    const data = mkdtempSync(join(tmpdir(), "loki-store-"));
    dirs.push(data);
    expect(lokiDisk(data)).toEqual({ chunks: 0, indexFiles: 0, indexWal: 0 });
    put(data, "chunks/fake/bf0ad8323760a5a6/MWEy", 1000);
    put(data, "chunks/fake/0123/MjIz", 24);
    put(data, "chunks/index/index_20429/fake/1796654445-ingester.tsdb.gz", 300);
    put(data, "tsdb-shipper-active/wal/filesystem_2024-01-01/1796654445/00000000", 117);
    // The ingester's WAL, the compactor's state and the uploader's name hold no stored logs.
    put(data, "wal/00000000", 5000);
    put(data, "compactor/deletion/series_progress.boltdb", 32768);
    put(data, "tsdb-shipper-active/uploader/name", 22);
    const before = lokiDisk(data);
    expect(before).toEqual({ chunks: 1024, indexFiles: 300, indexWal: 117 });

    put(data, "chunks/fake/bf0ad8323760a5a6/MWE0", 4000);
    put(data, "tsdb-shipper-active/wal/filesystem_2024-01-01/1796654445/00000000", 317);
    put(data, "wal/00000001", 9000);
    const received = (lines: number, bytes: number, meta: number) => ({ lines, bytes, structuredMetadataBytes: meta });
    const perLine = storePerLine({ disk: before, received: received(10, 5000, 2000) }, { disk: lokiDisk(data), received: received(110, 45_000, 22_000) }, 100, 1.5);
    expect(perLine).toEqual({ chunksBytesPerLine: 40, indexWalBytesPerLine: 2, indexFilesBytes: 0, receivedBytesPerLine: 400, structuredMetadataBytesPerLine: 200, receivedLinesPerLine: 1, flushSeconds: 1.5 });
  });

  it("HA: counts the bucket's objects (index/ apart) and every instance's TSDB head WAL", () => {
    const root = mkdtempSync(join(tmpdir(), "loki-store-"));
    dirs.push(root);
    put(root, "s3/loki/fake/bf0ad8323760a5a6/18c2:18c3:a1b2", 1000);
    put(root, "s3/loki/index/index_20429/fake/1796654445-loki-1.tsdb.gz", 300);
    for (const [i, n] of [1, 2, 3].entries()) {
      put(root, `loki-${n}/tsdb-shipper-active/wal/s3_2024-01-01/1796654445/00000000`, 100 + i);
      put(root, `loki-${n}/wal/00000000`, 5000);
    }
    expect(storeDisk(join(root, "s3/loki"), [1, 2, 3].map((n) => join(root, `loki-${n}`)))).toEqual({ chunks: 1000, indexFiles: 300, indexWal: 303 });
  });

  it("reads the distributor's counters summed over their series, Loki's own streams left out", () => {
    const text = [
      "# HELP loki_distributor_bytes_received_total The total number of uncompressed bytes received per tenant.",
      'loki_distributor_bytes_received_total{format="loki",is_internal_stream="false",tenant="fake"} 302780',
      'loki_distributor_bytes_received_total{format="otlp",is_internal_stream="false",tenant="fake"} 1000',
      'loki_distributor_bytes_received_total{format="loki",is_internal_stream="true",tenant="fake"} 99999',
      'loki_distributor_structured_metadata_bytes_received_total{format="loki",is_internal_stream="false",tenant="fake"} 138890',
      'loki_distributor_lines_received_total{tenant="fake"} 5000',
      // A longer name that starts with a counter's is another metric.
      'loki_distributor_lines_received_total_extra{tenant="fake"} 7',
      "loki_ingester_flush_queue_length 3",
    ].join("\n");
    expect(receivedIn(text)).toEqual({ lines: 5000, bytes: 303_780, structuredMetadataBytes: 138_890 });
    expect(sumMetric(text, "loki_ingester_flush_queue_length")).toBe(3);
    expect(sumMetric(text, "loki_ingester_chunks_stored_total")).toBe(0);
    // HA: summed over the instances' texts (only the one that takes the pushes distributes).
    expect(receivedIn(text, 'loki_distributor_lines_received_total{tenant="fake"} 7')).toEqual({ lines: 5007, bytes: 303_780, structuredMetadataBytes: 138_890 });
  });
});
