import { describe, expect, it } from "vitest";
import { reconnectDelays } from "./hub.js";

describe("reconnect delays", () => {
  it("grow from the ping interval and never exceed the cap, however long the outage", () => {
    const delays = reconnectDelays(3_000, 30_000);
    const first = Array.from({ length: 200 }, () => delays(0));
    expect(Math.min(...first)).toBeGreaterThanOrEqual(3_000 * 0.5);
    expect(Math.max(...first)).toBeLessThanOrEqual(6_000 * 1.5);
    for (const attempts of [3, 9, 20, 60, 1_000]) {
      const samples = Array.from({ length: 200 }, () => delays(attempts));
      expect(Math.max(...samples)).toBeLessThanOrEqual(30_000);
      // Past the cap the backoff is the cap, jittered between half of it and all of it.
      if (attempts >= 9) expect(Math.min(...samples)).toBeGreaterThanOrEqual(15_000);
    }
  });

  it("stay spread at the cap, so that sockets lost together do not reconnect together", () => {
    const delays = reconnectDelays(3_000, 30_000);
    const capped = new Set(Array.from({ length: 100 }, () => Math.round(delays(50))));
    expect(capped.size).toBeGreaterThan(50);
  });
});
