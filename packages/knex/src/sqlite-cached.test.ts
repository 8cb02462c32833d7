import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import knex from "knex";
import { afterAll } from "vitest";
import { cacheStatements, type PreparingConnection } from "./statement-cache.js";
import { runKnexStoreSuite } from "./suite.fixture.js";

// The whole store suite (migrations and roll-backs included) over connections that reuse their statements.
const directory = mkdtempSync(join(tmpdir(), "chatwoot-knex-cached-"));
const db = knex({
  client: "better-sqlite3",
  connection: { filename: join(directory, "store.db") },
  useNullAsDefault: true,
  pool: {
    afterCreate(connection: PreparingConnection, done: (error: Error | null, c: unknown) => void) {
      done(null, cacheStatements(connection, { size: 50 }));
    },
  },
});

afterAll(async () => {
  await db.destroy();
  rmSync(directory, { recursive: true, force: true });
});

await runKnexStoreSuite("SQLite, better-sqlite3, statement cache", db);
