import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "@ryze/chatwoot-testkit";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { startWalCheckpoints } from "./wal-checkpoints.js";

const directory = mkdtempSync(join(tmpdir(), "chatwoot-wal-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe("startWalCheckpoints", () => {
  it("copies the WAL into the database file from its worker, while the writer never checkpoints", async () => {
    const filename = join(directory, "wal.db");
    const db = new Database(filename);
    db.pragma("journal_mode = WAL");
    db.pragma("wal_autocheckpoint = 0");
    db.exec("create table t (v text)");
    const insert = db.prepare("insert into t values (?)");
    for (let i = 0; i < 200; i++) insert.run("x".repeat(4_000));
    // Everything is in the WAL so far: the database file holds the first pages only.
    expect(statSync(filename).size).toBeLessThan(100_000);
    const errors: Error[] = [];
    const checkpoints = await startWalCheckpoints(filename, {
      intervalMs: 20,
      onError: (e) => errors.push(e),
    });
    try {
      await eventually(() => statSync(filename).size > 800_000, { what: "the WAL copied into the file" });
      // The writer goes on while the worker checkpoints, and sees its rows.
      for (let i = 0; i < 50; i++) insert.run("y".repeat(4_000));
      expect(db.prepare("select count(*) as n from t").get()).toEqual({ n: 250 });
    } finally {
      await checkpoints.close();
      db.close();
    }
    expect(errors).toEqual([]);
  });

  it("fails to start on a file that does not exist, and refuses a bad interval", async () => {
    await expect(startWalCheckpoints(join(directory, "missing.db"))).rejects.toThrow(
      /unable to open database file/,
    );
    await expect(startWalCheckpoints(join(directory, "wal.db"), { intervalMs: 0 })).rejects.toThrow(
      "startWalCheckpoints: intervalMs must be a positive integer, got 0",
    );
  });
});
