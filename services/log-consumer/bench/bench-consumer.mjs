#!/usr/bin/env node
// Throughput, CPU and memory of the log consumer (a benchmark that prints figures, not a test).
//
//   npm run build && node services/log-consumer/bench/bench-consumer.mjs [lines] [--loki|--decode-only|--refusing]
//       [--rate=<lines/s>] [--profile]
//
// Without --rate the publisher sends as fast as it can: a burst beyond what the consumer sustains is dropped by
// the broker (message_bus.yaml no_drop: false) and reported as "lost before the consumer". --rate paces it.
// --profile writes the consumer's V8 CPU profile (.cpuprofile, for Chrome DevTools) to the current directory.
// Publisher (this process, pre-encoded LogEntry frames, NODROP so nothing is lost before the broker)
//   -> broker (in this process, the real @aixcl/broker) -> consumer (dist/main.js as its own process, measured)
//   -> sink: a receiver that only decodes (snappy + protobuf, answers 204) and/or the real Loki binary.
//   -> or a sink that refuses everything (503), to see memory stay bounded by buffer.max_bytes (default 64 MiB).
// Figures: lines/s end to end (first publish to last entry accepted), consumer CPU time per line (utime+stime
// from /proc over the run) and the consumer's peak RSS (VmHWM). The machine is shared: repeat and compare.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { uncompressSync } from "snappy";
import { XPublisher } from "zeromq";
import { startBroker } from "@aixcl/broker";
import { PushRequestType } from "@aixcl/log-consumer";
import { encodeLogEntry, loadMessageBusConfig, serviceLog } from "@aixcl/shared";
import { requireComponent, startLoki } from "@aixcl/testkit";

const args = process.argv.slice(2);
const LINES = Number(args.find((a) => /^\d+$/.test(a)) ?? 200_000);
const RATE = Number(args.find((a) => a.startsWith("--rate="))?.slice(7) ?? 0);
const chosen = ["decode-only", "loki", "refusing"].filter((s) => args.includes(`--${s}`));
const sinks = chosen.length > 0 ? chosen : ["decode-only", "loki", "refusing"];
const mainJs = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const CLK_TCK = 100;

/** utime + stime of a process in seconds. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function peakRssMiB(pid) {
  const kib = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return kib / 1024;
}

/** A receiver that only decodes: what the consumer costs without Loki's own ingest cost. Or refuses all (503). */
async function startDecodeOnlyReceiver(refuse) {
  let entries = 0;
  const server = createServer((req, res) => {
    if (req.url === "/ready") return void res.writeHead(200).end();
    if (refuse) return void req.resume().on("end", () => res.writeHead(503).end());
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const push = PushRequestType.decode(uncompressSync(Buffer.concat(chunks)));
      for (const stream of push.streams) entries += stream.entries.length;
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, count: () => entries, stop: () => new Promise((r) => server.close(r)) };
}

function encodeLines(count, run) {
  const base = BigInt(Date.now()) * 1_000_000n;
  const frames = [];
  for (let n = 0; n < count; n++) {
    const subsystem = ["api_gateway", "backend", "voice", "scheduler"][n % 4];
    const entry = {
      timestampNs: base + BigInt(n),
      level: n % 10 === 0 ? "error" : "info",
      subsystem,
      module: "handler",
      function: "handle_request",
      message: `${run} seq=${n} request handled in ${n % 997} ms for /v1/items/${n % 5000} with status 200 and a payload of typical size`,
      topic: "",
      metadata: { request_id: `req-${n}` },
      filePath: "src/handler.py",
      lineNumber: 120 + (n % 50),
      userUuid: "",
      sessionId: `sess-${n % 100}`,
      traceId: `trace-${n.toString(16).padStart(16, "0")}`,
      extra: { run },
    };
    frames.push([Buffer.from(`logs.${subsystem}.handler`), encodeLogEntry(entry)]);
  }
  return frames;
}

/** One scrape of the consumer's /metrics: value of an unlabelled series, or the sum over a labelled one. */
async function scrape(opsUrl) {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  return (name) => {
    let sum = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) sum += Number(m[1]);
    return sum;
  };
}

/** The shipped config/message_bus.yaml on free ports. */
function busConfig() {
  return loadMessageBusConfig({
    MESSAGE_BUS_CONFIG: fileURLToPath(new URL("../../../config/message_bus.yaml", import.meta.url)),
    MESSAGE_BUS_PUB_PORT: "0",
    MESSAGE_BUS_SUB_PORT: "0",
    MESSAGE_BUS_METRICS_PORT: "0",
  });
}

async function runOnce(sink) {
  const loki = sink === "loki" ? await startLoki() : undefined;
  const receiver = sink === "loki" ? undefined : await startDecodeOnlyReceiver(sink === "refusing");
  const lokiUrl = loki?.url ?? receiver.url;
  const broker = await startBroker(busConfig(), serviceLog("broker", "error"));
  const run = `bench${Date.now()}`;
  process.stdout.write(`[${sink}] encoding ${LINES} lines... `);
  const frames = encodeLines(LINES, run);
  const bytes = frames.reduce((n, [, p]) => n + p.length, 0);
  console.log(`${(bytes / LINES).toFixed(0)} bytes/line on the wire`);

  const file = join(mkdtempSync(join(tmpdir(), "bench-consumer-")), "log_consumer.yaml");
  writeFileSync(file, JSON.stringify({ bus: { host: "127.0.0.1", sub_port: Number(/:(\d+)$/.exec(broker.subEndpoint)[1]) }, loki: { url: lokiUrl }, ops: { port: 0 }, log_level: "warn" }));
  const nodeArgs = args.includes("--profile") ? ["--cpu-prof", `--cpu-prof-dir=${process.cwd()}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, mainJs], { env: { ...process.env, LOG_CONSUMER_CONFIG: file, LOG_CONSUMER_LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "inherit"] });
  process.on("exit", () => child.kill("SIGKILL"));
  const opsUrl = await new Promise((resolve) => {
    let buf = "";
    child.stdout.on("data", (c) => {
      buf += c;
      const m = /"msg":"log consumer started".*?"ops":"([^"]+)"/.exec(buf);
      if (m) resolve(m[1]);
    });
  });

  const publisher = new XPublisher({ noDrop: true, sendHighWaterMark: 100_000, linger: 5000 });
  publisher.connect(broker.pubEndpoint);
  for (;;) {
    const [msg] = await publisher.receive();
    if (msg[0] === 1 && msg.subarray(1).toString() === "logs.") break;
  }

  const cpuBefore = cpuSeconds(child.pid);
  const started = performance.now();
  let sent = 0;
  for (const f of frames) {
    if (RATE > 0 && ++sent % 100 === 0) {
      const ahead = (sent / RATE) * 1000 - (performance.now() - started);
      if (ahead > 1) await new Promise((r) => setTimeout(r, ahead));
    }
    // With NODROP a full queue answers EAGAIN instead of dropping: wait for the broker to catch up.
    for (;;) {
      try {
        await publisher.send(f);
        break;
      } catch (error) {
        if (error.code !== "EAGAIN") throw error;
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  }
  const published = performance.now();
  let lastReport = started;
  let lastChange = { at: started, done: -1 };
  let peakBuffer = 0;
  let received = 0;
  for (;;) {
    const metric = await scrape(opsUrl);
    peakBuffer = Math.max(peakBuffer, metric("aixcl_log_consumer_buffer_bytes"));
    received = metric("aixcl_log_consumer_messages_received_total");
    // Refused pushes are retried for minutes: there the run ends once everything was received.
    const done =
      sink === "refusing"
        ? metric("aixcl_log_consumer_entries_decoded_total")
        : metric("aixcl_log_consumer_entries_pushed_total") + metric("aixcl_log_consumer_dropped_entries_total");
    const now = performance.now();
    if (done !== lastChange.done) lastChange = { at: now, done };
    if (done >= LINES) break;
    // The broker drops for a subscriber that falls behind (no_drop: false); then some lines never arrive.
    if (now - lastChange.at > 5000 && done === received) break;
    if (now - lastReport > 5000) {
      console.log(`  ... received ${received}, settled ${done} of ${LINES}`);
      lastReport = now;
    }
    if (now - started > 600_000) throw new Error(`gave up: ${done} of ${LINES} settled after 10 minutes`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // When the last line settled, to the 200 ms of the polling.
  const finished = lastChange.at;
  const cpu = cpuSeconds(child.pid) - cpuBefore;
  const rss = peakRssMiB(child.pid);
  await new Promise((r) => setTimeout(r, 1000)); // let the last batch close and GC settle before reading RSS
  const final = await scrape(opsUrl);
  peakBuffer = Math.max(peakBuffer, final("aixcl_log_consumer_buffer_bytes"));
  const pushed = final("aixcl_log_consumer_entries_pushed_total");
  const dropped = final("aixcl_log_consumer_dropped_entries_total");
  let confirmed = receiver?.count();
  if (loki) {
    const params = new URLSearchParams({ query: `sum(count_over_time({service=~".+"} |= "${run} "[1h]))` });
    const res = await (await fetch(`${loki.url}/loki/api/v1/query?${params}`)).json();
    confirmed = Number(res.data.result[0]?.value[1] ?? 0);
  }
  const seconds = (finished - started) / 1000;
  console.log(
    `[${sink}] ${received} of ${LINES} lines received (${LINES - received} lost before the consumer) in ${seconds.toFixed(2)} s = ${Math.round(received / seconds)} lines/s ` +
      `(published at ${Math.round(LINES / ((published - started) / 1000))} lines/s); pushed ${pushed}, dropped ${dropped}, sink confirms ${confirmed}; ` +
      `consumer CPU ${((cpu / LINES) * 1e6).toFixed(1)} µs/line (${((cpu / seconds) * 100).toFixed(0)}% of a core), peak RSS ${rss.toFixed(0)} MiB, ` +
      `peak buffer ${(peakBuffer / 2 ** 20).toFixed(1)} MiB of ${(final("aixcl_log_consumer_buffer_limit_bytes") / 2 ** 20).toFixed(0)} MiB`,
  );

  child.kill("SIGTERM");
  await new Promise((r) => child.on("exit", r));
  publisher.close();
  await broker.close();
  await receiver?.stop();
  await loki?.stop();
}

for (const sink of sinks) {
  if (sink === "loki") {
    const loki = requireComponent("loki");
    if (loki.skip) {
      console.log(`[loki] skipped: ${loki.skip}`);
      continue;
    }
  }
  await runOnce(sink);
}
