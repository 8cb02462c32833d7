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
  };
  return {
    integrations: createIntegrationStore(context),
    mappings: createMappingStore(context),
    outbox: createOutboxStore(context),
    leases: createLeaseStore(context),
  };
}
