import { Router } from "zeromq";
import type { AllowedClient } from "@aixcl/service-runtime";

/** libzmq asks for authentication here (ZMQ RFC 27); one handler per context serves every broker in the process. */
const ZAP_ENDPOINT = "inproc://zeromq.zap.01";

export type ZapOutcome = { allowed: true; client: string } | { allowed: false; reason: "unknown_key" | "unsupported_mechanism" | "unknown_domain" | "malformed" };

export interface ZapPolicy {
  /** Replaced, not edited, by a reload: a decision under way keeps the list it started with. */
  allowed: readonly AllowedClient[];
  onDecision(outcome: ZapOutcome): void;
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Decides one ZAP request. Frames as a ROUTER receives them: routing id, empty delimiter, version, request id,
 * domain, address, identity, mechanism, credentials... Returns the decision and the reply frames.
 */
export function decideZap(frames: readonly Buffer[], policies: ReadonlyMap<string, ZapPolicy>): { outcome: ZapOutcome; domain: string; reply: (Buffer | string)[] } {
  const [routingId = Buffer.alloc(0), , version, requestId = Buffer.alloc(0), domainFrame, , , mechanism, key] = frames;
  const domain = domainFrame?.toString() ?? "";
  let outcome: ZapOutcome;
  if (version?.toString() !== "1.0" || frames.length < 8) outcome = { allowed: false, reason: "malformed" };
  else if (mechanism?.toString() !== "CURVE" || !key) outcome = { allowed: false, reason: "unsupported_mechanism" };
  else {
    const policy = policies.get(domain);
    const client = policy?.allowed.find((c) => sameKey(c.key, key));
    outcome = !policy ? { allowed: false, reason: "unknown_domain" } : client ? { allowed: true, client: client.name } : { allowed: false, reason: "unknown_key" };
  }
  const reply = outcome.allowed
    ? [routingId, "", "1.0", requestId, "200", "OK", outcome.client, ""]
    : [routingId, "", "1.0", requestId, outcome.reason === "malformed" ? "500" : "400", outcome.reason, "", ""];
  return { outcome, domain, reply };
}

const policies = new Map<string, ZapPolicy>();
let handler: Promise<{ socket: Router; loop: Promise<void> }> | undefined;

async function startHandler(): Promise<{ socket: Router; loop: Promise<void> }> {
  const socket = new Router({ linger: 0 });
  await socket.bind(ZAP_ENDPOINT);
  const loop = (async () => {
    for await (const frames of socket) {
      const { outcome, domain, reply } = decideZap(frames, policies);
      policies.get(domain)?.onDecision(outcome);
      await socket.send(reply);
    }
  })().catch(() => undefined);
  return { socket, loop };
}

/**
 * Admits CURVE clients of `domain` whose public key is in `policy.allowed`. AICO's bus encrypts with CURVE but
 * never checks who connects; this is the check. Returns the function that withdraws the domain.
 */
export async function authenticate(domain: string, policy: ZapPolicy): Promise<() => Promise<void>> {
  policies.set(domain, policy);
  handler ??= startHandler();
  await handler;
  return async () => {
    policies.delete(domain);
    if (policies.size === 0 && handler) {
      const { socket, loop } = await handler;
      handler = undefined;
      socket.close();
      await loop;
    }
  };
}
