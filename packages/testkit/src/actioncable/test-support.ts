/**
 * Test helpers for the suites that run against the real Rails ActionCable server (launcher.ts).
 */
import { describe, it } from "vitest";
import { type RailsCableGate, railsCableGate } from "./launcher.js";

let warned = false;

/**
 * `describe` for tests that need the real ActionCable server. Without Ruby/ActionCable/puma the suite is skipped
 * with a banner on the console, or, with `CI_REQUIRE_ACTIONCABLE=1`, replaced by one failing test.
 */
export function describeRailsCable(
  name: string,
  body: () => void,
  gate: RailsCableGate = railsCableGate(),
): void {
  if (gate.mode === "fail") {
    describe(name, () => {
      it("has Ruby, ActionCable and puma installed", () => {
        throw new Error(gate.message);
      });
    });
    return;
  }
  if (gate.mode === "skip" && !warned) {
    warned = true;
    console.warn(gate.message);
  }
  describe.skipIf(gate.mode === "skip")(name, body);
}

/** Resolves after `ms` (for observing that nothing happens during a window). */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
