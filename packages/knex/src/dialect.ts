import type { Knex } from "knex";

export type Dialect = "postgresql" | "mysql" | "sqlite";

/** The database behind a knex instance; only the three supported ones are accepted. */
export function dialectOf(knex: Knex): Dialect {
  const name = knex.client.dialect;
  if (name === "postgresql") return "postgresql";
  // knex's `mysql` and `mysql2` clients both report the `mysql` dialect (MariaDB included).
  if (name === "mysql") return "mysql";
  if (name === "sqlite3") return "sqlite";
  throw new Error(
    `@ryze/chatwoot-knex supports SQLite, PostgreSQL and MySQL/MariaDB, not the "${name}" dialect`,
  );
}

function errorField(error: unknown, field: "code" | "errno"): unknown {
  return typeof error === "object" && error !== null ? (error as Record<string, unknown>)[field] : undefined;
}

/** A unique or primary key violation, as each driver reports it. */
export function isUniqueViolation(error: unknown): boolean {
  const code = errorField(error, "code");
  return (
    code === "23505" || // PostgreSQL unique_violation
    code === "ER_DUP_ENTRY" ||
    errorField(error, "errno") === 1062 ||
    code === "SQLITE_CONSTRAINT_UNIQUE" ||
    code === "SQLITE_CONSTRAINT_PRIMARYKEY"
  );
}

/** A conflict the database resolved by aborting us; the whole transaction can simply run again. */
export function isTransientConflict(error: unknown): boolean {
  const code = errorField(error, "code");
  return (
    code === "40P01" || code === "40001" || code === "ER_LOCK_DEADLOCK" || errorField(error, "errno") === 1213
  );
}

/**
 * Inserts one row; resolves `false` instead of throwing when a unique key (on `conflictColumns`) already
 * holds it. PostgreSQL uses `ON CONFLICT DO NOTHING`, because a failed statement would abort the enclosing
 * transaction; MySQL and SQLite only roll back the failed statement, so the duplicate error is caught.
 * (MySQL's `INSERT IGNORE` is avoided: it also turns truncation and other errors into warnings.)
 */
export async function insertUnlessDuplicate(
  db: Knex,
  dialect: Dialect,
  table: string,
  row: Record<string, unknown>,
  conflictColumns: string[],
): Promise<boolean> {
  if (dialect === "postgresql") {
    const inserted: unknown[] = await db(table)
      .insert(row)
      .onConflict(conflictColumns)
      .ignore()
      .returning(conflictColumns);
    return inserted.length > 0;
  }
  try {
    await db(table).insert(row);
    return true;
  } catch (error) {
    if (isUniqueViolation(error)) return false;
    throw error;
  }
}

const MAX_ATTEMPTS = 5;

/**
 * Runs `work` in a transaction, again when the database aborted it for a deadlock or serialisation conflict
 * (`work` must be safe to repeat: every caller re-reads what it decides on).
 * - MySQL/MariaDB: READ COMMITTED, so every statement sees the latest commits (the REPEATABLE READ default
 *   would keep reading the snapshot of the first statement) and InnoDB takes no gap locks.
 * - SQLite: knex issues a plain (deferred) `BEGIN` and cannot say `BEGIN IMMEDIATE`; the first statement is a
 *   no-op write that takes the database write lock at once, which is what `BEGIN IMMEDIATE` would do. Another
 *   connection can then never interleave between our reads and writes.
 */
export function createTransactionRunner(knex: Knex, dialect: Dialect, writeLockTable: string) {
  const config: Knex.TransactionConfig = dialect === "mysql" ? { isolationLevel: "read committed" } : {};
  return async function inTransaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await knex.transaction(async (trx) => {
          if (dialect === "sqlite") await trx.raw("delete from ?? where 1 = 0", [writeLockTable]);
          return work(trx);
        }, config);
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS || !isTransientConflict(error)) throw error;
      }
    }
  };
}

export type TransactionRunner = ReturnType<typeof createTransactionRunner>;
