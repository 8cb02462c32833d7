import { describe, expect, it } from "vitest";
import { createStaticDirectory } from "./index.js";

describe("createStaticDirectory", () => {
  const accounts = Array.from({ length: 50 }, (_, a) => ({
    id: `acc-${a}`,
    token: `account-token-${a}`,
    instances: Array.from({ length: 20 }, (_, i) => ({
      name: `inst-${a}-${i}`,
      token: `instance-token-${a}-${i}`,
    })),
  }));
  const directory = createStaticDirectory({ accounts });

  it("resolves account and instance tokens among 1,050, and nothing else", () => {
    expect(directory.resolveToken("account-token-7")).toEqual({ kind: "account", accountId: "acc-7" });
    expect(directory.resolveToken("instance-token-49-19")).toEqual({
      kind: "instance",
      instance: "inst-49-19",
    });
    for (const unknown of [
      "",
      "account-token-50",
      "instance-token-1-20",
      "account-token-7 ",
      "ACCOUNT-TOKEN-7",
    ])
      expect(directory.resolveToken(unknown)).toBeNull();
  });

  it("tells which account an instance belongs to", () => {
    expect(directory.getInstance("inst-3-4")).toEqual({ name: "inst-3-4", accountId: "acc-3" });
    expect(directory.getInstance("inst-3-20")).toBeNull();
  });
});
