import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createKeyring } from "../crypto/index.js";
import { systemClock } from "../observability/index.js";
import { createMemoryStore } from "../store/memory.js";
import { createIntegrationRepository, newIntegrationId } from "./index.js";

const key = () => randomBytes(32).toString("base64");
const fields = (instance: string) => ({
  id: newIntegrationId(),
  instance,
  status: "active" as const,
  baseUrl: "https://cw.example.com",
  accountId: 1,
  apiToken: `token-of-${instance}`,
  webhookSecret: `secret-of-${instance}`,
  inboxId: 7,
  inboxName: "WhatsApp",
  chatwootUserId: 3,
  deliveryMode: "realtime" as const,
  signMessages: false,
  ignoreGroups: false,
  startAsPending: false,
  reopenResolved: false,
  lastError: "",
  provisioningUntil: null,
});

describe("rotateKeys", () => {
  it("re-seals every secret under the new key, in batches, and can run again", async () => {
    const store = createMemoryStore();
    const k1 = key();
    const k2 = key();
    const before = createIntegrationRepository(
      store.integrations,
      createKeyring({ current: { id: "k1", key: k1 } }),
      systemClock,
    );
    for (let i = 0; i < 7; i++) await before.insert(fields(`i${i}`));
    const after = createIntegrationRepository(
      store.integrations,
      createKeyring({ current: { id: "k2", key: k2 }, previous: [{ id: "k1", key: k1 }] }),
      systemClock,
    );
    expect(await after.rotateKeys({ batchSize: 3 })).toEqual({ resealed: 7, alreadyCurrent: 0, busy: 0 });
    expect(await after.rotateKeys({ batchSize: 3 })).toEqual({ resealed: 0, alreadyCurrent: 7, busy: 0 });
    for (const row of await store.integrations.list()) {
      expect(row.apiToken.startsWith("cw1:k2:")).toBe(true);
      expect(row.webhookSecret!.startsWith("cw1:k2:")).toBe(true);
    }
    // The old key can go: everything opens with the new one alone.
    const onlyNew = createIntegrationRepository(
      store.integrations,
      createKeyring({ current: { id: "k2", key: k2 } }),
      systemClock,
    );
    const opened = [];
    for await (const integration of onlyNew.all(2)) opened.push(integration.apiToken);
    expect(opened.sort()).toEqual(Array.from({ length: 7 }, (_, i) => `token-of-i${i}`).sort());
  });

  it("leaves a row alone while an activation holds it", async () => {
    const store = createMemoryStore();
    const k1 = key();
    const before = createIntegrationRepository(
      store.integrations,
      createKeyring({ current: { id: "k1", key: k1 } }),
      systemClock,
    );
    await before.insert({ ...fields("busy"), provisioningUntil: new Date(Date.now() + 60_000) });
    const after = createIntegrationRepository(
      store.integrations,
      createKeyring({ current: { id: "k2", key: key() }, previous: [{ id: "k1", key: k1 }] }),
      systemClock,
    );
    // Still under the old key, so not done: busy, to be tried again.
    expect(await after.rotateKeys()).toEqual({ resealed: 0, alreadyCurrent: 0, busy: 1 });
  });
});
