import { randomBytes } from "node:crypto";
import {
  type ChatwootBridge,
  createChatwootBridge,
  createStaticDirectory,
  isBridgeError,
  type StoragePort,
} from "@ryze/chatwoot-core";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerSecret, secretCheckingLogger } from "../secrets.js";
import { type ChatwootSimulator, startChatwootSimulator } from "../simulator/index.js";
import { fuzzSettings } from "./settings.js";

// Issue 15, item 6: `bridge.ingest` with any value (docs/events.md). Properties: it resolves with an IngestResult or
// refuses with INVALID_EVENT naming the failing path (anything else only under an injected store failure); a refused
// or ignored event stores nothing; the process stays up and ingest still works afterwards.

const { seed, numRuns } = fuzzSettings("ingest envelopes");

let sim: ChatwootSimulator;
let bridge: ChatwootBridge;
let memory: ReturnType<typeof createMemoryStore>;
let storeFails = false;

function failing(store: StoragePort): StoragePort {
  const wrap = <T extends object>(part: T): T =>
    new Proxy(part, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver) as unknown;
        if (typeof value !== "function") return value;
        return (...args: unknown[]) =>
          storeFails
            ? Promise.reject(new Error("disk I/O error (injected)"))
            : (value as (...a: unknown[]) => unknown).apply(target, args);
      },
    });
  return {
    ...store,
    integrations: wrap(store.integrations),
    outbox: wrap(store.outbox),
    mappings: wrap(store.mappings),
  };
}

beforeAll(async () => {
  sim = await startChatwootSimulator();
  const accountId = sim.createAccount({ name: "Acme" }).id;
  const admin = sim.createUser({ name: "Jane", accounts: [{ accountId, role: "administrator" }] });
  memory = createMemoryStore();
  const key = randomBytes(32).toString("base64");
  registerSecret(key, "an encryption key");
  bridge = createChatwootBridge({
    store: failing(memory),
    directory: createStaticDirectory({ accounts: [] }),
    encryption: { current: { id: "k1", key } },
    // Not started: events are only stored, never delivered; webhook mode needs no realtime socket.
    delivery: "webhook",
    publicUrl: "http://127.0.0.1:9",
    logger: secretCheckingLogger(),
  });
  const flags = { ignoreGroups: true };
  expect(
    await bridge.activate("suporte", {
      chatwootBaseUrl: sim.url,
      chatwootAccountId: accountId,
      chatwootApiToken: admin.accessToken,
      ...flags,
    }),
  ).toMatchObject({ status: "active" });
});

afterAll(async () => {
  await bridge?.stop();
  await sim?.close();
});

/**
 * What is stored, by reference: the memory store replaces a chat or identity row on change and adds outbox records
 * (the dispatcher, which changes records in place, is not running), so "unchanged" is the same rows, cheaply.
 */
const snapshot = (): unknown[] => [
  ...memory.raw.outbox.values(),
  ...memory.raw.chats.values(),
  ...memory.raw.identities.values(),
  ...memory.raw.integrations.values(),
];
const unchanged = (before: unknown[]) => {
  const after = snapshot();
  return after.length === before.length && after.every((row, index) => row === before[index]);
};

const mostly = <T, U>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<U>) =>
  fc.oneof({ weight: 15, arbitrary: valid }, { weight: 1, arbitrary: invalid });
const weird = fc.oneof(
  fc.anything({ maxDepth: 2, maxKeys: 4 }),
  fc.constantFrom(null, "", 0, -1, [], {}, "__proto__", "x".repeat(300), "\u0000", "\ud800"),
);
const phone = fc.integer({ min: 100_000, max: 999_999_999_999 }).map(String);
const jid = mostly(
  fc.oneof(
    phone.map((p) => `${p}@s.whatsapp.net`),
    fc.constantFrom("status@broadcast", "120363025246125486@g.us", "123@newsletter", "123456@lid"),
  ),
  weird,
);
const id = mostly(fc.stringMatching(/^[0-9A-F]{8,24}$/), weird);
const message = fc.record(
  {
    id,
    direction: mostly(fc.constantFrom("incoming", "outgoing"), weird),
    timestamp: mostly(
      fc
        .date({ min: new Date("2020-01-01"), max: new Date("2030-01-01"), noInvalidDate: true })
        .map((d) => d.toISOString()),
      weird,
    ),
    chat: mostly(
      fc.record(
        {
          jid,
          name: mostly(fc.string({ maxLength: 40 }), weird),
          type: mostly(fc.constantFrom("private", "group", "newsletter"), weird),
        },
        { requiredKeys: ["jid"] },
      ),
      weird,
    ),
    sender: mostly(
      fc.record({ jid, name: fc.option(fc.string({ maxLength: 40 })) }, { requiredKeys: [] }),
      weird,
    ),
    content: mostly(
      fc.record({ text: mostly(fc.string({ maxLength: 500 }), weird) }, { requiredKeys: [] }),
      weird,
    ),
    media: mostly(
      fc.record(
        {
          type: mostly(
            fc.constantFrom("image", "video", "audio", "ptt", "document", "sticker", "ptv"),
            weird,
          ),
          url: fc.constantFrom("http://127.0.0.1:1/media.jpg", "http://169.254.169.254/", "not a url", null),
          base64: mostly(fc.base64String({ maxLength: 40 }), weird),
          mimetype: fc.option(fc.constantFrom("image/jpeg", "audio/ogg", "application/pdf", "x")),
          fileName: fc.option(fc.string({ maxLength: 30 })),
          caption: fc.option(fc.string({ maxLength: 60 })),
        },
        { requiredKeys: ["type"] },
      ),
      weird,
    ),
    quoted: mostly(fc.record({ id }), weird),
    edit: mostly(fc.record({ targetId: id }), weird),
    revoke: mostly(fc.record({ targetId: id }), weird),
    reaction: mostly(fc.record({ targetId: id, emoji: fc.constantFrom("👍", "", "❤️", "x") }), weird),
  },
  { requiredKeys: ["id", "direction", "chat"] },
);
const envelope = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        event: fc.constant("message.exchange"),
        data: mostly(fc.record({ id, message }, { requiredKeys: ["message"] }), weird),
        instanceData: mostly(fc.record({ instance: fc.string() }, { requiredKeys: [] }), weird),
      },
      { requiredKeys: ["event", "data"] },
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      event: fc.constant("message.status"),
      data: mostly(
        fc.record(
          {
            id,
            chat: mostly(fc.record({ jid }), weird),
            status: mostly(
              fc.constantFrom("pending", "sent", "delivered", "received", "read", "played", "error"),
              weird,
            ),
            status_code: mostly(fc.integer(), weird),
          },
          { requiredKeys: ["id", "chat", "status"] },
        ),
        weird,
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      event: fc.constant("contact.identity"),
      data: mostly(
        fc.record({
          lid: mostly(
            phone.map((p) => `${p}@lid`),
            weird,
          ),
          jid: mostly(
            phone.map((p) => `${p}@s.whatsapp.net`),
            weird,
          ),
        }),
        weird,
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      { event: mostly(fc.string({ maxLength: 30 }), weird), data: weird },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: weird },
);
const instance = fc.oneof(
  { weight: 8, arbitrary: fc.constant("suporte") },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

const seen = new Map<string, number>();
const tally = (key: string): void => {
  seen.set(key, (seen.get(key) ?? 0) + 1);
};

describe("fuzzing ingest (issue 15)", () => {
  afterAll(() => console.log(`fuzz ingest envelopes: outcomes ${JSON.stringify(Object.fromEntries(seen))}`));

  it("answers or refuses naming the field, and stores nothing for what it refuses or ignores", async () => {
    await fc.assert(
      fc.asyncProperty(instance, envelope, fc.integer({ min: 0, max: 31 }), async (name, event, dice) => {
        const before = snapshot();
        storeFails = dice === 0;
        let outcome: { result?: unknown; error?: unknown };
        try {
          outcome = { result: await bridge.ingest(name, event as never) };
        } catch (error) {
          outcome = { error };
        } finally {
          storeFails = false;
        }
        if ("error" in outcome) {
          expect(unchanged(before)).toBe(true);
          if (dice === 0 && !isBridgeError(outcome.error)) return tally("store failure");
          expect(isBridgeError(outcome.error), String(outcome.error)).toBe(true);
          const error = outcome.error as { code: string; message: string };
          expect(error.code).toBe("INVALID_EVENT");
          // Names the failing path of the envelope, e.g. `invalid event: data.message.chat.jid: ...`.
          expect(error.message).toMatch(/^invalid event: (envelope|event|data|instanceData)[\w.[\]-]*: \S/);
          return tally("INVALID_EVENT");
        }
        const result = outcome.result as { id: unknown; duplicate: unknown; ignored?: unknown };
        expect(typeof result.id).toBe("string");
        expect(typeof result.duplicate).toBe("boolean");
        if (result.ignored !== undefined || result.duplicate === true) {
          expect(unchanged(before)).toBe(true);
          return tally(result.duplicate === true ? "duplicate" : `ignored ${String(result.ignored)}`);
        }
        tally("stored");
      }),
      { seed, numRuns, interruptAfterTimeLimit: 120_000, endOnFailure: true },
    );
    for (const outcome of ["stored", "INVALID_EVENT", "ignored no_integration"])
      expect(seen.get(outcome), outcome).toBeGreaterThan(0);
    // Still up and still storing.
    const text = {
      event: "message.exchange",
      data: {
        message: {
          id: "FUZZ-END-1",
          direction: "incoming",
          chat: { jid: "5511900000001@s.whatsapp.net" },
          content: { text: "still here" },
        },
      },
    };
    expect(await bridge.ingest("suporte", text as never)).toMatchObject({ duplicate: false });
  }, 300_000);
});
