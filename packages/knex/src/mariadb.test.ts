import { randomBytes } from "node:crypto";
import { runStoreConformance, type StoreRaw } from "@ryze/chatwoot-testkit/conformance";
import knex, { type Knex } from "knex";
import { afterAll, describe, expect, it } from "vitest";
import { chatwootMigrations, chatwootTableNames, createKnexStore, migrate } from "./index.js";

// MariaDB/MySQL from MYSQL_HOST/MYSQL_PORT/MYSQL_USER/MYSQL_PASSWORD (default root@127.0.0.1:3306, no password).
// The file creates its own database and drops it afterwards, so it can run next to other test files. Skipped
// (loudly) when the server cannot be reached, unless CI_REQUIRE_DB=1.
const database = `cw_test_${randomBytes(5).toString("hex")}`;
const connection = {
  host: process.env.MYSQL_HOST ?? "127.0.0.1",
  port: Number(process.env.MYSQL_PORT ?? 3306),
  user: process.env.MYSQL_USER ?? "root",
  password: process.env.MYSQL_PASSWORD ?? "",
};
const where = `mysql://${connection.user}@${connection.host}:${connection.port}`;

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
  return (typeof code === "string" && NETWORK_ERRORS.has(code)) || error.name === "KnexTimeoutError";
}

async function connect(): Promise<Knex | null> {
  const admin = knex({
    client: "mysql2",
    connection: { ...connection, connectTimeout: 3_000 },
    pool: { min: 0, max: 1 },
    acquireConnectionTimeout: 5_000,
  });
  try {
    await admin.raw("create database ?? character set utf8mb4", [database]);
  } catch (error) {
    if (!isUnreachable(error) || process.env.CI_REQUIRE_DB === "1") throw error;
    console.warn(
      `\n⚠️  SKIPPING the MariaDB/MySQL store tests: ${where} is unreachable (${String(error)}).\n`,
    );
    return null;
  } finally {
    await admin.destroy();
  }
  // A pool large enough that every concurrent caller of the conformance suite has its own connection.
  return knex({ client: "mysql2", connection: { ...connection, database }, pool: { min: 0, max: 12 } });
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
  for (const table of Object.values(tables)) await db(table).delete();
}

const db = await connect();

if (db) {
  afterAll(async () => {
    await db.raw("drop database ??", [database]);
    await db.destroy();
  });

  await migrate(db);

  runStoreConformance({
    name: `knex (MariaDB/MySQL, database ${database})`,
    createStore: () => createKnexStore(db),
    reset: () => emptyTables(db),
    raw: () => rawFor(db),
  });

  describe("knex migrations on MariaDB/MySQL", () => {
    it("a custom prefix migrates through knex.migrate.latest, serves a store and rolls back", async () => {
      const source = chatwootMigrations({ tablePrefix: "cw2_" });
      await db.migrate.latest({ migrationSource: source, tableName: source.tableName });
      expect(await db.schema.hasTable("cw2_outbox")).toBe(true);
      expect(await db.schema.hasTable("cw2_migrations")).toBe(true);

      const store = createKnexStore(db, { tablePrefix: "cw2_" });
      const now = new Date(1_900_000_000_000);
      const { id } = await store.outbox.enqueue(
        { integrationId: "int_m", direction: "inbound", chatKey: "c", dedupeKey: "d", payload: { ok: true } },
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

    it("tables use utf8mb4 with a binary no-pad collation", async () => {
      const [rows] = (await db.raw(
        "select table_name as name, table_collation as collation from information_schema.tables where table_schema = ?",
        [database],
      )) as [Array<{ name: string; collation: string }>];
      const chatwoot = rows.filter(
        (row) =>
          row.name.startsWith("chatwoot_") &&
          row.name !== "chatwoot_migrations" &&
          !row.name.endsWith("_lock"),
      );
      expect(chatwoot).toHaveLength(6);
      for (const row of chatwoot) expect(row.collation).toMatch(/^utf8mb4_(nopad_bin|0900_bin)$/);
    });
  });
} else {
  describe.skip(`knex on MariaDB/MySQL (${where} unreachable)`, () => {
    it("runs the storage conformance suite", () => {});
  });
}
