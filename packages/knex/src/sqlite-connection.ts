import { cacheStatements, type PreparingConnection } from "./statement-cache.js";

/** The part of a better-sqlite3 `Database` that `tuneSqliteConnection` uses. */
export interface TunableConnection extends PreparingConnection {
  pragma(source: string): unknown;
}

/**
 * Sets a better-sqlite3 connection up as the store wants it for a service; call it in knex's `pool.afterCreate`:
 *
 *   pool: { afterCreate(connection, done) { done(null, tuneSqliteConnection(connection)); } }
 *
 * - `journal_mode = WAL`, `synchronous = NORMAL`: a commit no longer waits for the disk (better-sqlite3 commits on
 *   the event loop), and readers no longer block the writer; about twice the routing rate.
 * - `wal_autocheckpoint = 10000`: checkpoints are meant to run in a worker (`startWalCheckpoints`); this one is the
 *   safety net should the worker stop, high enough not to run while it keeps up.
 * - `cacheStatements`: prepared statements kept for reuse.
 */
export function tuneSqliteConnection<C extends TunableConnection>(connection: C): C {
  connection.pragma("journal_mode = WAL");
  connection.pragma("synchronous = NORMAL");
  connection.pragma("wal_autocheckpoint = 10000");
  return cacheStatements(connection);
}
