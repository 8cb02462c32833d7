import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createChatwootBridge, createStaticDirectory } from "./index.js";
import { createMemoryStore } from "./testing.js";

const key = randomBytes(32).toString("base64");
const valid = () => ({
  store: createMemoryStore(),
  directory: createStaticDirectory({ accounts: [{ id: "a", token: "t", instances: [] }] }),
  encryption: { current: { id: "k1", key } },
});

describe("createChatwootBridge options", () => {
  it("accepts the minimal options", () => {
    expect(() => createChatwootBridge(valid())).not.toThrow();
  });

  it("refuses bad options with an error that names each field, never echoing the key", () => {
    const attempts: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...valid(), encryption: undefined }, /^invalid options: encryption: required/],
      [
        { ...valid(), delivery: "webhook" },
        /^invalid options: publicUrl: required when delivery is "webhook"/,
      ],
      [{ ...valid(), delivery: "carrier-pigeon" }, /^invalid options: .*delivery/],
      [{ ...valid(), realtime: { leaseTtlMs: 10 } }, /^invalid options: .*realtime\.leaseTtlMs/],
      [
        { ...valid(), realtime: { maxReconnectDelayMs: -1 } },
        /^invalid options: .*realtime\.maxReconnectDelayMs/,
      ],
      [{ ...valid(), store: { integrations: {} } }, /^invalid options: .*store/],
    ];
    for (const [options, message] of attempts) {
      let error: unknown;
      try {
        createChatwootBridge(options as Parameters<typeof createChatwootBridge>[0]);
      } catch (caught) {
        error = caught;
      }
      expect(error, String(message)).toMatchObject({
        code: "INVALID_OPTIONS",
        message: expect.stringMatching(message),
      });
      expect(String((error as Error).message)).not.toContain(key);
    }
  });
});
