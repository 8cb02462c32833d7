import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runStoreConformance, type StoreRaw } from "@ryze/chatwoot-testkit/conformance";
import knex, { type Knex } from "knex";
import { afterAll, describe, expect, it } from "vitest";
import { chatwootMigrations, chatwootTableNames, createKnexStore, migrate } from "./index.js";

const directory = mkdtempSync(join(tmpdir(), "chatwoot-knex-"));
const db = knex({
  client: "better-sqlite3",
  connection: { filename: join(directory, "store.db") },
  useNullAsDefault: true,
});

afterAll(async () => {
  await db.destroy();
  rmSync(directory, { recursive: true, force: true });
});

/** Reads what the store wrote with plain SQL. */
function rawFor(connection: Knex, tablePrefix?: string): StoreRaw {
  const { migrations: _migrations, ...tables } = chatwootTableNames(tablePrefix);
  return {
    integrationRow: async (id) => (await connection(tables.integrations).where({ id }).first()) ?? null,
    dump: async () =>
      Object.fromEntries(
        await Promise.all(Object.values(tables).map(async (name) => [name, await connection(name)])),
      ),
  };
}

async function emptyTables(connection: Knex, tablePrefix?: string): Promise<void> {
  const { migrations: _migrations, ...tables } = chatwootTableNames(tablePrefix);
  for (const table of Object.values(tables)) await connection(table).delete();
}

await migrate(db);

runStoreConformance({
  name: "knex (SQLite, better-sqlite3)",
  createStore: () => createKnexStore(db),
  reset: () => emptyTables(db),
  raw: () => rawFor(db),
});

// A second prefix in the same database, migrated through knex's own migrator with the exported source.
const source = chatwootMigrations({ tablePrefix: "cw2_" });
await db.migrate.latest({ migrationSource: source, tableName: source.tableName });

runStoreConformance({
  name: "knex (SQLite, prefix cw2_)",
  createStore: () => createKnexStore(db, { tablePrefix: "cw2_" }),
  reset: () => emptyTables(db, "cw2_"),
  raw: () => rawFor(db, "cw2_"),
});

describe("knex migrations on SQLite", () => {
  it("run through knex.migrate with their own bookkeeping table, and roll back", async () => {
    const other = chatwootMigrations({ tablePrefix: "mig_", migrationsTableName: "mig_history" });
    expect(other.tableName).toBe("mig_history");
    await db.migrate.latest({ migrationSource: other, tableName: other.tableName });
    const [done, pending] = (await db.migrate.list({
      migrationSource: other,
      tableName: other.tableName,
    })) as [unknown[], unknown[]];
    expect([done.length, pending.length]).toEqual([1, 0]);
    expect(await db.schema.hasTable("mig_outbox_chats")).toBe(true);
    expect(await db.schema.hasTable("mig_history")).toBe(true);
    await migrate(db, { tablePrefix: "mig_", migrationsTableName: "mig_history" }); // idempotent

    await db.migrate.rollback({ migrationSource: other, tableName: other.tableName }, true);
    for (const table of [
      "integrations",
      "chat_mappings",
      "message_mappings",
      "outbox",
      "outbox_chats",
      "leases",
    ]) {
      expect(await db.schema.hasTable(`mig_${table}`)).toBe(false);
    }
    expect(await db.schema.hasTable("chatwoot_integrations")).toBe(true);
    expect(await db.schema.hasTable("cw2_integrations")).toBe(true);
  });

  it("refuses an unusable table prefix", () => {
    expect(() => createKnexStore(db, { tablePrefix: "bad-prefix" })).toThrow(/tablePrefix/);
    expect(() => chatwootMigrations({ tablePrefix: "x".repeat(40) })).toThrow(/tablePrefix/);
  });
});
