export {
  type ChatwootMigrationOptions,
  type ChatwootMigrationSource,
  chatwootMigrations,
  migrate,
  rollbackMigrations,
} from "./migrations.js";
export { type TunableConnection, tuneSqliteConnection } from "./sqlite-connection.js";
export {
  cacheStatements,
  type PreparingConnection,
  type StatementCacheOptions,
} from "./statement-cache.js";
export { createKnexStore, type KnexStoreOptions } from "./store.js";
export { type ChatwootTableNames, chatwootTableNames, DEFAULT_TABLE_PREFIX } from "./tables.js";
export { startWalCheckpoints, type WalCheckpointOptions, type WalCheckpoints } from "./wal-checkpoints.js";
