import type { MessageMapping, OutboxItem } from "@ryze/chatwoot-core/store";
import { expect } from "vitest";
import { at, integrationFixture, unique } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

/**
 * Calls made in the same turn of the event loop, as a busy router makes them (every ingested event enqueues, every
 * delivery reads its integration and mappings, writes a mapping and completes). A store may send such calls as one
 * statement; each call must still get exactly the answer it would get alone.
 */
export const togetherChecks: StoreCheckGroup = {
  title: "calls made together",
  checks: {
    "enqueues made together keep call order per chat key, new and known chats alike, and absorb duplicates":
      async ({ store }) => {
        const integrationId = `int_${unique()}`;
        // Chats A and B already hold an item; chats C and D are new.
        const earlier = await Promise.all(
          ["A", "B"].map((chatKey) =>
            store.outbox.enqueue(
              { integrationId, direction: "inbound", chatKey, dedupeKey: `early-${chatKey}`, payload: null },
              at(0),
            ),
          ),
        );
        const calls = Array.from({ length: 40 }, (_, i) => ({
          chatKey: "ABCD"[i % 4]!,
          // Every fifth call repeats the dedupe key of the call before it, and one repeats a stored item's key.
          dedupeKey: i === 39 ? "early-A" : i % 5 === 4 ? `m${i - 1}` : `m${i}`,
        }));
        const answers = await Promise.all(
          calls.map(({ chatKey, dedupeKey }, i) =>
            store.outbox.enqueue(
              { integrationId, direction: "inbound", chatKey, dedupeKey, payload: { i } },
              at(1),
            ),
          ),
        );
        const firstByKey = new Map<string, string>([
          ["early-A", earlier[0]!.id],
          ["early-B", earlier[1]!.id],
        ]);
        const expectedOrder = new Map<string, string[]>([
          ["A", [earlier[0]!.id]],
          ["B", [earlier[1]!.id]],
        ]);
        calls.forEach(({ chatKey, dedupeKey }, i) => {
          const answer = answers[i]!;
          const first = firstByKey.get(dedupeKey);
          if (first === undefined) {
            expect(answer.duplicate, `call ${i}`).toBe(false);
            firstByKey.set(dedupeKey, answer.id);
            expectedOrder.set(chatKey, [...(expectedOrder.get(chatKey) ?? []), answer.id]);
          } else {
            expect(answer, `call ${i} repeats ${dedupeKey}`).toEqual({ id: first, duplicate: true });
          }
        });
        const stored = firstByKey.size;
        expect(await store.outbox.count(integrationId)).toEqual({
          pending: stored,
          claimed: 0,
          done: 0,
          dead: 0,
        });

        // Draining one head at a time shows each chat key's order.
        const drained = new Map<string, string[]>();
        for (let n = 0; n < stored; n++) {
          const [item] = await store.outbox.claim({
            owner: "drain",
            limit: 1,
            claimTtlMs: 60_000,
            now: at(2),
          });
          if (!item) throw new Error(`the outbox ran dry after ${n} of ${stored} items`);
          drained.set(item.chatKey, [...(drained.get(item.chatKey) ?? []), item.id]);
          expect(await store.outbox.complete(item.id, "drain")).toBe(true);
        }
        expect(drained).toEqual(expectedOrder);
      },

    "message mappings written together: one write per key wins, reads made together get their own rows":
      async ({ store }) => {
        const [one, two] = [`int_${unique()}`, `int_${unique()}`];
        const mapping = (integrationId: string, waMessageId: string, part: number): MessageMapping => ({
          integrationId,
          waMessageId,
          part,
          chatwootMessageId: 1_000 + part,
          conversationId: 7,
          direction: "inbound",
          createdAt: at(5),
        });
        expect(await store.mappings.putMessage(mapping(one, "stored", 0))).toBe(true);
        // The same WhatsApp ids under two integrations, a key written twice in one burst, an already stored key.
        const writes = [
          mapping(one, "w1", 0),
          mapping(one, "w1", 1),
          mapping(two, "w1", 0),
          mapping(one, "w2", 0),
          mapping(one, "w2", 0),
          mapping(one, "stored", 0),
        ];
        const written = await Promise.all(writes.map((entry) => store.mappings.putMessage(entry)));
        expect(written).toEqual([true, true, true, true, false, false]);

        const [w1one, w1two, w2, missing, stored] = await Promise.all([
          store.mappings.getMessagesByWa(one, "w1"),
          store.mappings.getMessagesByWa(two, "w1"),
          store.mappings.getMessagesByWa(one, "w2"),
          store.mappings.getMessagesByWa(two, "w2"),
          store.mappings.getMessagesByWa(one, "stored"),
        ]);
        expect(w1one).toEqual([mapping(one, "w1", 0), mapping(one, "w1", 1)]);
        expect(w1two).toEqual([mapping(two, "w1", 0)]);
        expect(w2).toEqual([mapping(one, "w2", 0)]);
        expect(missing).toEqual([]);
        expect(stored).toEqual([mapping(one, "stored", 0)]);
      },

    "chat reads made together get their own chat or none": async ({ store }) => {
      const [one, two] = [`int_${unique()}`, `int_${unique()}`];
      const chat = (integrationId: string, chatJid: string, contactId: number) => ({
        integrationId,
        chatJid,
        contactId,
        sourceId: chatJid,
        conversationId: contactId * 10,
        updatedAt: at(contactId),
      });
      await store.mappings.putChat(chat(one, "a@s.whatsapp.net", 1));
      await store.mappings.putChat(chat(one, "b@s.whatsapp.net", 2));
      await store.mappings.putChat(chat(two, "a@s.whatsapp.net", 3));
      const read = await Promise.all([
        store.mappings.getChat(one, "a@s.whatsapp.net"),
        store.mappings.getChat(two, "a@s.whatsapp.net"),
        store.mappings.getChat(one, "b@s.whatsapp.net"),
        store.mappings.getChat(two, "b@s.whatsapp.net"),
        store.mappings.getChat(one, "a@s.whatsapp.net"),
      ]);
      expect(read).toEqual([
        chat(one, "a@s.whatsapp.net", 1),
        chat(two, "a@s.whatsapp.net", 3),
        chat(one, "b@s.whatsapp.net", 2),
        null,
        chat(one, "a@s.whatsapp.net", 1),
      ]);
    },

    "completes made together: only the holder completes, and only once": async ({ store }) => {
      const integrationId = `int_${unique()}`;
      for (let i = 0; i < 6; i++)
        await store.outbox.enqueue(
          { integrationId, direction: "inbound", chatKey: `c${i}`, dedupeKey: `d${i}`, payload: null },
          at(0),
        );
      const mine: OutboxItem[] = await store.outbox.claim({
        owner: "me",
        limit: 4,
        claimTtlMs: 60_000,
        now: at(1),
      });
      const theirs = await store.outbox.claim({ owner: "them", limit: 2, claimTtlMs: 60_000, now: at(1) });
      expect([mine.length, theirs.length]).toEqual([4, 2]);
      const results = await Promise.all([
        ...mine.map((item) => store.outbox.complete(item.id, "me")),
        store.outbox.complete(mine[0]!.id, "me"),
        store.outbox.complete(theirs[0]!.id, "me"),
        store.outbox.complete(theirs[1]!.id, "them"),
        store.outbox.complete("no-such-item", "me"),
      ]);
      expect(results).toEqual([true, true, true, true, false, false, true, false]);
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 0, claimed: 1, done: 5, dead: 0 });
    },

    "integration reads made together get their own row or none": async ({ store }) => {
      const rows = [integrationFixture().row, integrationFixture().row];
      for (const row of rows) await store.integrations.insert(row);
      const read = await Promise.all([
        store.integrations.get(rows[1]!.instance),
        store.integrations.getById(rows[0]!.id),
        store.integrations.get(rows[0]!.instance),
        store.integrations.get("no-such-instance"),
        store.integrations.getById(rows[1]!.id),
        store.integrations.getById("int_missing"),
      ]);
      expect(read).toEqual([rows[1], rows[0], rows[0], null, rows[1], null]);
    },
  },
};
