import { describe, expect, it } from "vitest";
import { isAtLeast, isSupportedVersion, parseChatwootVersion, signsWebhooks } from "./version.js";

// `GET /api` answers `config/app.yml`'s `version` (app/controllers/api_controller.rb), e.g. "4.13.0".

describe("Chatwoot versions", () => {
  it("reads what looks like a version, trimmed; anything else is unknown (null)", () => {
    for (const version of ["4.13.0", "4.12", "v4.11.2", "4.13.0-ee", "4.10.0.1", " 4.10.1 "]) {
      expect(parseChatwootVersion(version), version).toBe(version.trim());
    }
    for (const answer of [
      "develop",
      "",
      "4",
      "four.ten",
      "4.13.0 <script>",
      `4.13.${"0".repeat(70)}`,
      4.13,
      null,
      {},
    ]) {
      expect(parseChatwootVersion(answer), String(answer)).toBeNull();
    }
  });

  it("compares by major, minor and patch", () => {
    expect(isAtLeast("4.13.0", "4.13.0")).toBe(true);
    expect(isAtLeast("4.13", "4.13.0")).toBe(true);
    expect(isAtLeast("4.12.9", "4.13.0")).toBe(false);
    expect(isAtLeast("4.100.0", "4.13.0")).toBe(true);
    expect(isAtLeast("5.0.0", "4.13.0")).toBe(true);
    expect(isAtLeast("v4.13.1-ce", "4.13.0")).toBe(true);
    expect(isAtLeast(null, "4.13.0")).toBe(false);
    expect(isAtLeast("develop", "4.13.0")).toBe(false);
  });

  it("supports 4.10.0 and later; signing from 4.13.0", () => {
    expect(["4.9.9", "4.9", "3.16.0"].map(isSupportedVersion)).toEqual([false, false, false]);
    expect(["4.10.0", "4.10", "4.11.2", "4.13.0", "4.16.2"].map(isSupportedVersion)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(["4.12.1", "4.13.0", "4.14.0", null].map(signsWebhooks)).toEqual([false, true, true, false]);
  });
});
