import { BridgeError } from "@ryze/chatwoot-core";

/** The tables of one store, all named `<tablePrefix><name>`. */
export interface ChatwootTableNames {
  /** One row per integration (instance), with sealed secrets and a compare-and-set `version`. */
  integrations: string;
  /** WhatsApp chat JID → Chatwoot contact, contact-inbox source id and conversation. */
  chatMappings: string;
  /** WhatsApp message id (+ part) ↔ Chatwoot message id. */
  messageMappings: string;
  /** The durable work queue (both directions). */
  outbox: string;
  /** One row per (integration, chat key): the lock that serialises claims and enqueues of one chat. */
  outboxChats: string;
  /** Named leases with a fencing epoch (e.g. realtime subscription ownership). */
  leases: string;
  /** LID ↔ phone JID links, per integration (migration 0005). */
  identityLinks: string;
  /** Per chat: the last routed WhatsApp timestamp and the history-sync counts (migration 0009). */
  chatHistory: string;
  /** knex's migration bookkeeping for these tables (knex adds `<name>_lock`). */
  migrations: string;
}

export const DEFAULT_TABLE_PREFIX = "chatwoot_";

/** Prefixes stay short enough that `<prefix><table>_<index suffix>` fits PostgreSQL's 63-character names. */
const PREFIX = /^(?:[A-Za-z_][A-Za-z0-9_]{0,31})?$/;

/** Table names for a prefix (default `chatwoot_`); throws INVALID_OPTIONS for an unusable prefix. */
export function chatwootTableNames(tablePrefix: string = DEFAULT_TABLE_PREFIX): ChatwootTableNames {
  if (!PREFIX.test(tablePrefix)) {
    throw new BridgeError(
      "INVALID_OPTIONS",
      `invalid options: tablePrefix: must be at most 32 letters, digits or underscores, not starting with a digit (got "${tablePrefix}")`,
    );
  }
  return {
    integrations: `${tablePrefix}integrations`,
    chatMappings: `${tablePrefix}chat_mappings`,
    messageMappings: `${tablePrefix}message_mappings`,
    outbox: `${tablePrefix}outbox`,
    outboxChats: `${tablePrefix}outbox_chats`,
    leases: `${tablePrefix}leases`,
    identityLinks: `${tablePrefix}identity_links`,
    chatHistory: `${tablePrefix}chat_history`,
    migrations: `${tablePrefix}migrations`,
  };
}
