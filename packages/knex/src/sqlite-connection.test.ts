import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, expect, it } from "vitest";
import { tuneSqliteConnection } from "./sqlite-connection.js";

const directory = mkdtempSync(join(tmpdir(), "chatwoot-tune-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

it("puts a connection in WAL mode without a disk wait per commit, a high safety-net checkpoint, and kept statements", () => {
  const connection = tuneSqliteConnection(new Database(join(directory, "tuned.db")));
  expect(connection.pragma("journal_mode", { simple: true })).toBe("wal");
  expect(connection.pragma("synchronous", { simple: true })).toBe(1); // NORMAL
  expect(connection.pragma("wal_autocheckpoint", { simple: true })).toBe(10_000);
  expect(connection.prepare("select 1")).toBe(connection.prepare("select 1"));
  connection.close();
});
