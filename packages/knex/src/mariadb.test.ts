import { createTestDatabase } from "@ryze/chatwoot-testkit/databases";
import { afterAll, describe, expect, it } from "vitest";
import { runKnexStoreSuite } from "./suite.fixture.js";
import { chatwootTableNames } from "./tables.js";

// This file's own database, so it runs next to other test files; skipped loudly when MariaDB is unreachable.
const database = await createTestDatabase("mariadb", "cw_knex");

if (database) {
  // A pool large enough that every concurrent caller of the conformance suite has its own connection.
  const db = database.connect({ poolMax: 12 });
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });
  await runKnexStoreSuite("MariaDB/MySQL", db);

  describe("knex on MariaDB/MySQL", () => {
    it("tables use utf8mb4 with a binary no-pad collation, so ids compare as on the other databases", async () => {
      const [rows] = (await db.raw(
        "select table_name as name, table_collation as collation from information_schema.tables where table_schema = ?",
        [database.name],
      )) as [Array<{ name: string; collation: string }>];
      const chatwoot = rows.filter(
        (row) =>
          row.name.startsWith("chatwoot_") &&
          row.name !== "chatwoot_migrations" &&
          !row.name.endsWith("_lock"),
      );
      // Every table of the store (tables.ts), the migration bookkeeping aside.
      const { migrations, ...tables } = chatwootTableNames();
      expect(chatwoot.map((row) => row.name).sort()).toEqual(Object.values(tables).sort());
      for (const row of chatwoot) expect(row.collation).toMatch(/^utf8mb4_(nopad_bin|0900_bin)$/);
    });
  });
} else {
  // The server is unreachable (warned above); CI sets CI_REQUIRE_DB=1, where this cannot happen.
  it.skipIf(true)(`runs the storage conformance suite on MariaDB/MySQL`, () => {});
}
