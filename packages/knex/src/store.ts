import type { StoragePort } from "@ryze/chatwoot-core";
import type { Knex } from "knex";
import type { StoreContext } from "./context.js";
import { createTransactionRunner, dialectOf } from "./dialect.js";
import { createIntegrationStore } from "./integration-store.js";
import { createLeaseStore } from "./lease-store.js";
import { createMappingStore } from "./mapping-store.js";
import { createOutboxStore } from "./outbox-store.js";
import { chatwootTableNames, DEFAULT_TABLE_PREFIX } from "./tables.js";

export interface KnexStoreOptions {
  /** Prefix of every table (default `chatwoot_`); must match the prefix the migrations ran with. */
  tablePrefix?: string;
  /**
   * Send the hot statements (enqueue, claim, complete, mapping reads) as prepared statements on a connection of
   * the knex pool: named prepared statements on PostgreSQL, kept better-sqlite3 statements on SQLite (default
   * `true`). Set `false` behind a pooler that cannot keep named statements per client connection (PgBouncer in
   * transaction mode before 1.21, or without `max_prepared_statements`). On SQLite the outbox's enqueue, claim and
   * complete run on the connection either way (each is one write transaction); `false` prepares them per call.
   */
  preparedStatements?: boolean;
}

/**
 * The storage ports over an injected knex instance (SQLite through better-sqlite3, PostgreSQL through pg,
 * MySQL/MariaDB through mysql2). The store never creates or closes connections; run `migrate(knex)` (or the
 * `chatwootMigrations()` source) first. For concurrent claimers on PostgreSQL/MySQL give knex a pool with a
 * connection per concurrent caller; SQLite serialises writers and is meant for one process.
 */
export function createKnexStore(knex: Knex, options: KnexStoreOptions = {}): StoragePort {
  const dialect = dialectOf(knex);
  const tables = chatwootTableNames(options.tablePrefix ?? DEFAULT_TABLE_PREFIX);
  const context: StoreContext = {
    knex,
    dialect,
    tables,
    inTransaction: createTransactionRunner(knex, dialect, tables.leases),
    preparedStatements: options.preparedStatements ?? true,
  };
  return {
    integrations: createIntegrationStore(context),
    mappings: createMappingStore(context),
    outbox: createOutboxStore(context),
    leases: createLeaseStore(context),
  };
}
