import type { ChatMapping, HistoryChange, IdentityLink, MappingStore } from "@ryze/chatwoot-core/store";
import { batched, firstIndexes, groupBy, WRITES } from "./batch.js";
import { chatColumns, chatFromRow, checkKey, messageColumns, messageFromRow, type Row } from "./codec.js";
import type { StoreContext } from "./context.js";
import { insertUnlessDuplicate, isUniqueViolation } from "./dialect.js";
import { COLUMN_LIMITS } from "./migrations.js";
import { createPreparedQuery } from "./prepared.js";

interface Keyed {
  integrationId: string;
  key: string;
}

const MESSAGE_KEY = ["integration_id", "wa_message_id", "part"];
const messageKey = (row: Row) =>
  `${String(row.integration_id)}\u0000${String(row.wa_message_id)}\u0000${String(row.part)}`;

const identityFromRow = (row: Row): IdentityLink => ({
  integrationId: String(row.integration_id),
  lid: String(row.lid),
  jid: String(row.jid),
  createdAt: new Date(Number(row.created_at)),
});

export function createMappingStore({
  knex,
  dialect,
  tables: t,
  preparedStatements,
}: StoreContext): MappingStore {
  const readChat = async (where: Row): Promise<ChatMapping | null> => {
    const row: Row | undefined = await knex(t.chatMappings)
      .where(where)
      .orderBy("updated_at", "desc")
      .first();
    return row ? chatFromRow(row) : null;
  };

  /**
   * Rows of `table` whose `column` is one of the keys, one statement per integration for concurrent callers (every
   * routed message reads its chat and its message mappings), answered per key in `order`.
   */
  const prepared = preparedStatements && dialect !== "mysql" ? createPreparedQuery(knex) : null;
  const readByKey = (table: string, column: string, order: { column: string; direction: "asc" | "desc" }) =>
    batched(async (wanted: Keyed[]): Promise<Row[][]> => {
      const answers: Row[][] = wanted.map(() => []);
      for (const [integrationId, group] of groupBy(wanted, (entry) => entry.integrationId)) {
        const keys = [...new Set(group.map(({ item }) => item.key))];
        // PostgreSQL and SQLite: one text for every batch (the keys bound as one array), prepared once.
        const rows: Row[] = prepared
          ? await prepared(
              dialect === "postgresql"
                ? `select * from ${knex.client.wrapIdentifier(table)} where integration_id = $1 and ` +
                    `${column} = any($2::text[]) order by ${order.column} ${order.direction}`
                : `select * from ${knex.client.wrapIdentifier(table)} where integration_id = ? and ` +
                    `${column} in (select value from json_each(?)) order by ${order.column} ${order.direction}`,
              [integrationId, dialect === "postgresql" ? keys : JSON.stringify(keys)],
            )
          : await knex(table)
              .where({ integration_id: integrationId })
              .whereIn(column, keys)
              .orderBy(order.column, order.direction);
        const byKey = groupBy(rows, (row) => String(row[column]));
        for (const { item, index } of group)
          answers[index] = (byKey.get(item.key) ?? []).map((entry) => entry.item);
      }
      return answers;
    });
  // Several mappings for one chat should not happen; if it does, the latest wins (as in `readChat`).
  const chatRows = readByKey(t.chatMappings, "chat_jid", { column: "updated_at", direction: "desc" });
  const messageRows = readByKey(t.messageMappings, "wa_message_id", { column: "part", direction: "asc" });

  /**
   * Inserts message mappings in one statement where the database says which rows it inserted (`ON CONFLICT DO
   * NOTHING RETURNING`); MySQL/MariaDB insert one at a time.
   */
  const insertMessages = batched(async (rows: Row[]): Promise<boolean[]> => {
    const oneByOne = async (some: Row[]) => {
      const inserted: boolean[] = [];
      for (const row of some)
        inserted.push(await insertUnlessDuplicate(knex, dialect, t.messageMappings, row, MESSAGE_KEY));
      return inserted;
    };
    if (rows.length === 1) return oneByOne(rows);
    const first = firstIndexes(rows, messageKey);
    if (dialect === "mysql") {
      // No RETURNING: read which keys are stored already, then insert the others in one plain multi-row INSERT,
      // atomic as a statement. Should another writer store one of them in between, the INSERT fails as a whole on
      // its duplicate and those rows go one by one.
      const unique = rows.filter((_, index) => first[index] === index);
      const stored = new Set<string>();
      for (const [integrationId, group] of groupBy(unique, (row) => String(row.integration_id))) {
        const found: Row[] = await knex(t.messageMappings)
          .select(MESSAGE_KEY)
          .where({ integration_id: integrationId })
          .whereIn("wa_message_id", [...new Set(group.map(({ item }) => String(item.wa_message_id)))]);
        for (const row of found) stored.add(messageKey(row));
      }
      const fresh = unique.filter((row) => !stored.has(messageKey(row)));
      let written: Set<string>;
      try {
        if (fresh.length > 0) await knex(t.messageMappings).insert(fresh);
        written = new Set(fresh.map(messageKey));
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        const alone = await oneByOne(fresh);
        written = new Set(fresh.filter((_, index) => alone[index]).map(messageKey));
      }
      return rows.map((row, index) => first[index] === index && written.has(messageKey(row)));
    }
    const inserted: Row[] = await knex(t.messageMappings)
      .insert(rows.filter((_, index) => first[index] === index))
      .onConflict(MESSAGE_KEY)
      .ignore()
      .returning(MESSAGE_KEY);
    const stored = new Set(inserted.map(messageKey));
    return rows.map((row, index) => first[index] === index && stored.has(messageKey(row)));
  }, WRITES);

  /**
   * The identity link of each address (looked up as a LID, else as a phone JID: the most recent link), one statement
   * per integration for concurrent callers (every routed private-chat message looks its person up).
   */
  const identities = batched(async (wanted: Keyed[]): Promise<(IdentityLink | null)[]> => {
    const answers: (IdentityLink | null)[] = wanted.map(() => null);
    for (const [integrationId, group] of groupBy(wanted, (entry) => entry.integrationId)) {
      const keys = [...new Set(group.map(({ item }) => item.key))];
      // Newest first, as the single lookup of a phone JID orders its links.
      const rows: Row[] = await knex(t.identityLinks)
        .where({ integration_id: integrationId })
        .andWhere((where) => where.whereIn("lid", keys).orWhereIn("jid", keys))
        .orderBy([
          { column: "created_at", order: "desc" },
          { column: "lid", order: "asc" },
        ]);
      for (const { item, index } of group) {
        const row =
          rows.find((entry) => String(entry.lid) === item.key) ??
          rows.find((entry) => String(entry.jid) === item.key);
        answers[index] = row ? identityFromRow(row) : null;
      }
    }
    return answers;
  });

  /**
   * Adds history changes in one upsert for concurrent callers (every routed message records its chat's last routed
   * timestamp): the changes of one chat are combined first (counts added, the newest timestamp, the last
   * conversation given), then added to the stored record, so concurrent writers still add up and the timestamp
   * only rises.
   */
  const writeHistory = batched(
    async (calls: { integrationId: string; chatJid: string; change: HistoryChange }[]) => {
      const rows = new Map<
        string,
        Row & { last_wa_at: number; queued: number; imported: number; skipped: number }
      >();
      for (const { integrationId, chatJid, change } of calls) {
        const key = `${integrationId}\u0000${chatJid}`;
        const row = rows.get(key) ?? {
          integration_id: integrationId,
          chat_jid: chatJid,
          last_wa_at: 0,
          conversation_id: null,
          queued: 0,
          imported: 0,
          skipped: 0,
        };
        row.last_wa_at = Math.max(row.last_wa_at, change.routedAt?.getTime() ?? 0);
        if (change.conversationId !== undefined) row.conversation_id = change.conversationId;
        row.queued += change.queued ?? 0;
        row.imported += change.imported ?? 0;
        row.skipped += change.skipped ?? 0;
        rows.set(key, row);
      }
      const [stored, added] =
        dialect === "mysql"
          ? [
              (column: string) => knex.raw("??", [column]),
              (column: string) => knex.raw("values(??)", [column]),
            ]
          : [
              (column: string) => knex.raw("??.??", [t.chatHistory, column]),
              (column: string) => knex.raw("excluded.??", [column]),
            ];
      const sum = (column: string) => knex.raw("? + ?", [stored(column), added(column)]);
      await knex(t.chatHistory)
        .insert([...rows.values()])
        .onConflict(["integration_id", "chat_jid"])
        .merge({
          last_wa_at: knex.raw("case when ? < ? then ? else ? end", [
            stored("last_wa_at"),
            added("last_wa_at"),
            added("last_wa_at"),
            stored("last_wa_at"),
          ]),
          conversation_id: knex.raw("coalesce(?, ?)", [added("conversation_id"), stored("conversation_id")]),
          queued: sum("queued"),
          imported: sum("imported"),
          skipped: sum("skipped"),
        });
      return calls.map(() => undefined);
    },
    WRITES,
  );

  return {
    async getChat(integrationId, chatJid) {
      const [row] = await chatRows({ integrationId, key: chatJid });
      return row ? chatFromRow(row) : null;
    },

    // Several chats on one conversation should not happen; if it does, the latest mapping wins.
    getChatByConversation: (integrationId, conversationId) =>
      readChat({ integration_id: integrationId, conversation_id: conversationId }),

    async putChat(mapping) {
      const columns = chatColumns(mapping);
      const key = { integration_id: mapping.integrationId, chat_jid: mapping.chatJid };
      // Retried only if the row another writer inserted vanished again before we could read it.
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await insertUnlessDuplicate(knex, dialect, t.chatMappings, columns, Object.keys(key))) {
          return chatFromRow(columns);
        }
        const existing = await readChat(key);
        if (existing) return existing;
      }
      throw new Error(`chat mapping ${mapping.chatJid} could not be written or read`);
    },

    async setChatConversation(integrationId, chatJid, conversationId) {
      checkKey("chatJid", chatJid);
      // The port passes no clock here; the wall clock marks when the mapping last changed.
      const changed = await knex(t.chatMappings)
        .where({ integration_id: integrationId, chat_jid: chatJid })
        .update({ conversation_id: conversationId, updated_at: Date.now() });
      return changed > 0;
    },

    // Validated per call (`messageColumns` throws), so a bad mapping fails alone before it joins a batch.
    putMessage: async (mapping) => insertMessages(messageColumns(mapping)),

    async getMessagesByWa(integrationId, waMessageId) {
      return (await messageRows({ integrationId, key: waMessageId })).map(messageFromRow);
    },

    async getMessagesByChatwoot(integrationId, chatwootMessageId) {
      const rows: Row[] = await knex(t.messageMappings)
        .where({ integration_id: integrationId, chatwoot_message_id: chatwootMessageId })
        .orderBy([
          { column: "part", order: "asc" },
          { column: "wa_message_id", order: "asc" },
        ]);
      return rows.map(messageFromRow);
    },
    async lastMessages(integrationId) {
      // One index descent per direction (`<prefix>message_mappings_recent_idx`, migration 0008).
      const newest = async (direction: "inbound" | "outbound") => {
        const row: Row | undefined = await knex(t.messageMappings)
          .select("created_at")
          .where({ integration_id: integrationId, direction })
          .orderBy("created_at", "desc")
          .first();
        return row ? new Date(Number(row.created_at)) : null;
      };
      return { inbound: await newest("inbound"), outbound: await newest("outbound") };
    },

    async setChatContact(integrationId, chatJid, contactId) {
      checkKey("chatJid", chatJid);
      const changed = await knex(t.chatMappings)
        .where({ integration_id: integrationId, chat_jid: chatJid })
        .update({ contact_id: contactId, updated_at: Date.now() });
      return changed > 0;
    },

    async linkIdentity(link) {
      checkKey("lid", link.lid);
      checkKey("jid", link.jid);
      const where = { integration_id: link.integrationId, lid: link.lid };
      const row = { ...where, jid: link.jid, created_at: link.createdAt.getTime() };
      // Retried only if the row another writer inserted vanished again (integration deleted) before we could read it.
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await insertUnlessDuplicate(knex, dialect, t.identityLinks, row, Object.keys(where))) {
          return { ...link, createdAt: new Date(row.created_at) };
        }
        const existing: Row | undefined = await knex(t.identityLinks).where(where).first();
        if (!existing) continue;
        if (String(existing.jid) === link.jid) return identityFromRow(existing);
        // The person changed numbers: the newest link wins (guarded, so a concurrent change is not overwritten blindly).
        const changed = await knex(t.identityLinks)
          .where({ ...where, jid: String(existing.jid) })
          .update({ jid: link.jid, created_at: row.created_at });
        if (changed > 0) return { ...link, createdAt: new Date(row.created_at) };
      }
      throw new Error(`identity link ${link.lid} could not be written or read`);
    },

    async resolveIdentity(integrationId, address) {
      if (address.length > COLUMN_LIMITS.key) return null;
      return identities({ integrationId, key: address });
    },

    // Validated per call (`checkKey` throws), so a bad chat JID fails alone before it joins a batch.
    async recordHistory(integrationId, chatJid, change) {
      checkKey("chatJid", chatJid);
      return writeHistory({ integrationId, chatJid, change });
    },

    async getHistory(integrationId, chatJid) {
      const row: Row | undefined =
        chatJid.length > COLUMN_LIMITS.key
          ? undefined
          : await knex(t.chatHistory).where({ integration_id: integrationId, chat_jid: chatJid }).first();
      const at = row ? Number(row.last_wa_at) : 0;
      return {
        lastRoutedAt: at > 0 ? new Date(at) : null,
        conversationId: row?.conversation_id == null ? null : Number(row.conversation_id),
      };
    },

    async historyProgress(integrationId) {
      const row: Row | undefined = await knex(t.chatHistory)
        .where({ integration_id: integrationId })
        .sum({ queued: "queued", imported: "imported", skipped: "skipped" })
        .first();
      return {
        queued: Number(row?.queued ?? 0),
        imported: Number(row?.imported ?? 0),
        skipped: Number(row?.skipped ?? 0),
      };
    },
  };
}
