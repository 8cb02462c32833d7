import { randomBytes } from "node:crypto";
import { runStoreConformance, type StoreRaw } from "@ryze/chatwoot-testkit/conformance";
import knex, { type Knex } from "knex";
import { afterAll, describe, expect, it } from "vitest";
import { chatwootMigrations, chatwootTableNames, createKnexStore, migrate } from "./index.js";

// PostgreSQL from PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (default postgres@127.0.0.1:5432/test). The file
// works in its own schema, so it can run next to other test files. Skipped (loudly) when the server cannot be
// reached, unless CI_REQUIRE_DB=1.
const schema = `cw_test_${randomBytes(5).toString("hex")}`;
const connection = {
  host: process.env.PGHOST ?? "127.0.0.1",
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? "postgres",
  password: process.env.PGPASSWORD ?? "",
  database: process.env.PGDATABASE ?? "test",
};
const where = `postgres://${connection.user}@${connection.host}:${connection.port}/${connection.database}`;

const NETWORK_ERRORS = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EAI_AGAIN",
  "ECONNRESET",
]);

/** True for "no server there" (network errors, connect timeouts), false for anything the server answered. */
function isUnreachable(error: unknown): boolean {
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

async function connect(): Promise<Knex | null> {
  const admin = knex({
    client: "pg",
    connection: { ...connection, connectionTimeoutMillis: 3_000 },
    pool: { min: 0, max: 1 },
    acquireConnectionTimeout: 5_000,
  });
  try {
    await admin.raw("create schema ??", [schema]);
  } catch (error) {
    if (!isUnreachable(error) || process.env.CI_REQUIRE_DB === "1") throw error;
    console.warn(`\n⚠️  SKIPPING the PostgreSQL store tests: ${where} is unreachable (${String(error)}).\n`);
    return null;
  } finally {
    await admin.destroy();
  }
  // A pool large enough that every concurrent caller of the conformance suite has its own connection.
  return knex({ client: "pg", connection, searchPath: [schema], pool: { min: 0, max: 12 } });
}

function rawFor(db: Knex, tablePrefix?: string): StoreRaw {
  const { migrations: _migrations, ...tables } = chatwootTableNames(tablePrefix);
  return {
    integrationRow: async (id) => (await db(tables.integrations).where({ id }).first()) ?? null,
    dump: async () =>
      Object.fromEntries(
        await Promise.all(Object.values(tables).map(async (name) => [name, await db(name)])),
      ),
  };
}

async function emptyTables(db: Knex, tablePrefix?: string): Promise<void> {
  const { migrations: _migrations, ...tables } = chatwootTableNames(tablePrefix);
  await db.raw(
    `truncate ${Object.values(tables)
      .map(() => "??")
      .join(", ")}`,
    Object.values(tables),
  );
}

const db = await connect();

if (db) {
  afterAll(async () => {
    await db.raw("drop schema ?? cascade", [schema]);
    await db.destroy();
  });

  await migrate(db);

  runStoreConformance({
    name: `knex (PostgreSQL, schema ${schema})`,
    createStore: () => createKnexStore(db),
    reset: () => emptyTables(db),
    raw: () => rawFor(db),
  });

  describe("knex migrations on PostgreSQL", () => {
    it("a custom prefix migrates through knex.migrate.latest, serves a store and rolls back", async () => {
      const source = chatwootMigrations({ tablePrefix: "cw2_" });
      await db.migrate.latest({ migrationSource: source, tableName: source.tableName });
      expect(await db.schema.hasTable("cw2_outbox")).toBe(true);
      expect(await db.schema.hasTable("cw2_migrations")).toBe(true);

      const store = createKnexStore(db, { tablePrefix: "cw2_" });
      const now = new Date(1_900_000_000_000);
      const { id } = await store.outbox.enqueue(
        { integrationId: "int_p", direction: "inbound", chatKey: "c", dedupeKey: "d", payload: { ok: true } },
        now,
      );
      expect(await store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 1_000, now })).toMatchObject([
        { id, payload: { ok: true } },
      ]);
      expect(await db("cw2_outbox").where({ id }).first()).toMatchObject({
        status: "claimed",
        claimed_by: "w",
      });
      expect(await db("chatwoot_outbox").where({ id }).first()).toBeUndefined();

      await db.migrate.rollback({ migrationSource: source, tableName: source.tableName }, true);
      expect(await db.schema.hasTable("cw2_outbox")).toBe(false);
      expect(await db.schema.hasTable("chatwoot_outbox")).toBe(true);
    });
  });
} else {
  describe.skip(`knex on PostgreSQL (${where} unreachable)`, () => {
    it("runs the storage conformance suite", () => {});
  });
}
