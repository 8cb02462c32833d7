import type { ChatMapping, MessageMapping } from "@ryze/chatwoot-core/store";
import { expect } from "vitest";
import { at, inParallel, unique } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

const integrationId = () => `int_${unique()}`;

function chat(overrides: Partial<ChatMapping> = {}): ChatMapping {
  const jid = `55119${Math.floor(Math.random() * 1e8)}@s.whatsapp.net`;
  return {
    integrationId: "int_x",
    chatJid: jid,
    contactId: 101,
    sourceId: jid,
    conversationId: 501,
    updatedAt: at(10),
    ...overrides,
  };
}

function message(overrides: Partial<MessageMapping> = {}): MessageMapping {
  return {
    integrationId: "int_x",
    waMessageId: `3EB0${unique().toUpperCase()}`,
    part: 0,
    chatwootMessageId: 9001,
    conversationId: 501,
    direction: "inbound",
    createdAt: at(20),
    ...overrides,
  };
}

/** Chat and message mappings, looked up both ways, with duplicates absorbed. */
export const mappingChecks: StoreCheckGroup = {
  title: "mappings",
  checks: {
    "a chat mapping reads back by chat JID and by conversation": async ({ store }) => {
      const mapping = chat({ integrationId: integrationId(), updatedAt: at(1_234) });
      expect(await store.mappings.putChat(mapping)).toEqual(mapping);
      expect(await store.mappings.getChat(mapping.integrationId, mapping.chatJid)).toEqual(mapping);
      expect(await store.mappings.getChatByConversation(mapping.integrationId, 501)).toEqual(mapping);
      expect(await store.mappings.getChat(mapping.integrationId, "unknown@s.whatsapp.net")).toBeNull();
      expect(await store.mappings.getChatByConversation(mapping.integrationId, 999)).toBeNull();
    },

    "putChat keeps an existing mapping and returns it": async ({ store }) => {
      const first = chat({ integrationId: integrationId(), contactId: 1, conversationId: null });
      await store.mappings.putChat(first);
      const second = { ...first, contactId: 2, sourceId: "other", conversationId: 7, updatedAt: at(99) };
      expect(await store.mappings.putChat(second)).toEqual(first);
      expect(await store.mappings.getChat(first.integrationId, first.chatJid)).toEqual(first);
    },

    "concurrent putChat calls for one chat all return the one stored mapping": async ({
      store,
      concurrency,
    }) => {
      const base = chat({ integrationId: integrationId() });
      const results = await inParallel(concurrency, (i) =>
        store.mappings.putChat({ ...base, contactId: 1000 + i }),
      );
      const stored = await store.mappings.getChat(base.integrationId, base.chatJid);
      expect(stored).not.toBeNull();
      for (const result of results) expect(result).toEqual(stored);
    },

    "setChatConversation moves the chat to another conversation or none": async ({ store }) => {
      const mapping = chat({ integrationId: integrationId(), conversationId: null });
      await store.mappings.putChat(mapping);
      expect(await store.mappings.setChatConversation(mapping.integrationId, mapping.chatJid, 700)).toBe(
        true,
      );
      expect(await store.mappings.getChatByConversation(mapping.integrationId, 700)).toMatchObject({
        chatJid: mapping.chatJid,
        contactId: mapping.contactId,
        sourceId: mapping.sourceId,
        conversationId: 700,
      });
      expect(await store.mappings.setChatConversation(mapping.integrationId, mapping.chatJid, 701)).toBe(
        true,
      );
      expect(await store.mappings.getChatByConversation(mapping.integrationId, 700)).toBeNull();
      expect((await store.mappings.getChat(mapping.integrationId, mapping.chatJid))?.conversationId).toBe(
        701,
      );
      expect(await store.mappings.setChatConversation(mapping.integrationId, mapping.chatJid, null)).toBe(
        true,
      );
      expect(
        (await store.mappings.getChat(mapping.integrationId, mapping.chatJid))?.conversationId,
      ).toBeNull();
      expect(await store.mappings.setChatConversation(mapping.integrationId, "unknown@g.us", 1)).toBe(false);
    },

    "chat mappings of different integrations are independent": async ({ store }) => {
      const a = chat({ integrationId: integrationId(), contactId: 1, conversationId: 10 });
      const b = { ...a, integrationId: integrationId(), contactId: 2, conversationId: 10 };
      await store.mappings.putChat(a);
      expect(await store.mappings.putChat(b)).toEqual(b);
      expect(await store.mappings.getChat(a.integrationId, a.chatJid)).toEqual(a);
      expect(await store.mappings.getChatByConversation(b.integrationId, 10)).toEqual(b);
      expect(await store.mappings.setChatConversation(a.integrationId, a.chatJid, 11)).toBe(true);
      expect((await store.mappings.getChat(b.integrationId, b.chatJid))?.conversationId).toBe(10);
    },

    "message parts read back by WhatsApp id and by Chatwoot id, ordered by part": async ({ store }) => {
      const id = integrationId();
      const parts = [2, 0, 3, 1].map((part) =>
        message({
          integrationId: id,
          waMessageId: "3EB0AAA",
          part,
          chatwootMessageId: 9100 + part,
          direction: "outbound",
        }),
      );
      for (const part of parts) expect(await store.mappings.putMessage(part)).toBe(true);
      const byWa = await store.mappings.getMessagesByWa(id, "3EB0AAA");
      expect(byWa.map((m) => m.part)).toEqual([0, 1, 2, 3]);
      expect(byWa[2]).toEqual(parts[0]);
      expect(await store.mappings.getMessagesByChatwoot(id, 9102)).toEqual([parts[0]]);
      expect(await store.mappings.getMessagesByWa(id, "missing")).toEqual([]);
      expect(await store.mappings.getMessagesByChatwoot(id, 1)).toEqual([]);
    },

    "one Chatwoot message mapped from several WhatsApp parts lists them by part": async ({ store }) => {
      const id = integrationId();
      const parts = [1, 0].map((part) =>
        message({ integrationId: id, waMessageId: `wa-${part}`, part, chatwootMessageId: 77 }),
      );
      for (const part of parts) await store.mappings.putMessage(part);
      expect(await store.mappings.getMessagesByChatwoot(id, 77)).toEqual([parts[1], parts[0]]);
    },

    "a duplicate message mapping is absorbed and the first one kept": async ({ store }) => {
      const first = message({ integrationId: integrationId() });
      expect(await store.mappings.putMessage(first)).toBe(true);
      expect(await store.mappings.putMessage({ ...first, chatwootMessageId: 1, direction: "outbound" })).toBe(
        false,
      );
      expect(await store.mappings.getMessagesByWa(first.integrationId, first.waMessageId)).toEqual([first]);
      expect(await store.mappings.getMessagesByChatwoot(first.integrationId, 1)).toEqual([]);
    },

    "exactly one of N concurrent identical message mappings is written": async ({ store, concurrency }) => {
      const mapping = message({ integrationId: integrationId() });
      const results = await inParallel(concurrency, () => store.mappings.putMessage(mapping));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.mappings.getMessagesByWa(mapping.integrationId, mapping.waMessageId)).toEqual([
        mapping,
      ]);
    },

    "identifiers are compared exactly: case and trailing spaces count": async ({ store }) => {
      const id = integrationId();
      expect(
        await store.mappings.putMessage(
          message({ integrationId: id, waMessageId: "3EB0ABC", chatwootMessageId: 1 }),
        ),
      ).toBe(true);
      expect(
        await store.mappings.putMessage(
          message({ integrationId: id, waMessageId: "3eb0abc", chatwootMessageId: 2 }),
        ),
      ).toBe(true);
      expect((await store.mappings.getMessagesByWa(id, "3eb0abc")).map((m) => m.chatwootMessageId)).toEqual([
        2,
      ]);
      await store.mappings.putChat(chat({ integrationId: id, chatJid: "Abc@g.us", contactId: 1 }));
      expect(
        await store.mappings.putChat(chat({ integrationId: id, chatJid: "abc@g.us", contactId: 2 })),
      ).toMatchObject({
        contactId: 2,
      });
      expect((await store.mappings.getChat(id, "Abc@g.us"))?.contactId).toBe(1);
      expect(
        await store.mappings.putMessage(
          message({ integrationId: id, waMessageId: "3EB0ABC ", chatwootMessageId: 3 }),
        ),
      ).toBe(true);
      expect((await store.mappings.getMessagesByWa(id, "3EB0ABC")).map((m) => m.chatwootMessageId)).toEqual([
        1,
      ]);
      expect((await store.mappings.getMessagesByWa(id, "3EB0ABC ")).map((m) => m.chatwootMessageId)).toEqual([
        3,
      ]);
    },

    "identifiers of 191 characters round-trip": async ({ store }) => {
      const id = integrationId();
      const long = (c: string) => `${c}${"x".repeat(190)}`;
      const mapping = chat({ integrationId: id, chatJid: long("j"), sourceId: long("s") });
      await store.mappings.putChat(mapping);
      expect(await store.mappings.getChat(id, mapping.chatJid)).toEqual(mapping);
      const msg = message({ integrationId: id, waMessageId: long("w") });
      await store.mappings.putMessage(msg);
      expect(await store.mappings.getMessagesByWa(id, msg.waMessageId)).toEqual([msg]);
    },
  },
};
