import { createHash } from "node:crypto";
import type { Knex } from "knex";
import type { Row } from "./codec.js";

/** The part of a node-postgres `Client` used here: a query config with a `name` is a named prepared statement. */
interface PgClient {
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<{ rows: Row[] }>;
}

/** The part of a better-sqlite3 `Database` used here. */
interface SqliteConnection {
  readonly inTransaction: boolean;
  prepare(source: string): {
    reader: boolean;
    all(...values: unknown[]): Row[];
    run(...values: unknown[]): unknown;
  };
}

const names = new Map<string, string>();
/** A statement's name: a digest of its text, the same on every connection. */
function nameOf(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `cw_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`;
    names.set(text, name);
  }
  return name;
}

/**
 * Runs one statement as a prepared statement and answers its rows (none for a statement that returns none). The
 * text inlines no values: `$1`, `$2`, … on PostgreSQL, `?` on SQLite.
 */
export type PreparedQuery = (text: string, values: unknown[]) => Promise<Row[]>;

/**
 * PostgreSQL: the store's hot statements (enqueue, claim, complete, mapping reads) as named prepared statements,
 * on a connection of the knex instance's own pool (the host's pool, its `searchPath` and its limits).
 *
 * knex sends every statement unnamed, so PostgreSQL parses and plans it on every call; a named statement is parsed
 * once per connection (node-postgres remembers which names a connection has prepared and then sends only Bind and
 * Execute). The name is a digest of the text, so the same text always has the same name, on every connection.
 * Statements whose text varies with their input (an `IN` list per batch size) would fill the server's memory with
 * one-off plans: only texts that stay the same (arrays bound as one parameter) are sent this way.
 *
 * They are announced like knex's own (`query`, then `query-response` or `query-error` on the knex instance), so a
 * host's query logging still sees them; their errors are the driver's, with the same `code`s.
 */
export function createPreparedQuery(knex: Knex): PreparedQuery {
  if (knex.client.dialect === "sqlite3") return createSqliteStatements(knex).query;
  return (text, values) =>
    announced(knex, text, values, async () => {
      const connection = (await knex.client.acquireConnection()) as PgClient;
      try {
        return (await connection.query({ name: nameOf(text), text, values })).rows;
      } finally {
        await knex.client.releaseConnection(connection);
      }
    });
}

/** Runs `work` in one transaction whose statements are prepared ones (`PreparedQuery`). */
export type PreparedTransaction = <T>(work: (query: PreparedQuery) => Promise<T>) => Promise<T>;

/**
 * PostgreSQL: a READ COMMITTED transaction (whatever the server's default) on one connection of the knex pool, its
 * statements named prepared statements as `createPreparedQuery`'s. Rolled back when `work` throws.
 */
export function createPreparedTransaction(knex: Knex): PreparedTransaction {
  return async (work) => {
    const connection = (await knex.client.acquireConnection()) as PgClient;
    const plain = (text: string) =>
      announced(knex, text, [], async () => (await connection.query({ text })).rows);
    try {
      await plain("begin isolation level read committed");
      let result: Awaited<ReturnType<typeof work>>;
      try {
        result = await work((text, values) =>
          announced(
            knex,
            text,
            values,
            async () => (await connection.query({ name: nameOf(text), text, values })).rows,
          ),
        );
      } catch (error) {
        // The statement's error is the one to report; a connection that cannot roll back is broken anyway.
        await plain("rollback").catch(() => {});
        throw error;
      }
      await plain("commit");
      return result;
    } finally {
      await knex.client.releaseConnection(connection);
    }
  };
}

let querySequence = 0;

/**
 * Announces one statement as knex announces its own (`query` on the knex instance now, then `query-response` or
 * `query-error` through the answer's `done` or `failed`).
 */
function announce(knex: Knex, sql: string, bindings: unknown[]) {
  const query = {
    __knexQueryUid: `cw-prepared-${++querySequence}`,
    method: "raw",
    sql,
    bindings,
    options: {},
  };
  knex.client.emit("query", query);
  return {
    done(rows: Row[]): Row[] {
      knex.client.emit("query-response", rows, query);
      return rows;
    },
    failed(error: unknown): unknown {
      knex.client.emit("query-error", error, query);
      return error;
    },
  };
}

/** Runs `run` between the events knex emits around a query of its own (`query`, `query-response`/`query-error`). */
async function announced(knex: Knex, sql: string, bindings: unknown[], run: () => Promise<Row[]>) {
  const statement = announce(knex, sql, bindings);
  try {
    return statement.done(await run());
  } catch (error) {
    throw statement.failed(error);
  }
}

/** Turns knex-style `?` value placeholders into `$1`, `$2`, … (the text must contain no other `?`). */
export function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

const SQLITE_CACHE_SIZE = 200;

/** Runs one statement on the SQLite connection a `SqliteStatements.transaction` holds, synchronously. */
export type SqliteRun = (text: string, values: unknown[]) => Row[];

/** SQLite: statements straight on the connection of knex's pool (`createSqliteStatements`). */
export interface SqliteStatements {
  /** One statement, atomic on its own. */
  query: PreparedQuery;
  /**
   * `work` in one write transaction (`BEGIN IMMEDIATE`: the database's write lock taken first, waiting up to the
   * connection's busy timeout) whose statements all run synchronously, so nothing else, of this process or another,
   * runs in between; rolled back when `work` throws.
   */
  transaction<T>(work: (run: SqliteRun) => T): Promise<T>;
}

/**
 * SQLite (better-sqlite3): statements straight on the connection of knex's pool, announced as knex's own. With
 * `keep`, each is prepared once per connection and kept (the most recently used 200): knex's query builder, its pool
 * bookkeeping and its re-preparing every statement cost more of the routing's CPU than SQLite's own work on these
 * statements. Without, each call prepares its statement again (`preparedStatements: false`).
 */
export function createSqliteStatements(knex: Knex, keep = true): SqliteStatements {
  const caches = new WeakMap<object, Map<string, ReturnType<SqliteConnection["prepare"]>>>();
  const statementOf = (connection: SqliteConnection, text: string) => {
    if (!keep) return connection.prepare(text);
    let cache = caches.get(connection);
    if (!cache) {
      cache = new Map();
      caches.set(connection, cache);
    }
    let statement = cache.get(text);
    if (statement) cache.delete(text);
    else statement = connection.prepare(text);
    cache.set(text, statement);
    if (cache.size > SQLITE_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    return statement;
  };
  const runOn =
    (connection: SqliteConnection): SqliteRun =>
    (text, values) => {
      const announcement = announce(knex, text, values);
      try {
        const statement = statementOf(connection, text);
        if (statement.reader) return announcement.done(statement.all(...values));
        statement.run(...values);
        return announcement.done([]);
      } catch (error) {
        throw announcement.failed(error);
      }
    };
  async function withConnection<T>(work: (run: SqliteRun, connection: SqliteConnection) => T): Promise<T> {
    const connection = (await knex.client.acquireConnection()) as SqliteConnection;
    try {
      return work(runOn(connection), connection);
    } finally {
      await knex.client.releaseConnection(connection);
    }
  }
  return {
    query: (text, values) => withConnection((run) => run(text, values)),
    transaction: (work) =>
      withConnection((run, connection) => {
        run("begin immediate", []);
        let result: ReturnType<typeof work>;
        try {
          result = work(run);
        } catch (error) {
          // SQLite may have rolled back already (some errors end the transaction); the statement's error is the one
          // to report.
          if (connection.inTransaction) {
            try {
              run("rollback", []);
            } catch {}
          }
          throw error;
        }
        run("commit", []);
        return result;
      }),
  };
}
