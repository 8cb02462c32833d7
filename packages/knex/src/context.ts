import type { Knex } from "knex";
import type { Dialect, TransactionRunner } from "./dialect.js";
import type { ChatwootTableNames } from "./tables.js";

/** What every sub-store shares: the injected knex, its dialect, the table names and the transaction runner. */
export interface StoreContext {
  knex: Knex;
  dialect: Dialect;
  tables: ChatwootTableNames;
  inTransaction: TransactionRunner;
  /** Whether the hot statements go through `prepared.ts` (PostgreSQL, SQLite); `KnexStoreOptions.preparedStatements`. */
  preparedStatements: boolean;
}
