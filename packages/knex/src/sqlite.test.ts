import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import knex from "knex";
import { afterAll } from "vitest";
import { runKnexStoreSuite } from "./suite.fixture.js";

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

await runKnexStoreSuite("SQLite, better-sqlite3", db);
