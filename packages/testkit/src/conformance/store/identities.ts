import type { IdentityLink } from "@ryze/chatwoot-core/store";
import { expect } from "vitest";
import { at, inParallel, unique } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

const integrationId = () => `int_${unique()}`;

function link(overrides: Partial<IdentityLink> = {}): IdentityLink {
  return {
    integrationId: "int_x",
    lid: `${Math.floor(Math.random() * 1e14)}@lid`,
    jid: `55119${Math.floor(Math.random() * 1e8)}@s.whatsapp.net`,
    createdAt: at(10),
    ...overrides,
  };
}

/** LID ↔ phone JID links (one person, one chat): stored once, looked up as either form, per integration. */
export const identityChecks: StoreCheckGroup = {
  title: "identity links",
  checks: {
    "a link reads back by its LID and by its phone JID; unknown addresses answer null": async ({ store }) => {
      const stored = link({ integrationId: integrationId(), createdAt: at(1_234) });
      expect(await store.mappings.linkIdentity(stored)).toEqual(stored);
      expect(await store.mappings.resolveIdentity(stored.integrationId, stored.lid)).toEqual(stored);
      expect(await store.mappings.resolveIdentity(stored.integrationId, stored.jid)).toEqual(stored);
      expect(await store.mappings.resolveIdentity(stored.integrationId, "1@lid")).toBeNull();
      expect(await store.mappings.resolveIdentity("int_other", stored.lid)).toBeNull();
    },

    "linking the same pair again keeps the first link; another phone JID for the LID replaces it": async ({
      store,
      raw,
    }) => {
      const first = link({ integrationId: integrationId(), createdAt: at(1) });
      await store.mappings.linkIdentity(first);
      expect(await store.mappings.linkIdentity({ ...first, createdAt: at(2) })).toEqual(first);
      const moved = { ...first, jid: "5521999990000@s.whatsapp.net", createdAt: at(3) };
      expect(await store.mappings.linkIdentity(moved)).toEqual(moved);
      expect(await store.mappings.resolveIdentity(first.integrationId, first.lid)).toEqual(moved);
      expect(await store.mappings.resolveIdentity(first.integrationId, first.jid)).toBeNull();
      const rows = Object.values(await raw.dump())
        .flat()
        .filter((row) => Object.values(row).includes(first.lid));
      expect(rows).toHaveLength(1);
    },

    "a phone JID linked to two LIDs answers the most recent link": async ({ store }) => {
      const id = integrationId();
      const jid = "5531988880000@s.whatsapp.net";
      await store.mappings.linkIdentity(link({ integrationId: id, lid: "1@lid", jid, createdAt: at(5) }));
      await store.mappings.linkIdentity(link({ integrationId: id, lid: "2@lid", jid, createdAt: at(9) }));
      expect(await store.mappings.resolveIdentity(id, jid)).toMatchObject({ lid: "2@lid", jid });
      expect(await store.mappings.resolveIdentity(id, "1@lid")).toMatchObject({ lid: "1@lid", jid });
    },

    "lookups made together (one routed message asks for both forms) answer each as if asked alone": async ({
      store,
    }) => {
      const id = integrationId();
      const jid = "5531977770000@s.whatsapp.net";
      await store.mappings.linkIdentity(link({ integrationId: id, lid: "11@lid", jid, createdAt: at(5) }));
      await store.mappings.linkIdentity(link({ integrationId: id, lid: "12@lid", jid, createdAt: at(9) }));
      // An address stored as a LID answers its own link before a link that names it as the phone JID.
      await store.mappings.linkIdentity(
        link({ integrationId: id, lid: "13@lid", jid: "11@lid", createdAt: at(20) }),
      );
      const other = integrationId();
      await store.mappings.linkIdentity(link({ integrationId: other, lid: "14@lid", jid, createdAt: at(1) }));
      const answers = await Promise.all(
        [
          [id, jid],
          [id, "11@lid"],
          [id, "12@lid"],
          [id, "15@lid"],
          [other, jid],
          [other, "12@lid"],
        ].map(([integration, address]) => store.mappings.resolveIdentity(integration!, address!)),
      );
      expect(
        answers.map(
          (answer) => answer && `${answer.integrationId === id ? "id" : "other"} ${answer.lid} ${answer.jid}`,
        ),
      ).toEqual([
        `id 12@lid ${jid}`,
        `id 11@lid ${jid}`,
        `id 12@lid ${jid}`,
        null,
        `other 14@lid ${jid}`,
        null,
      ]);
    },

    "links of one integration are not seen by another": async ({ store }) => {
      const a = link({ integrationId: integrationId() });
      const b = { ...a, integrationId: integrationId(), jid: "5541977770000@s.whatsapp.net" };
      await store.mappings.linkIdentity(a);
      await store.mappings.linkIdentity(b);
      expect(await store.mappings.resolveIdentity(a.integrationId, a.lid)).toEqual(a);
      expect(await store.mappings.resolveIdentity(b.integrationId, b.lid)).toEqual(b);
      expect(await store.mappings.resolveIdentity(b.integrationId, a.jid)).toBeNull();
    },

    "concurrent links of one pair (two processes learning it together) leave one row": async ({
      store,
      raw,
      concurrency,
    }) => {
      const base = link({ integrationId: integrationId() });
      const results = await inParallel(concurrency, (i) =>
        store.mappings.linkIdentity({ ...base, createdAt: at(100 + i) }),
      );
      for (const result of results) expect(result).toMatchObject({ lid: base.lid, jid: base.jid });
      const rows = Object.values(await raw.dump())
        .flat()
        .filter((row) => Object.values(row).includes(base.lid));
      expect(rows).toHaveLength(1);
      expect(await store.mappings.resolveIdentity(base.integrationId, base.jid)).toMatchObject({
        lid: base.lid,
      });
    },

    "setChatContact re-points a chat to another contact, and answers false for an unknown chat": async ({
      store,
    }) => {
      const id = integrationId();
      const chat = {
        integrationId: id,
        chatJid: "100@lid",
        contactId: 7,
        sourceId: "100@lid",
        conversationId: 70,
        updatedAt: at(1),
      };
      await store.mappings.putChat(chat);
      expect(await store.mappings.setChatContact(id, chat.chatJid, 8)).toBe(true);
      expect(await store.mappings.getChat(id, chat.chatJid)).toMatchObject({
        contactId: 8,
        sourceId: "100@lid",
        conversationId: 70,
      });
      expect(await store.mappings.setChatContact(id, "200@lid", 8)).toBe(false);
      expect(await store.mappings.getChat(id, "200@lid")).toBeNull();
    },
  },
};
