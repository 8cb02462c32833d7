import type { ChatMapping, MappingStore } from "@ryze/chatwoot-core";
import { batched, firstIndexes, groupBy, WRITES } from "./batch.js";
import { chatColumns, chatFromRow, checkKey, messageColumns, messageFromRow, type Row } from "./codec.js";
import type { StoreContext } from "./context.js";
import { insertUnlessDuplicate } from "./dialect.js";

interface Keyed {
  integrationId: string;
  key: string;
}

const MESSAGE_KEY = ["integration_id", "wa_message_id", "part"];
const messageKey = (row: Row) =>
  `${String(row.integration_id)}\u0000${String(row.wa_message_id)}\u0000${String(row.part)}`;

export function createMappingStore({ knex, dialect, tables: t }: StoreContext): MappingStore {
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
  const readByKey = (table: string, column: string, order: { column: string; direction: "asc" | "desc" }) =>
    batched(async (wanted: Keyed[]): Promise<Row[][]> => {
      const answers: Row[][] = wanted.map(() => []);
      for (const [integrationId, group] of groupBy(wanted, (entry) => entry.integrationId)) {
        const keys = [...new Set(group.map(({ item }) => item.key))];
        const rows: Row[] = await knex(table)
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
    if (dialect === "mysql" || rows.length === 1) {
      const inserted: boolean[] = [];
      for (const row of rows)
        inserted.push(await insertUnlessDuplicate(knex, dialect, t.messageMappings, row, MESSAGE_KEY));
      return inserted;
    }
    const first = firstIndexes(rows, messageKey);
    const inserted: Row[] = await knex(t.messageMappings)
      .insert(rows.filter((_, index) => first[index] === index))
      .onConflict(MESSAGE_KEY)
      .ignore()
      .returning(MESSAGE_KEY);
    const stored = new Set(inserted.map(messageKey));
    return rows.map((row, index) => first[index] === index && stored.has(messageKey(row)));
  }, WRITES);

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
  };
}
