import { randomBytes } from "node:crypto";
import knexFactory, { type Knex } from "knex";

/**
 * Real databases for tests: each call makes a fresh PostgreSQL schema or MariaDB/MySQL database, so test
 * files can run in parallel. When the server truly cannot be reached the caller gets `null` after a loud
 * warning, unless `CI_REQUIRE_DB=1`, where that is an error. Servers come from PGHOST/PGPORT/PGUSER/
 * PGPASSWORD/PGDATABASE (default postgres@127.0.0.1:5432/test) and MYSQL_HOST/MYSQL_PORT/MYSQL_USER/
 * MYSQL_PASSWORD (default root@127.0.0.1:3306).
 */
export type DatabaseKind = "postgres" | "mariadb";

export interface TestDatabase {
  kind: DatabaseKind;
  /** The schema (PostgreSQL) or database (MariaDB) of this test. */
  name: string;
  /** A `DATABASE_URL` that lands in it (PostgreSQL: `search_path` in `options`). */
  url: string;
  /** A knex instance on it; the caller destroys it. */
  connect(options?: { poolMax?: number }): Knex;
  /** Drops the schema or database. */
  drop(): Promise<void>;
}

const NETWORK_ERRORS = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EAI_AGAIN",
  "ECONNRESET",
]);

/** True for "no server there" (network errors, connect timeouts), false for anything a server answered. */
export function isUnreachable(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.some(isUnreachable);
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return (
    (typeof code === "string" && NETWORK_ERRORS.has(code)) ||
    error.name === "KnexTimeoutError" ||
    // pg's own connect timeout carries no code.
    (code === undefined && /timeout|terminated/i.test(error.message))
  );
}

const env = process.env;
/** What a test database lets one PostgreSQL statement run (pg's `statement_timeout`, also in `url`). */
const STATEMENT_TIMEOUT_MS = 30_000;
const userPart = (user: string, password: string) =>
  password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}` : encodeURIComponent(user);

function servers() {
  const postgres = {
    host: env.PGHOST ?? "127.0.0.1",
    port: Number(env.PGPORT ?? 5432),
    user: env.PGUSER ?? "postgres",
    password: env.PGPASSWORD ?? "",
    database: env.PGDATABASE ?? "test",
    // A statement of a test never runs for long. One that does (a mutant's claim that recurses without end, a test
    // process killed mid-statement) is stopped by the server instead of burning a core after its client is gone.
    statement_timeout: STATEMENT_TIMEOUT_MS,
  };
  const mariadb = {
    host: env.MYSQL_HOST ?? "127.0.0.1",
    port: Number(env.MYSQL_PORT ?? 3306),
    user: env.MYSQL_USER ?? "root",
    password: env.MYSQL_PASSWORD ?? "",
  };
  return { postgres, mariadb };
}

/** A fresh schema (PostgreSQL) or database (MariaDB) named `<label>_<random>`, or null when unreachable. */
export async function createTestDatabase(kind: DatabaseKind, label: string): Promise<TestDatabase | null> {
  const name = `${label}_${randomBytes(5).toString("hex")}`;
  const { postgres, mariadb } = servers();
  const admin =
    kind === "postgres"
      ? knexFactory({
          client: "pg",
          connection: { ...postgres, connectionTimeoutMillis: 3_000 },
          pool: { min: 0, max: 1 },
          acquireConnectionTimeout: 5_000,
        })
      : knexFactory({
          client: "mysql2",
          connection: { ...mariadb, connectTimeout: 3_000 },
          pool: { min: 0, max: 1 },
          acquireConnectionTimeout: 5_000,
        });
  const where =
    kind === "postgres"
      ? `PostgreSQL at ${postgres.host}:${postgres.port}`
      : `MariaDB at ${mariadb.host}:${mariadb.port}`;
  try {
    if (kind === "postgres") await admin.raw("create schema ??", [name]);
    else await admin.raw("create database ?? character set utf8mb4", [name]);
  } catch (error) {
    await admin.destroy();
    if (!isUnreachable(error) || env.CI_REQUIRE_DB === "1") throw error;
    console.warn(`\n⚠️  SKIPPING tests of "${label}": ${where} is unreachable (${String(error)}).\n`);
    return null;
  }
  await admin.destroy();
  const url =
    kind === "postgres"
      ? `postgres://${userPart(postgres.user, postgres.password)}@${postgres.host}:${postgres.port}/${postgres.database}?options=${encodeURIComponent(`-c search_path=${name} -c statement_timeout=${STATEMENT_TIMEOUT_MS}`)}`
      : `mysql://${userPart(mariadb.user, mariadb.password)}@${mariadb.host}:${mariadb.port}/${name}`;
  return {
    kind,
    name,
    url,
    connect: ({ poolMax = 10 } = {}) =>
      kind === "postgres"
        ? knexFactory({
            client: "pg",
            connection: postgres,
            searchPath: [name],
            pool: { min: 0, max: poolMax },
          })
        : knexFactory({
            client: "mysql2",
            connection: { ...mariadb, database: name },
            pool: { min: 0, max: poolMax },
          }),
    async drop() {
      const dropper =
        kind === "postgres"
          ? knexFactory({ client: "pg", connection: postgres, pool: { min: 0, max: 1 } })
          : knexFactory({ client: "mysql2", connection: mariadb, pool: { min: 0, max: 1 } });
      try {
        if (kind === "postgres") await dropper.raw("drop schema if exists ?? cascade", [name]);
        else await dropper.raw("drop database if exists ??", [name]);
      } finally {
        await dropper.destroy();
      }
    },
  };
}
