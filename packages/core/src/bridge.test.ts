import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bridgeOptionsSchema } from "./bridge.js";
import { createChatwootBridge, createStaticDirectory, type WhatsAppEvent } from "./index.js";
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
      [
        { ...valid(), encryption: undefined },
        /^invalid options: encryption: missing \(pass encryption or a cipher\)$/,
      ],
      [
        { ...valid(), delivery: "webhook" },
        /^invalid options: publicUrl: missing \(delivery "webhook" needs it\)$/,
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

  it("says `missing` for every absent required option, never zod's generic Invalid input", () => {
    const messageOf = (options: unknown) => {
      try {
        createChatwootBridge(options as Parameters<typeof createChatwootBridge>[0]);
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error("accepted");
    };
    expect(messageOf(undefined)).toBe("invalid options: options: missing");
    expect(messageOf({})).toBe("invalid options: store: missing; directory: missing");
    expect(messageOf({ ...valid(), encryption: {} })).toBe("invalid options: encryption.current: missing");
    expect(messageOf({ ...valid(), encryption: { current: { id: "k1" } } })).toBe(
      "invalid options: encryption.current.key: missing",
    );
    expect(messageOf({ ...valid(), encryption: { current: { key } } })).toBe(
      "invalid options: encryption.current.id: missing",
    );
    expect(
      messageOf({ ...valid(), encryption: { current: { id: "k1", key }, previous: [{ id: "k0" }] } }),
    ).toBe("invalid options: encryption.previous.0.key: missing");
    // A present but wrong value says what is expected instead.
    expect(messageOf({ ...valid(), encryption: { current: { id: "k 1", key: 7 } } })).toBe(
      "invalid options: encryption.current.id: must be 1 to 32 letters, digits, _ or -; " +
        "encryption.current.key: must be a string (base64 or hex) or a Uint8Array of 32 bytes",
    );
    expect(messageOf({ ...valid(), store: 3 })).toMatch(/^invalid options: store: must be a StoragePort/);
    expect(messageOf({ ...valid(), gateway: {} })).toMatch(
      /^invalid options: gateway: must be a WhatsAppGateway/,
    );
  });
});

describe("option defaults", () => {
  it("are all in the options schema", () => {
    const options = bridgeOptionsSchema.parse(valid());
    expect(options).toMatchObject({
      enabled: true,
      prefix: "/api/chatwoot",
      exposeApiToken: true,
      rateLimit: { points: 100, durationSeconds: 60, onStoreError: "open" },
      delivery: "realtime",
      activationTimeoutMs: 60_000,
      realtime: {
        pingIntervalMs: 3_000,
        subscribeTimeoutMs: 10_000,
        maxReconnectDelayMs: 30_000,
        leaseTtlMs: 15_000,
      },
      dispatcher: { concurrency: 16, itemTimeoutMs: 120_000, claimTtlMs: 30_000, pollIntervalMs: 250 },
      outbound: { maxAttachments: 10 },
      retry: {
        inbound: { windowMs: 24 * 60 * 60 * 1000, baseDelayMs: 1_000, maxDelayMs: 10 * 60 * 1000 },
        outbound: { maxAttempts: 3, baseDelayMs: 5_000, maxDelayMs: 30_000 },
      },
      media: { maxBytes: 40 * 1024 * 1024, timeoutMs: 60_000 },
      echoWaitMs: 1_500,
      encryption: { previous: [] },
    });
    expect(options.processId).toMatch(/^process-[0-9a-f-]{36}$/);
    expect(bridgeOptionsSchema.parse(valid()).processId).not.toBe(options.processId);
    // A partial group keeps the defaults of the fields it leaves out.
    expect(bridgeOptionsSchema.parse({ ...valid(), retry: { outbound: { maxAttempts: 5 } } }).retry).toEqual({
      inbound: { windowMs: 24 * 60 * 60 * 1000, baseDelayMs: 1_000, maxDelayMs: 10 * 60 * 1000 },
      outbound: { maxAttempts: 5, baseDelayMs: 5_000, maxDelayMs: 30_000 },
    });
  });
});

describe("ingest", () => {
  const message = (id: string) => ({
    event: "message.exchange" as const,
    data: { message: { id, direction: "incoming" as const, chat: { jid: "5511999998888@s.whatsapp.net" } } },
  });

  it("answers no_integration for an instance without an integration instead of throwing, and counts it", async () => {
    const bridge = createChatwootBridge(valid());
    await expect(bridge.ingest("suporte", message("3EB0A1"))).resolves.toEqual({
      id: "3EB0A1",
      duplicate: false,
      ignored: "no_integration",
    });
    const receipt = {
      event: "message.status" as const,
      data: { id: "3EB0A2", chat: { jid: "5511999998888@s.whatsapp.net" }, status: "read" as const },
    };
    await expect(bridge.ingest("suporte", receipt)).resolves.toMatchObject({
      id: "3EB0A2",
      ignored: "no_integration",
    });
    const presence = { event: "presence.update", data: {} } as unknown as WhatsAppEvent;
    await expect(bridge.ingest("nobody", presence)).resolves.toMatchObject({
      id: "",
      ignored: "no_integration",
    });
    expect(bridge.counters()).toMatchObject({ no_integration: 3 });
  });

  it("validates the event first: a malformed one throws INVALID_EVENT naming the path, integration or not", async () => {
    const bridge = createChatwootBridge(valid());
    const attempts: Array<[unknown, string]> = [
      [undefined, "invalid event: envelope: missing"],
      ["hello", "invalid event: envelope: Invalid input: expected object, received string"],
      [{ data: {} }, "invalid event: event: missing"],
      [{ event: "message.exchange" }, "invalid event: data: missing"],
      [
        { event: "message.exchange", data: { message: { id: "x" } } },
        "invalid event: data.message.direction: missing; data.message.chat: missing",
      ],
      [
        {
          event: "message.status",
          data: { id: "x", chat: { jid: "5511999998888@s.whatsapp.net" }, status: "seen" },
        },
        'invalid event: data.status: Invalid option: expected one of "pending"|"sent"|"delivered"|"received"|"read"|"played"|"error"',
      ],
    ];
    for (const [event, text] of attempts) {
      await expect(bridge.ingest("suporte", event as WhatsAppEvent), text).rejects.toMatchObject({
        code: "INVALID_EVENT",
        message: text,
      });
    }
  });
});
