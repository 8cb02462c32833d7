import type { StoragePort } from "@ryze/chatwoot-core";
import { expect } from "vitest";
import { at, integrationFixture, rowsHolding } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

/** Gives an integration a chat, two message parts and outbox items in every status. */
async function populate(store: StoragePort, integrationId: string): Promise<void> {
  await store.mappings.putChat({
    integrationId,
    chatJid: "5511@s.whatsapp.net",
    contactId: 1,
    sourceId: "5511@s.whatsapp.net",
    conversationId: 10,
    updatedAt: at(0),
  });
  await store.mappings.linkIdentity({
    integrationId,
    lid: "100@lid",
    jid: "5511@s.whatsapp.net",
    createdAt: at(0),
  });
  await store.mappings.recordHistory(integrationId, "5511@s.whatsapp.net", { routedAt: at(5), queued: 1 });
  for (const part of [0, 1]) {
    await store.mappings.putMessage({
      integrationId,
      waMessageId: "3EB0X",
      part,
      chatwootMessageId: 20 + part,
      conversationId: 10,
      direction: "inbound",
      createdAt: at(0),
    });
  }
  for (const [i, chatKey] of ["a", "b", "c", "a"].entries()) {
    await store.outbox.enqueue(
      { integrationId, direction: "inbound", chatKey, dedupeKey: `d${i}`, payload: { i } },
      at(i),
    );
  }
  const [first, second] = await store.outbox.claim({ owner: "w", limit: 2, claimTtlMs: 1_000, now: at(10) });
  await store.outbox.complete(first!.id, "w");
  await store.outbox.markDead(second!.id, "w", "x");
  await store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 1_000, now: at(11) });
}

/** Deleting an integration removes its mappings and outbox rows, and nothing of any other integration. */
export const cascadeChecks: StoreCheckGroup = {
  title: "delete cascade",
  checks: {
    "delete removes the integration's chat and message mappings and every outbox row": async ({
      store,
      raw,
    }) => {
      const doomed = integrationFixture().row;
      const kept = integrationFixture().row;
      for (const row of [doomed, kept]) {
        await store.integrations.insert(row);
        await populate(store, row.id);
      }
      expect(await store.outbox.count(doomed.id)).toEqual({ pending: 0, claimed: 2, done: 1, dead: 1 });

      expect(await store.integrations.delete(doomed.id, 1)).toBe(true);
      expect(await store.mappings.getChat(doomed.id, "5511@s.whatsapp.net")).toBeNull();
      expect(await store.mappings.getMessagesByWa(doomed.id, "3EB0X")).toEqual([]);
      expect(await store.mappings.resolveIdentity(doomed.id, "100@lid")).toBeNull();
      expect(await store.mappings.historyProgress(doomed.id)).toEqual({ queued: 0, imported: 0, skipped: 0 });
      expect(await store.outbox.count(doomed.id)).toEqual({ pending: 0, claimed: 0, done: 0, dead: 0 });
      expect(await rowsHolding(raw, doomed.id)).toEqual([]);

      expect(await store.mappings.getChat(kept.id, "5511@s.whatsapp.net")).not.toBeNull();
      expect(await store.mappings.getMessagesByWa(kept.id, "3EB0X")).toHaveLength(2);
      expect(await store.mappings.resolveIdentity(kept.id, "100@lid")).toMatchObject({
        jid: "5511@s.whatsapp.net",
      });
      expect(await store.outbox.count(kept.id)).toEqual({ pending: 0, claimed: 2, done: 1, dead: 1 });
      // Dedupe keys of the deleted integration are forgotten with it.
      const again = await store.outbox.enqueue(
        { integrationId: doomed.id, direction: "inbound", chatKey: "a", dedupeKey: "d0", payload: null },
        at(20),
      );
      expect(again.duplicate).toBe(false);
    },

    "a delete refused by the version guard removes nothing": async ({ store }) => {
      const { row } = integrationFixture();
      await store.integrations.insert(row);
      await populate(store, row.id);
      expect(await store.integrations.delete(row.id, 7)).toBe(false);
      expect(await store.integrations.getById(row.id)).toEqual(row);
      expect(await store.mappings.getMessagesByWa(row.id, "3EB0X")).toHaveLength(2);
      expect(await store.outbox.count(row.id)).toEqual({ pending: 0, claimed: 2, done: 1, dead: 1 });
    },
  },
};
