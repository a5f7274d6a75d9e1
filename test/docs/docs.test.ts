/**
 * What the docs show must work: every ./aixcl command in LOGGING.md and QUICKSTART_LOGGING.md is accepted by
 * the CLI (the Bash script with a recording fake docker, and the TypeScript parser for the commands it
 * forwards), every LogQL query they show is accepted by the real Loki, and the queries only use labels the
 * stack actually sets. (snippets.test.ts runs their code.)
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseArgs } from "@aixcl/cli";
// The consumer's stream labels and mapping; the package exports only its public API, so read the modules themselves.
import { ENTRY_FIELDS, EntryMapper, EXTRA_PREFIX, METADATA_PREFIX, RESERVED_LABELS } from "../../services/log-consumer/src/mapping.js";
import { loadConsumerConfig } from "../../services/log-consumer/src/config.js";
import type { LokiHandle } from "@aixcl/testkit";
import { fullEntry, requireComponent, startLoki, tempDir } from "@aixcl/testkit";
import { aixclOutput } from "../docker/neighbours.js";
import { DOCS, fencedBlocks, root, seedQueries } from "./markdown.js";


/** Splits a command line like a POSIX shell does for quotes and backslashes (no expansion). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in ${line}`);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      let j = i + 1;
      let text = "";
      for (; j < line.length && line[j] !== '"'; j++) text += line[j] === "\\" && /["\\$`]/.test(line[j + 1] ?? "") ? line[++j] : line[j];
      if (j >= line.length) throw new Error(`unterminated " in ${line}`);
      word = (word ?? "") + text;
      i = j;
    } else if (ch === "\\") {
      word = (word ?? "") + (line[++i] ?? "");
    } else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? "") + ch;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

interface Shown {
  doc: string;
  text: string;
}

/** Inline code spans outside fenced blocks, with a table's escaped pipes restored. */
function inlineSpans(text: string): string[] {
  const prose = text.replace(/^```[\s\S]*?^```$/gm, "");
  return [...prose.matchAll(/`([^`\n]+)`/g)].map((m) => (m[1] as string).replaceAll("\\|", "|"));
}

/** `./aixcl ...` command lines: in shell blocks, and inline spans that are not usage synopses (<placeholder>, [--option]). */
function commands(): Shown[] {
  const out: Shown[] = [];
  for (const doc of DOCS) {
    const text = readFileSync(join(root, doc), "utf8");
    const candidates = [
      ...fencedBlocks(text, ["bash", "sh", "shell", "console"]).flatMap((b) => b.replace(/\\\n/g, " ").split("\n")),
      ...inlineSpans(text).filter((s) => !/<|\[-/.test(s)),
    ];
    for (const raw of candidates) {
      const line = raw.replace(/^\$\s+/, "").replace(/^([A-Z_][A-Z0-9_]*=\S+\s+)+/, "").trim();
      if (line.startsWith("./aixcl") && !out.some((o) => o.doc === doc && o.text === line)) out.push({ doc, text: line });
    }
  }
  return out;
}

function logqlShown(): Shown[] {
  const out: Shown[] = [];
  for (const doc of DOCS) {
    const text = readFileSync(join(root, doc), "utf8");
    for (const block of fencedBlocks(text, ["logql"])) {
      for (const line of block.split("\n")) if (line.trim() !== "" && !line.trim().startsWith("#")) out.push({ doc, text: line.trim() });
    }
    // Inline selectors such as {compose_project="aixcl", compose_service!~"loki|grafana"}.
    for (const span of inlineSpans(text)) if (/^\{[a-z_]+\s*(=|!=|=~|!~)\s*"/.test(span)) out.push({ doc, text: span });
  }
  // The queries given to ./aixcl logs query / logs tail.
  for (const c of commands()) {
    const words = shellWords(c.text).slice(1);
    if (words[0] === "logs" && (words[1] === "query" || words[1] === "tail")) {
      const cmd = parseArgs(words);
      if (cmd.kind === "query" || cmd.kind === "tail") out.push({ doc: c.doc, text: cmd.logql });
    }
  }
  return out;
}

describe("the docs' ./aixcl commands", () => {
  const shown = commands();
  let dir: string;
  const fakeDocker = join(root, "test/stack/fake-docker");
  const healthy = ["loki", "promtail", "prometheus", "alertmanager", "grafana", "broker", "log-consumer"].map((s) => `${s} running healthy`).join("\n");

  beforeAll(() => {
    dir = tempDir("docs");
    for (const f of ["aixcl", ".env.example", "docker-compose.yml", "docker-compose.ha.yml"]) copyFileSync(join(root, f), join(dir, f));
    writeFileSync(join(dir, ".env"), "GRAFANA_ADMIN_PASSWORD=docs0test0password0long\n");
  });

  it("covers the commands of the issue", () => {
    const texts = shown.map((s) => shellWords(s.text).slice(1, 3).join(" "));
    for (const cmd of ["start", "stop", "status", "clean", "bus test", "logs query", "logs tail", "logs grafana", "alerts"]) expect(texts).toContain(cmd);
    expect(shown.length).toBeGreaterThan(15);
  });

  it.each(commands().map((s) => [s.doc, s.text]))("%s: %s", (_doc, text) => {
    const args = shellWords(text).slice(1);
    const log = join(dir, "calls.log");
    writeFileSync(log, "");
    const r = spawnSync("bash", [join(dir, "aixcl"), ...args], {
      encoding: "utf8",
      input: "",
      timeout: 20_000,
      env: { PATH: `${fakeDocker}:${process.env.PATH}`, HOME: dir, FAKE_DOCKER_LOG: log, FAKE_DOCKER_PS: healthy, FAKE_DOCKER_RUNNING: "loki\nalertmanager\n", AIXCL_START_TIMEOUT: "2" },
    });
    expect(r.status, r.stderr).not.toBe(2);
    expect(r.stderr).not.toMatch(/unknown (command|option|service)/);
    const forwarded = readFileSync(log, "utf8")
      .split("\n")
      .map((l) => l.split("\x1f"))
      .find((c) => c.includes("run"));
    if (["logs query", "logs tail", "bus test"].includes(args.slice(0, 2).join(" ")) || args[0] === "alerts") {
      // The TypeScript half gets exactly the arguments shown, and accepts them.
      expect(forwarded?.slice(forwarded.indexOf("cli") + 1)).toEqual(args);
      expect(parseArgs(args).kind).not.toBe("help");
    }
  });
});

/** Labels OTLP records get: limits_config.otlp_config's index_label resource attributes, dots as underscores. */
function otlpLabels(): string[] {
  const loki = parse(readFileSync(join(root, "loki/loki-config.yml"), "utf8")) as {
    limits_config: { otlp_config: { resource_attributes: { attributes_config: { action: string; attributes: string[] }[] } } };
  };
  return loki.limits_config.otlp_config.resource_attributes.attributes_config
    .filter((c) => c.action === "index_label")
    .flatMap((c) => c.attributes.map((a) => a.replaceAll(".", "_")));
}

describe("the docs' LogQL", () => {
  const queries = logqlShown();

  it("covers container logs, application logs and metric queries", () => {
    const texts = queries.map((q) => q.text);
    expect(texts.some((t) => t.includes("compose_project"))).toBe(true);
    expect(texts.some((t) => t.startsWith('{service='))).toBe(true);
    expect(texts.some((t) => /^(sum|topk|count)/.test(t))).toBe(true);
    expect(texts.length).toBeGreaterThan(20);
  });

  it("uses only labels the stack sets", () => {
    const promtail = parse(readFileSync(join(root, "promtail/promtail-config.yml"), "utf8")) as {
      scrape_configs: { relabel_configs?: { target_label?: string }[]; static_configs?: { labels?: Record<string, string> }[] }[];
    };
    const known = new Set<string>([
      ...RESERVED_LABELS,
      // Promtail's file targets label each line with the file it came from.
      "filename",
      // Promoted from JSON lines by the pipeline's labels stage.
      "level",
      // Added by Loki to every stream (limits_config.discover_service_name, on by default).
      "service_name",
      // The OTLP resource attributes loki-config.yml indexes, as Loki names them.
      ...otlpLabels(),
      ...promtail.scrape_configs.flatMap((j) => (j.relabel_configs ?? []).map((r) => r.target_label ?? "")),
      ...promtail.scrape_configs.flatMap((j) => (j.static_configs ?? []).flatMap((s) => Object.keys(s.labels ?? {}))),
    ]);
    for (const q of queries) {
      const code = q.text.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/`[^`]*`/g, "``");
      for (const selector of code.matchAll(/\{([^{}]*)\}/g)) {
        for (const m of (selector[1] as string).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) {
          expect(known, `${q.doc}: ${q.text} selects on label ${m[1]}`).toContain(m[1]);
        }
      }
    }
  });

  const loki = requireComponent("loki");
  if (loki.skip) console.warn(`SKIPPED LogQL-against-Loki checks in test/docs/docs.test.ts: ${loki.skip}`);

  describe.skipIf(loki.skip !== undefined)("accepted by the real Loki", () => {
    let handle: LokiHandle;
    beforeAll(async () => {
      handle = await startLoki();
    });
    afterAll(async () => handle?.stop());

    it("seed 003's four example queries each find the output of AIXCL's services, labelled as Promtail labels it", async () => {
      const seed = seedQueries();
      expect(seed.map((q) => q.title)).toEqual(["All AIXCL container logs", "PostgreSQL errors", "Ollama model activity", "Authentication events"]);
      const run = randomUUID();
      // The Docker tier runs the same queries against containers printing these lines (test/docker/neighbours.ts).
      const now = BigInt(Date.now()) * 1_000_000n;
      await handle.push(
        Object.entries(aixclOutput(run)).map(([service, lines]) => ({
          stream: { compose_project: "aixcl", compose_service: service, container: `aixcl-${service}-1`, stream: "stdout", job: "containers" },
          values: lines.map((line, i) => [String(now - BigInt(lines.length - i) * 1000n), line] as [string, string]),
        })),
      );
      const services = async (logql: string) => {
        const streams = await handle.waitFor(`${logql} |= "${run}"`, 1, 10_000);
        return [...new Set(streams.map((s) => s.stream["compose_service"]))].sort();
      };
      expect(await services(seed[0]?.logql ?? "")).toEqual(["ollama", "open-webui", "postgres"]);
      expect(await services(seed[1]?.logql ?? "")).toEqual(["postgres"]);
      expect(await services(seed[2]?.logql ?? "")).toEqual(["ollama"]);
      expect(await services(seed[3]?.logql ?? "")).toEqual(["open-webui"]);
    });

    it("each query on a bus entry's fields finds the entry it was written for, as the shipped consumer config sends it", async () => {
      const fields = loadConsumerConfig({ LOG_CONSUMER_CONFIG: join(root, "config/log_consumer.yaml") }).fields;
      const mapped = new EntryMapper({}, fields).map(fullEntry({ timestampNs: BigInt(Date.now()) * 1_000_000n }));
      await handle.push([{ stream: Object.fromEntries(mapped.stream.labels), values: [[String(mapped.timestampNs), mapped.line, Object.fromEntries(mapped.metadata)]] }]);
      const names = [...ENTRY_FIELDS.map(([name]) => name), METADATA_PREFIX, EXTRA_PREFIX];
      const onFields = queries.filter((q) => q.text.startsWith("{service=") && names.some((name) => q.text.includes(`| ${name}`)));
      expect(onFields.length).toBeGreaterThanOrEqual(6);
      for (const q of onFields) expect((await handle.waitFor(q.text, 1, 10_000)).length, `${q.doc}: ${q.text}`).toBe(1);
    });

    it.each(queries.map((q) => [q.doc, q.text]))("%s: %s", async (_doc, query) => {
      const end = Date.now();
      const ns = (ms: number) => String(BigInt(ms) * 1_000_000n);
      const params = new URLSearchParams({ query, start: ns(end - 3600_000), end: ns(end), limit: "10" });
      const res = await fetch(`${handle.url}/loki/api/v1/query_range?${params}`);
      const body = await res.text();
      expect(res.status, body).toBe(200);
    });
  });
});

// Measured against Loki 3.7.8 (test/components/loki.test.ts): an exact duplicate is stored, shown once by log
// queries and counted twice by metric queries. The shipped files once said Loki drops it.
describe("the shipped files' claims about Loki", () => {
  it.each(["LOGGING.md", "QUICKSTART_LOGGING.md", "README.md", "services/log-consumer/README.md", "config/log_consumer.yaml", "config/message_bus.yaml"])(
    "%s never says Loki drops or deduplicates exact duplicates",
    (file) => {
      const text = readFileSync(join(root, file), "utf8").replace(/\s+/g, " ");
      expect(text).not.toMatch(/Loki (drops|dedup\w*|discards|ignores) (exact )?duplicates/i);
      expect(text).not.toMatch(/Loki stores (an )?exact duplicates? once/i);
    },
  );
});
