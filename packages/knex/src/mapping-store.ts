import type { ChatMapping, MappingStore } from "@ryze/chatwoot-core";
import { chatColumns, chatFromRow, checkKey, messageColumns, messageFromRow, type Row } from "./codec.js";
import type { StoreContext } from "./context.js";
import { insertUnlessDuplicate } from "./dialect.js";

export function createMappingStore({ knex, dialect, tables: t }: StoreContext): MappingStore {
  const readChat = async (where: Row): Promise<ChatMapping | null> => {
    const row: Row | undefined = await knex(t.chatMappings)
      .where(where)
      .orderBy("updated_at", "desc")
      .first();
    return row ? chatFromRow(row) : null;
  };

  return {
    getChat: (integrationId, chatJid) => readChat({ integration_id: integrationId, chat_jid: chatJid }),

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

    putMessage: (mapping) =>
      insertUnlessDuplicate(knex, dialect, t.messageMappings, messageColumns(mapping), [
        "integration_id",
        "wa_message_id",
        "part",
      ]),

    async getMessagesByWa(integrationId, waMessageId) {
      const rows: Row[] = await knex(t.messageMappings)
        .where({ integration_id: integrationId, wa_message_id: waMessageId })
        .orderBy("part", "asc");
      return rows.map(messageFromRow);
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
