import { describe, expect, it } from "vitest";
import { untilQuiet } from "../src/index.js";

describe("untilQuiet", () => {
  it("is quiet once nothing arrived for quietMs", async () => {
    const { quiet, ms } = await untilQuiet(() => 0, { quietMs: 50 });
    expect(quiet).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(50);
    expect(ms).toBeLessThan(400);
  });

  it("is not quiet while a message waits to be read, however long ago the last one was read", async () => {
    const until = Date.now() + 300;
    const { quiet, ms } = await untilQuiet(() => 0, { quietMs: 50, pending: () => Date.now() < until });
    expect(quiet).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(300);
  });

  it("gives up after maxMs when messages keep waiting", async () => {
    const { quiet, ms } = await untilQuiet(() => 0, { quietMs: 50, maxMs: 200, pending: () => true });
    expect(quiet).toBe(false);
    expect(ms).toBeGreaterThanOrEqual(200);
  });
});
