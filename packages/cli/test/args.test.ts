import { describe, expect, it } from "vitest";
import { DEFAULT_ALERTMANAGER_URL, DEFAULT_LOKI_URL, DEFAULT_TAIL_QUERY, formatAge, parseArgs, parseDuration, UsageError } from "../src/index.js";

function usage(argv: string[]): string {
  try {
    parseArgs(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`expected a usage error for ${argv.join(" ")}`);
}

describe("parseDuration", () => {
  it.each([
    ["30s", 30_000],
    ["15m", 900_000],
    ["1h30m", 5_400_000],
    ["7d", 604_800_000],
    ["1w", 604_800_000],
    ["250ms", 250],
  ])("%s is %d ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "10", "1x", "h", "-5m", "5m ", "0s", "1.5h"])("%j is not a duration", (text) => expect(parseDuration(text)).toBeUndefined());
});

describe("parseArgs", () => {
  it("logs query takes the LogQL and options in any order, with defaults", () => {
    expect(parseArgs(["logs", "query", '{service="api"} |= "x"'])).toEqual({
      kind: "query",
      logql: '{service="api"} |= "x"',
      lokiUrl: DEFAULT_LOKI_URL,
      since: 3_600_000,
      limit: 100,
      json: false,
    });
    expect(parseArgs(["logs", "query", "--since", "15m", '{a="b"}', "--limit=20", "--json", "--loki", "http://loki:3100/"])).toMatchObject({
      logql: '{a="b"}',
      since: 900_000,
      limit: 20,
      json: true,
      lokiUrl: "http://loki:3100",
    });
  });

  it("takes the Loki URL from LOKI_URL when --loki is absent", () => {
    expect(parseArgs(["logs", "query", "{a=\"b\"}"], { LOKI_URL: "http://loki:3100" })).toMatchObject({ lokiUrl: "http://loki:3100" });
  });

  it("logs tail defaults to every container of the project and follows with -f or --follow", () => {
    expect(parseArgs(["logs", "tail"])).toMatchObject({ kind: "tail", logql: DEFAULT_TAIL_QUERY, follow: false });
    expect(parseArgs(["logs", "tail", "-f"])).toMatchObject({ follow: true });
    expect(parseArgs(["logs", "tail", '{compose_service="loki"}', "--follow"])).toMatchObject({ logql: '{compose_service="loki"}', follow: true });
  });

  it("bus test takes a timeout, an endpoint and the broker's metrics URL (default: the bus host, port 9464)", () => {
    expect(parseArgs(["bus", "test"])).toEqual({ kind: "bus-test", lokiUrl: DEFAULT_LOKI_URL, timeoutMs: 30_000, endpoint: undefined, brokerMetricsUrl: "http://127.0.0.1:9464" });
    expect(parseArgs(["bus", "test", "--timeout", "1m", "--bus", "tcp://broker:5555"])).toMatchObject({ timeoutMs: 60_000, endpoint: "tcp://broker:5555" });
    expect(parseArgs(["bus", "test"], { MESSAGE_BUS_HOST: "broker" })).toMatchObject({ brokerMetricsUrl: "http://broker:9464" });
    expect(parseArgs(["bus", "test"], { MESSAGE_BUS_HOST: "localhost", MESSAGE_BUS_METRICS_PORT: "19464" })).toMatchObject({ brokerMetricsUrl: "http://127.0.0.1:19464" });
    expect(parseArgs(["bus", "test", "--broker-metrics", "http://10.0.0.2:9464/"])).toMatchObject({ brokerMetricsUrl: "http://10.0.0.2:9464" });
    expect(() => parseArgs(["bus", "test", "--broker-metrics", "broker:9464"])).toThrow(/bus test: --broker-metrics "broker:9464" must be http:\/\/ or https:\/\//);
  });

  it("alerts takes the Alertmanager URL from --alertmanager, else ALERTMANAGER_URL, else 127.0.0.1:9093", () => {
    expect(parseArgs(["alerts"])).toEqual({ kind: "alerts", alertmanagerUrl: DEFAULT_ALERTMANAGER_URL, json: false });
    expect(parseArgs(["alerts", "--json"], { ALERTMANAGER_URL: "http://alertmanager:9093/" })).toEqual({ kind: "alerts", alertmanagerUrl: "http://alertmanager:9093", json: true });
    expect(parseArgs(["alerts", "--alertmanager=http://127.0.0.1:19093"], { ALERTMANAGER_URL: "http://alertmanager:9093" })).toMatchObject({ alertmanagerUrl: "http://127.0.0.1:19093" });
  });

  it("`--` lets a query start with a dash", () => {
    expect(parseArgs(["logs", "query", "--", "-weird"])).toMatchObject({ logql: "-weird" });
  });

  it("help in every spelling", () => {
    for (const argv of [[], ["help"], ["--help"], ["-h"], ["logs", "query", "--help"], ["bus", "test", "-h"]]) {
      expect(parseArgs(argv)).toEqual({ kind: "help" });
    }
  });

  it("refuses bad command lines with a message saying what to do", () => {
    expect(usage(["logs", "query"])).toMatch(/LogQL query is missing, e\.g\./);
    expect(usage(["logs", "query", "  "])).toMatch(/query is empty/);
    expect(usage(["logs", "query", "{a=\"b\"}", "|=", "x"])).toMatch(/quote the whole LogQL query as one argument/);
    expect(usage(["logs", "query", "{a=\"b\"}", "--since", "yesterday"])).toMatch(/--since "yesterday" is not a duration \(examples: 30s/);
    expect(usage(["logs", "query", "{a=\"b\"}", "--since"])).toMatch(/--since needs a value/);
    expect(usage(["logs", "query", "{a=\"b\"}", "--limit", "0"])).toMatch(/--limit must be a whole number from 1 to 5000/);
    expect(usage(["logs", "query", "{a=\"b\"}", "--limit", "9000"])).toMatch(/from 1 to 5000/);
    expect(usage(["logs", "query", "{a=\"b\"}", "--follow"])).toMatch(/unknown option --follow \(options: --since, --limit, --loki, --json\)/);
    expect(usage(["logs", "query", "{a=\"b\"}", "--loki", "not a url"])).toMatch(/is not a URL \(e\.g\. http:\/\/127\.0\.0\.1:3100\)/);
    expect(usage(["logs", "query", "{a=\"b\"}", "--loki", "loki:3100"])).toMatch(/must be http:\/\/ or https:\/\//);
    expect(usage(["logs", "query", "{a=\"b\"}", "--loki", "ftp://x"])).toMatch(/must be http:\/\/ or https:\/\//);
    expect(usage(["logs", "tail", "{a=\"b\"}", "extra"])).toMatch(/unexpected argument "extra"/);
    expect(usage(["bus", "test", "now"])).toMatch(/unexpected argument "now"/);
    expect(usage(["bus", "test", "--bus", "broker:5555"])).toMatch(/must look like tcp:\/\/<host>:<port>/);
    expect(usage(["bus", "send"])).toMatch(/unknown command "bus send"; commands: logs query, logs tail, bus test, alerts, keys, help/);
    expect(usage(["alerts", "firing"])).toMatch(/^alerts: unexpected argument "firing"$/);
    expect(usage(["alerts", "--since", "1h"])).toMatch(/^alerts: unknown option --since \(options: --alertmanager, --json\)$/);
    expect(usage(["alerts", "--alertmanager", "alertmanager:9093"])).toMatch(/^alerts: Alertmanager URL "alertmanager:9093" must be http:\/\/ or https:\/\//);
    expect(usage(["alerts", "--alertmanager", "not a url"])).toMatch(/is not a URL \(e\.g\. http:\/\/127\.0\.0\.1:9093\)/);
    expect(usage(["logs"])).toMatch(/unknown command "logs"/);
  });
});

describe("formatAge", () => {
  it.each([
    [0, "0s"],
    [59_999, "59s"],
    [60_000, "1m"],
    [3_599_000, "59m"],
    [3_600_000 + 5 * 60_000, "1h05m"],
    [26 * 3_600_000, "1d02h"],
    [-5_000, "0s"],
  ])("%d ms is %s", (ms, text) => expect(formatAge(ms)).toBe(text));
});
