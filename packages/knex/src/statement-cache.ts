/** The part of a better-sqlite3 `Database` that `cacheStatements` wraps. */
export interface PreparingConnection {
  prepare(source: string): unknown;
}

export interface StatementCacheOptions {
  /** Most statements kept per connection, least recently used dropped first. Default 500. */
  size?: number;
}

const DEFAULT_SIZE = 500;

/**
 * Keeps the prepared statements of a better-sqlite3 connection for reuse. knex prepares every query afresh, and
 * compiling the SQL costs about as much as running it for the store's statements (a quarter of the SQLite time of
 * a routed message). Call it in knex's `pool.afterCreate`, where the connection is made:
 *
 *   pool: { afterCreate(connection, done) { cacheStatements(connection); done(null, connection); } }
 *
 * A cached statement is recompiled by SQLite itself when the schema changes. Statements carry the modes set on
 * them, so do not combine it with knex's per-query `safeIntegers` option.
 */
export function cacheStatements<C extends PreparingConnection>(
  connection: C,
  options: StatementCacheOptions = {},
): C {
  const size = options.size ?? DEFAULT_SIZE;
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`cacheStatements: size must be a positive integer, got ${String(size)}`);
  const prepare = connection.prepare.bind(connection);
  const statements = new Map<string, unknown>();
  connection.prepare = (source: string) => {
    const cached = statements.get(source);
    if (cached !== undefined) {
      // Most recently used last: the Map's first key is the one to drop.
      statements.delete(source);
      statements.set(source, cached);
      return cached;
    }
    const statement = prepare(source);
    statements.set(source, statement);
    if (statements.size > size) statements.delete(statements.keys().next().value as string);
    return statement;
  };
  return connection;
}
