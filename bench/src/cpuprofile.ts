/** Summarizes a V8 .cpuprofile (node --cpu-prof): where the busy time went, by area and by function. */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Areas, matched on the script URL in order; the first match wins. */
const AREAS: [string, RegExp][] = [
  ["zeromq (receive, native)", /node_modules\/zeromq\//],
  ["protobufjs", /node_modules\/protobufjs\//],
  ["snappy", /node_modules\/snappy\//],
  ["prom-client", /node_modules\/prom-client\//],
  ["undici (HTTP)", /node_modules\/undici\/|node:internal\/deps\/undici/],
  ["zeromq (receive, native)", /packages\/shared\/(dist|src)\/wire\/receive\./],
  ["shared decoder", /packages\/shared\/(dist|src)\/wire\//],
  ["consumer: mapping/labels", /log-consumer\/(dist|src)\/(mapping|labels)\./],
  ["consumer: encode", /log-consumer\/(dist|src)\/encode\./],
  ["consumer: pipeline/batch", /log-consumer\/(dist|src)\/(pipeline|batch)\./],
  ["consumer: receive loop", /log-consumer\/(dist|src)\/(consumer|receive)\./],
  ["consumer: other", /log-consumer\//],
  ["node internals", /^node:/],
];

function area(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (functionName === "(garbage collector)") return "garbage collector";
  if (functionName === "(program)") return "V8/native (program)";
  // protobufjs' generated encoders and decoders have no URL.
  if (url === "" && functionName !== "(root)") return "generated code (protobufjs codecs) and natives";
  return AREAS.find(([, re]) => re.test(url))?.[0] ?? "other";
}

export interface ProfileSummary {
  /** Where the profile was kept (open it in Chrome DevTools or VS Code). */
  file?: string;
  busyMs: number;
  areas: { area: string; share: number }[];
  functions: { name: string; share: number }[];
}

export function summarizeProfile(file: string, top = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfByNode = new Map<number, number>();
  profile.samples.forEach((id, i) => selfByNode.set(id, (selfByNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  let busy = 0;
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, micros] of selfByNode) {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === "(idle)") continue;
    busy += micros;
    const a = area(node);
    areas.set(a, (areas.get(a) ?? 0) + micros);
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(/^.*node_modules\//, "").replace(/^.*\/(packages|services)\//, "$1/");
    const name = `${functionName || "(anonymous)"}${where ? ` ${where}:${lineNumber + 1}` : ""}`;
    functions.set(name, (functions.get(name) ?? 0) + micros);
  }
  const ranked = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    busyMs: busy / 1000,
    areas: ranked(areas).map(([name, micros]) => ({ area: name, share: micros / busy })),
    functions: ranked(functions).slice(0, top).map(([name, micros]) => ({ name, share: micros / busy })),
  };
}

export function formatProfile(summary: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)}%`;
  return [
    `    busy ${(summary.busyMs / 1000).toFixed(2)} s sampled${summary.file ? ` (${summary.file})` : ""}; by area (self time):`,
    ...summary.areas.filter((a) => a.share >= 0.005).map((a) => `      ${pct(a.share)}  ${a.area}`),
    "    top functions (self time):",
    ...summary.functions.map((f) => `      ${pct(f.share)}  ${f.name}`),
  ].join("\n");
}
