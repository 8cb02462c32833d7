import type { Knex } from "knex";
import { dialectOf } from "./dialect.js";
import { type ChatwootTableNames, chatwootTableNames, DEFAULT_TABLE_PREFIX } from "./tables.js";

/** Longest values of indexed string columns: 191 utf8mb4 characters keep MariaDB/MySQL index keys small. */
export const COLUMN_LIMITS = {
  integrationId: 64,
  key: 191,
  sourceId: 255,
  inboxName: 255,
  baseUrl: 2048,
  chatwootVersion: 64,
} as const;

export interface ChatwootMigrationOptions {
  /** Prefix of every table (default `chatwoot_`). */
  tablePrefix?: string;
  /** knex's bookkeeping table for these migrations (default `<tablePrefix>migrations`). */
  migrationsTableName?: string;
}

interface ChatwootMigration {
  name: string;
  up(knex: Knex, tables: ChatwootTableNames): Promise<void>;
  down(knex: Knex, tables: ChatwootTableNames): Promise<void>;
}

/**
 * MySQL/MariaDB tables use utf8mb4 with a binary, no-pad collation, so identifiers compare exactly as on
 * PostgreSQL and SQLite: case-sensitive, and trailing spaces count.
 */
async function tableOptionsFor(knex: Knex): Promise<(table: Knex.CreateTableBuilder) => void> {
  if (dialectOf(knex) !== "mysql") return () => {};
  const result: unknown = await knex.raw("select version() as version");
  const rows = Array.isArray(result) ? (result[0] as Array<{ version?: unknown }>) : [];
  const collation = /mariadb/i.test(String(rows[0]?.version ?? ""))
    ? "utf8mb4_nopad_bin"
    : "utf8mb4_0900_bin";
  return (table) => {
    table.engine("InnoDB");
    table.charset("utf8mb4");
    table.collate(collation);
  };
}

/**
 * The outbox indexes of the first schema that the open-items index made redundant on SQLite and PostgreSQL, and the
 * chat heads (migration 0010) on MySQL/MariaDB.
 */
const SUPERSEDED_OUTBOX_INDEXES = ["chat_idx", "due_idx", "claim_idx"] as const;

const migrations: ChatwootMigration[] = [
  {
    name: "0001_create_tables",
    async up(knex, t) {
      const options = await tableOptionsFor(knex);
      const { integrationId: idLength, key } = COLUMN_LIMITS;
      // Timestamps are bigint epoch milliseconds everywhere: no time zone or precision differences between
      // databases. JSON is serialised text. Booleans use knex's portable boolean (0/1 on MySQL and SQLite).
      await knex.schema.createTable(t.integrations, (table) => {
        options(table);
        table.string("id", idLength).notNullable();
        table.string("instance", key).notNullable();
        table.string("status", 16).notNullable();
        table.integer("version").notNullable();
        table.string("base_url", COLUMN_LIMITS.baseUrl).notNullable();
        table.bigInteger("account_id").notNullable();
        table.text("api_token").notNullable();
        table.text("webhook_secret").nullable();
        table.bigInteger("inbox_id").nullable();
        table.string("inbox_name", COLUMN_LIMITS.inboxName).notNullable();
        table.bigInteger("chatwoot_user_id").nullable();
        table.string("delivery_mode", 16).notNullable();
        table.boolean("sign_messages").notNullable();
        table.boolean("ignore_groups").notNullable();
        table.boolean("start_as_pending").notNullable();
        table.boolean("reopen_resolved").notNullable();
        table.text("last_error").notNullable();
        table.bigInteger("provisioning_until").nullable();
        table.bigInteger("created_at").notNullable();
        table.bigInteger("updated_at").notNullable();
        table.primary(["id"], `${t.integrations}_pk`);
        table.unique(["instance"], { indexName: `${t.integrations}_instance_uq` });
      });
      await knex.schema.createTable(t.chatMappings, (table) => {
        options(table);
        table.string("integration_id", idLength).notNullable();
        table.string("chat_jid", key).notNullable();
        table.bigInteger("contact_id").notNullable();
        table.string("source_id", COLUMN_LIMITS.sourceId).notNullable();
        table.bigInteger("conversation_id").nullable();
        table.bigInteger("updated_at").notNullable();
        table.primary(["integration_id", "chat_jid"], `${t.chatMappings}_pk`);
        table.index(["integration_id", "conversation_id"], `${t.chatMappings}_conv_idx`);
      });
      await knex.schema.createTable(t.messageMappings, (table) => {
        options(table);
        table.string("integration_id", idLength).notNullable();
        table.string("wa_message_id", key).notNullable();
        table.integer("part").notNullable();
        table.bigInteger("chatwoot_message_id").notNullable();
        table.bigInteger("conversation_id").notNullable();
        table.string("direction", 16).notNullable();
        table.bigInteger("created_at").notNullable();
        table.primary(["integration_id", "wa_message_id", "part"], `${t.messageMappings}_pk`);
        table.index(["integration_id", "chatwoot_message_id"], `${t.messageMappings}_cw_idx`);
      });
      await knex.schema.createTable(t.outbox, (table) => {
        options(table);
        // `seq` is the enqueue order (FIFO per chat key); `id` is the public item id.
        table.bigIncrements("seq", { primaryKey: true });
        table.string("id", idLength).notNullable();
        table.string("integration_id", idLength).notNullable();
        table.string("direction", 16).notNullable();
        table.string("chat_key", key).notNullable();
        table.string("dedupe_key", key).notNullable();
        // longtext on MySQL: inline media (base64) can be tens of MiB (raise max_allowed_packet accordingly).
        table.text("payload", "longtext").notNullable();
        table.string("status", 16).notNullable();
        table.integer("attempts").notNullable();
        table.bigInteger("available_at").notNullable();
        table.string("claimed_by", key).nullable();
        table.bigInteger("claim_until").nullable();
        table.text("last_error").notNullable();
        table.bigInteger("created_at").notNullable();
        table.unique(["id"], { indexName: `${t.outbox}_id_uq` });
        table.unique(["integration_id", "dedupe_key"], { indexName: `${t.outbox}_dedupe_uq` });
        // Head of a chat key and "older unfinished item" look-ups, without walking a chat's done history.
        table.index(["integration_id", "chat_key", "status", "seq"], `${t.outbox}_chat_idx`);
        // Due pending items and expired claims.
        table.index(["status", "available_at"], `${t.outbox}_due_idx`);
        table.index(["status", "claim_until"], `${t.outbox}_claim_idx`);
      });
      await knex.schema.createTable(t.outboxChats, (table) => {
        options(table);
        table.string("integration_id", idLength).notNullable();
        table.string("chat_key", key).notNullable();
        table.primary(["integration_id", "chat_key"], `${t.outboxChats}_pk`);
      });
      await knex.schema.createTable(t.leases, (table) => {
        options(table);
        table.string("name", key).notNullable();
        // Null once released; the row stays so the epoch keeps increasing.
        table.string("owner", key).nullable();
        table.bigInteger("epoch").notNullable();
        table.bigInteger("expires_at").notNullable();
        table.primary(["name"], `${t.leases}_pk`);
      });
    },
    async down(knex, t) {
      for (const table of [
        t.leases,
        t.outboxChats,
        t.outbox,
        t.messageMappings,
        t.chatMappings,
        t.integrations,
      ]) {
        await knex.schema.dropTableIfExists(table);
      }
    },
  },
  {
    name: "0002_outbox_open_items_index",
    // The unfinished items alone, by chat: a claim finds every chat's head (its oldest unfinished item) by reading
    // this small index, however many finished items the table holds and whether or not the database has gathered
    // statistics yet. MySQL/MariaDB have no partial indexes; their claims walk the due index.
    async up(knex, t) {
      if (dialectOf(knex) === "mysql") return;
      await knex.raw(
        "create index ?? on ?? (integration_id, chat_key, seq, status) where status in ('pending', 'claimed')",
        [`${t.outbox}_open_idx`, t.outbox],
      );
    },
    async down(knex, t) {
      if (dialectOf(knex) === "mysql") return;
      await knex.raw("drop index if exists ??", [`${t.outbox}_open_idx`]);
    },
  },
  {
    name: "0003_outbox_indexes_superseded_by_open_index",
    // On SQLite and PostgreSQL every outbox read is served by the open-items index, the primary key, `id` or the
    // dedupe key (whose first column is the integration). The chat, due and claim indexes only cost writes there:
    // each status change rewrote an entry in all three. MySQL/MariaDB keep them, their claims walk them.
    async up(knex, t) {
      if (dialectOf(knex) === "mysql") return;
      for (const name of SUPERSEDED_OUTBOX_INDEXES)
        await knex.raw("drop index if exists ??", [`${t.outbox}_${name}`]);
    },
    async down(knex, t) {
      if (dialectOf(knex) === "mysql") return;
      await knex.schema.alterTable(t.outbox, (table) => {
        table.index(["integration_id", "chat_key", "status", "seq"], `${t.outbox}_chat_idx`);
        table.index(["status", "available_at"], `${t.outbox}_due_idx`);
        table.index(["status", "claim_until"], `${t.outbox}_claim_idx`);
      });
    },
  },
  {
    name: "0004_integrations_signing_secret_and_chatwoot_version",
    // Chatwoot 4.13 signs API-inbox webhooks with the inbox's `secret`: activation reads it (sealed like the API
    // token) together with Chatwoot's version (`GET /api`). Both nullable: rows of earlier activations have neither
    // until they are re-activated.
    async up(knex, t) {
      await knex.schema.alterTable(t.integrations, (table) => {
        table.text("signing_secret").nullable();
        table.string("chatwoot_version", COLUMN_LIMITS.chatwootVersion).nullable();
      });
    },
    async down(knex, t) {
      await knex.schema.alterTable(t.integrations, (table) => {
        table.dropColumn("chatwoot_version");
        table.dropColumn("signing_secret");
      });
    },
  },
  {
    name: "0005_identity_links",
    // One person, one chat: a LID and the phone JID WhatsApp linked it to, per integration (the latest phone JID of a
    // LID wins). Looked up as either, so the phone JID is indexed too.
    async up(knex, t) {
      const options = await tableOptionsFor(knex);
      const { integrationId: idLength, key } = COLUMN_LIMITS;
      await knex.schema.createTable(t.identityLinks, (table) => {
        options(table);
        table.string("integration_id", idLength).notNullable();
        table.string("lid", key).notNullable();
        table.string("jid", key).notNullable();
        table.bigInteger("created_at").notNullable();
        table.primary(["integration_id", "lid"], `${t.identityLinks}_pk`);
        table.index(["integration_id", "jid"], `${t.identityLinks}_jid_idx`);
      });
    },
    async down(knex, t) {
      await knex.schema.dropTableIfExists(t.identityLinks);
    },
  },
  {
    name: "0006_outbox_retention_index",
    // Retention deletes finished items oldest first, a small batch at a time: `(status, created_at)` finds each batch
    // by reading only its own index entries, on all three databases, however large the table (and the count of the
    // dead letters for the metrics).
    async up(knex, t) {
      await knex.schema.alterTable(t.outbox, (table) => {
        table.index(["status", "created_at"], `${t.outbox}_retention_idx`);
      });
    },
    async down(knex, t) {
      await knex.schema.alterTable(t.outbox, (table) => {
        table.dropIndex([], `${t.outbox}_retention_idx`);
      });
    },
  },
  {
    name: "0008_status_indexes",
    // The status route and page: the newest message mapping of each direction of an integration is one index descent,
    // and its dead letters (newest first, paged) are read without walking its finished items. SQLite and PostgreSQL
    // index the dead letters alone (partial); MySQL/MariaDB have no partial indexes.
    async up(knex, t) {
      await knex.schema.alterTable(t.messageMappings, (table) => {
        table.index(["integration_id", "direction", "created_at"], `${t.messageMappings}_recent_idx`);
      });
      if (dialectOf(knex) === "mysql") {
        await knex.schema.alterTable(t.outbox, (table) => {
          table.index(["integration_id", "status", "seq"], `${t.outbox}_dead_idx`);
        });
        return;
      }
      await knex.raw("create index ?? on ?? (integration_id, seq) where status = 'dead'", [
        `${t.outbox}_dead_idx`,
        t.outbox,
      ]);
    },
    async down(knex, t) {
      await knex.schema.alterTable(t.outbox, (table) => {
        table.dropIndex([], `${t.outbox}_dead_idx`);
      });
      await knex.schema.alterTable(t.messageMappings, (table) => {
        table.dropIndex([], `${t.messageMappings}_recent_idx`);
      });
    },
  },
  {
    name: "0009_chat_history",
    // History without holes (`docs/history.md`): per chat, the WhatsApp timestamp (ms) of the newest routed message,
    // which bounds the gap a history sync fills; the resolved conversation older history is imported into; and the
    // history messages queued, imported and skipped.
    async up(knex, t) {
      const options = await tableOptionsFor(knex);
      const { integrationId: idLength, key } = COLUMN_LIMITS;
      await knex.schema.createTable(t.chatHistory, (table) => {
        options(table);
        table.string("integration_id", idLength).notNullable();
        table.string("chat_jid", key).notNullable();
        table.bigInteger("last_wa_at").notNullable().defaultTo(0);
        table.bigInteger("conversation_id").nullable();
        table.integer("queued").notNullable().defaultTo(0);
        table.integer("imported").notNullable().defaultTo(0);
        table.integer("skipped").notNullable().defaultTo(0);
        table.primary(["integration_id", "chat_jid"], `${t.chatHistory}_pk`);
      });
      // The activation option `importHistoryDays` (0: older history is not imported).
      await knex.schema.alterTable(t.integrations, (table) => {
        table.integer("import_history_days").notNullable().defaultTo(0);
      });
    },
    async down(knex, t) {
      await knex.schema.alterTable(t.integrations, (table) => {
        table.dropColumn("import_history_days");
      });
      await knex.schema.dropTableIfExists(t.chatHistory);
    },
  },
  {
    name: "0010_outbox_chat_heads",
    // Each chat row keeps where its head (oldest unfinished item) is and when it is due, so a claim reads the due
    // chats in one range of `<prefix>outbox_chats_due_idx` instead of finding every chat's head (`outbox-store.ts`,
    // "Claim design"). `head_seq`: every item of the chat below it is finished (where
    // the search for the head starts). `head_due`: no later than when the head may be claimed (0: look now), null when
    // the chat has no unfinished item. Chats with unfinished items at the time of the migration are due at once: the
    // first claims find their heads. On SQLite, whose enqueues wrote no chat rows before, those chats get one.
    async up(knex, t) {
      await knex.schema.alterTable(t.outboxChats, (table) => {
        table.bigInteger("head_seq").notNullable().defaultTo(0);
        table.bigInteger("head_due").nullable();
      });
      if (dialectOf(knex) === "mysql") {
        await knex.schema.alterTable(t.outboxChats, (table) => {
          table.index(["head_due"], `${t.outboxChats}_due_idx`);
        });
        // Where a head is looked for: the chat's items from `head_seq` on, in order. The chat, due and claim indexes
        // served the claims that walked the items; they only cost writes now (each holds `status`, so every claim
        // and complete rewrote an entry in all three). Counts and retention read the dead and retention indexes.
        await knex.schema.alterTable(t.outbox, (table) => {
          table.index(["integration_id", "chat_key", "seq"], `${t.outbox}_chat_seq_idx`);
          for (const name of SUPERSEDED_OUTBOX_INDEXES) table.dropIndex([], `${t.outbox}_${name}`);
        });
      } else {
        await knex.raw("create index ?? on ?? (head_due) where head_due is not null", [
          `${t.outboxChats}_due_idx`,
          t.outboxChats,
        ]);
      }
      if (dialectOf(knex) === "sqlite")
        await knex.raw(
          "insert into ?? (integration_id, chat_key) select distinct integration_id, chat_key from ?? " +
            "where status in ('pending', 'claimed') and true on conflict do nothing",
          [t.outboxChats, t.outbox],
        );
      await knex.raw(
        "update ?? set ?? = 0 where exists (select 1 from ?? as o where o.integration_id = ??.integration_id and " +
          "o.chat_key = ??.chat_key and o.status in ('pending', 'claimed'))",
        [t.outboxChats, "head_due", t.outbox, t.outboxChats, t.outboxChats],
      );
    },
    async down(knex, t) {
      if (dialectOf(knex) === "mysql") {
        await knex.schema.alterTable(t.outbox, (table) => {
          table.index(["integration_id", "chat_key", "status", "seq"], `${t.outbox}_chat_idx`);
          table.index(["status", "available_at"], `${t.outbox}_due_idx`);
          table.index(["status", "claim_until"], `${t.outbox}_claim_idx`);
          table.dropIndex([], `${t.outbox}_chat_seq_idx`);
        });
      }
      await knex.schema.alterTable(t.outboxChats, (table) => {
        table.dropIndex([], `${t.outboxChats}_due_idx`);
      });
      await knex.schema.alterTable(t.outboxChats, (table) => {
        table.dropColumn("head_due");
        table.dropColumn("head_seq");
      });
    },
  },
];

/** A knex migration source that also names the bookkeeping table it should be run with. */
export interface ChatwootMigrationSource extends Knex.MigrationSource<ChatwootMigration> {
  /** Pass as `tableName` to `knex.migrate.*` so these migrations keep their own bookkeeping table. */
  readonly tableName: string;
}

/**
 * The schema as a knex migration source:
 * `knex.migrate.latest({ migrationSource: source, tableName: source.tableName })` (and `rollback`, `list`, ...).
 * Keep `tableName`: sharing knex's default `knex_migrations` with the host's own migrations makes knex
 * report the other side's migrations as missing.
 */
export function chatwootMigrations(options: ChatwootMigrationOptions = {}): ChatwootMigrationSource {
  const tables = chatwootTableNames(options.tablePrefix ?? DEFAULT_TABLE_PREFIX);
  return {
    tableName: options.migrationsTableName ?? tables.migrations,
    async getMigrations() {
      return migrations;
    },
    getMigrationName(migration) {
      return migration.name;
    },
    async getMigration(migration) {
      return {
        up: (knex: Knex) => migration.up(knex, tables),
        down: (knex: Knex) => migration.down(knex, tables),
      };
    },
  };
}

/** Brings the tables up to date (`migrate.latest` with the chatwoot migration source and its own table). */
export async function migrate(knex: Knex, options: ChatwootMigrationOptions = {}): Promise<void> {
  const migrationSource = chatwootMigrations(options);
  await knex.migrate.latest({ migrationSource, tableName: migrationSource.tableName });
}

/** Undoes every chatwoot migration (drops the tables; the data is lost). */
export async function rollbackMigrations(knex: Knex, options: ChatwootMigrationOptions = {}): Promise<void> {
  const migrationSource = chatwootMigrations(options);
  await knex.migrate.rollback({ migrationSource, tableName: migrationSource.tableName }, true);
}
