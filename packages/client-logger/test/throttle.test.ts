import { describe, expect, it } from "vitest";
import { LogThrottle } from "../src/index.js";

describe("LogThrottle", () => {
  it("lets the first occurrence through, then one per interval with what happened since the last line", () => {
    const throttle = new LogThrottle<"entries">(1000);
    expect(throttle.note(0, { entries: 3 })).toEqual({ times: 1, entries: 3 });
    expect(throttle.note(10, { entries: 2 })).toBeUndefined();
    expect(throttle.note(999, { entries: 5 })).toBeUndefined();
    expect(throttle.note(1000, { entries: 1 })).toEqual({ times: 3, entries: 8 });
    expect(throttle.note(1500, { entries: 1 })).toBeUndefined();
    expect(throttle.note(5000, { entries: 4 })).toEqual({ times: 2, entries: 5 });
  });

  it("counts occurrences without amounts", () => {
    const throttle = new LogThrottle(1000);
    expect([throttle.note(0), throttle.note(1), throttle.note(2), throttle.note(1001)]).toEqual([{ times: 1 }, undefined, undefined, { times: 3 }]);
  });
});
