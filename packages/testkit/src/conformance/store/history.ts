import { expect } from "vitest";
import { at, inParallel, unique } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

const integrationId = () => `int_${unique()}`;

/** History sync (`docs/history.md`): a chat's last routed WhatsApp timestamp, and the progress counts. */
export const historyChecks: StoreCheckGroup = {
  title: "chat history",
  checks: {
    "the last routed timestamp only rises and the history conversation is kept, per chat and integration":
      async ({ store }) => {
        const id = integrationId();
        const chat = "5511999990001@s.whatsapp.net";
        expect(await store.mappings.getHistory(id, chat)).toEqual({
          lastRoutedAt: null,
          conversationId: null,
        });
        await store.mappings.recordHistory(id, chat, { routedAt: at(5_000) });
        await store.mappings.recordHistory(id, chat, { routedAt: at(3_000) });
        await store.mappings.recordHistory(id, chat, { imported: 1 });
        expect(await store.mappings.getHistory(id, chat)).toEqual({
          lastRoutedAt: at(5_000),
          conversationId: null,
        });
        await store.mappings.recordHistory(id, chat, { routedAt: at(7_000), conversationId: 41 });
        await store.mappings.recordHistory(id, chat, { skipped: 1 });
        expect(await store.mappings.getHistory(id, chat)).toEqual({
          lastRoutedAt: at(7_000),
          conversationId: 41,
        });
        expect((await store.mappings.getHistory(id, "5511999990002@s.whatsapp.net")).lastRoutedAt).toBeNull();
        expect((await store.mappings.getHistory(integrationId(), chat)).conversationId).toBeNull();
      },

    "changes made together (messages of several chats routed at once) add up as if made one by one": async ({
      store,
    }) => {
      const id = integrationId();
      const [a, b] = ["5511999990011@s.whatsapp.net", "5511999990012@s.whatsapp.net"];
      await store.mappings.recordHistory(id, a, { routedAt: at(500), queued: 3 });
      await Promise.all([
        store.mappings.recordHistory(id, a, { routedAt: at(200), imported: 1 }),
        store.mappings.recordHistory(id, a, { routedAt: at(900), skipped: 1 }),
        store.mappings.recordHistory(id, a, { conversationId: 77, imported: 1 }),
        store.mappings.recordHistory(id, b, { routedAt: at(300) }),
        store.mappings.recordHistory(id, b, { routedAt: at(100) }),
      ]);
      expect(await store.mappings.getHistory(id, a)).toEqual({ lastRoutedAt: at(900), conversationId: 77 });
      expect(await store.mappings.getHistory(id, b)).toEqual({ lastRoutedAt: at(300), conversationId: null });
      expect(await store.mappings.historyProgress(id)).toEqual({ queued: 3, imported: 2, skipped: 1 });
    },

    "progress sums the counts of every chat of the integration, concurrent writers included": async ({
      store,
      concurrency,
    }) => {
      const id = integrationId();
      expect(await store.mappings.historyProgress(id)).toEqual({ queued: 0, imported: 0, skipped: 0 });
      await inParallel(concurrency, (i) =>
        store.mappings.recordHistory(id, `55119999900${i % 3}@s.whatsapp.net`, { queued: 2 }),
      );
      await inParallel(concurrency, (i) =>
        store.mappings.recordHistory(id, `55119999900${i % 3}@s.whatsapp.net`, {
          imported: 1,
          routedAt: at(100 + i),
        }),
      );
      await store.mappings.recordHistory(id, "5511999990000@s.whatsapp.net", { skipped: 3 });
      await store.mappings.recordHistory(integrationId(), "5511999990000@s.whatsapp.net", { queued: 9 });
      expect(await store.mappings.historyProgress(id)).toEqual({
        queued: 2 * concurrency,
        imported: concurrency,
        skipped: 3,
      });
    },
  },
};
