import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import knexFactory, { type Knex } from "knex";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { createKnexStore, migrate } from "./index.js";

// The lease store's compare-and-set rounds on SQLite, with another process's writes slipped in between a read and
// the write that follows it (a second connection, synchronous), and the statements each call costs
// (mutation testing: docs/testing.md). The store conformance suite covers the contract itself.

const directory = mkdtempSync(join(tmpdir(), "chatwoot-knex-leases-"));
const file = join(directory, "leases.db");
const db = knexFactory({ client: "better-sqlite3", connection: { filename: file }, useNullAsDefault: true });
await migrate(db);
/** Another process: its writes land at once, between two statements of the store. */
const other = new Database(file);
other.pragma("busy_timeout = 5000");

/** Runs before the store builds its n-th query on the leases table in a call (n from 1). */
let beforeQuery: ((n: number) => void) | null = null;
let built = 0;
const proxied = new Proxy(db, {
  apply(target, self, args: [string]) {
    if (args[0] === "chatwoot_leases") beforeQuery?.(++built);
    return Reflect.apply(target, self, args);
  },
}) as Knex;
const store = createKnexStore(proxied);
const statements: string[] = [];
db.on("query", (query: { sql: string }) => statements.push(query.sql.toLowerCase()));

afterAll(async () => {
  other.close();
  await db.destroy();
  rmSync(directory, { recursive: true, force: true });
});

beforeEach(async () => {
  await db("chatwoot_leases").delete();
  beforeQuery = null;
  built = 0;
  statements.length = 0;
});

const TTL = 10_000;
const at = (ms: number) => new Date(1_900_000_000_000 + ms);
const row = (name: string) => other.prepare("select * from chatwoot_leases where name = ?").get(name);
/** The statements of one call, by kind. */
async function counted<T>(call: () => Promise<T>): Promise<{ result: T; kinds: string[] }> {
  statements.length = 0;
  built = 0;
  const result = await call();
  return { result, kinds: statements.map((sql) => sql.split(" ")[0]!) };
}

describe("knex lease store: statements per call", () => {
  it("checks the length of names and owners, naming the field", async () => {
    await expect(store.leases.acquire("n".repeat(192), "p1", TTL, at(0))).rejects.toThrow(
      "lease name is longer than 191 characters (192)",
    );
    await expect(store.leases.acquire("n", "o".repeat(192), TTL, at(0))).rejects.toThrow(
      "lease owner is longer than 191 characters (192)",
    );
  });

  it("a lease held live by another owner costs one read", async () => {
    await store.leases.acquire("l", "p1", TTL, at(0));
    expect(await counted(() => store.leases.acquire("l", "p2", TTL, at(TTL - 1)))).toEqual({
      result: null,
      kinds: ["select"],
    });
  });

  it("a free, an expired and an own lease each cost a read and a write", async () => {
    expect((await counted(() => store.leases.acquire("l", "p1", TTL, at(0)))).kinds).toEqual([
      "select",
      "insert",
    ]);
    expect((await counted(() => store.leases.acquire("l", "p1", TTL, at(1)))).kinds).toEqual([
      "select",
      "update",
    ]);
    const takeover = await counted(() => store.leases.acquire("l", "p2", TTL, at(TTL + 1)));
    expect(takeover).toEqual({
      result: { name: "l", owner: "p2", epoch: 2, expiresAt: at(2 * TTL + 1) },
      kinds: ["select", "update"],
    });
  });

  it("renewing leases that are all lost costs one statement", async () => {
    await store.leases.acquire("l", "p1", TTL, at(0));
    expect(await counted(() => store.leases.renew("p2", [{ name: "l", epoch: 1 }], TTL, at(1)))).toEqual({
      result: [],
      kinds: ["update"],
    });
  });

  it("the holder re-acquiring extends its own lease only", async () => {
    await store.leases.acquire("a", "p1", TTL, at(0));
    await store.leases.acquire("b", "p1", TTL, at(0));
    await store.leases.acquire("c", "p2", TTL, at(0));
    expect(await store.leases.acquire("a", "p1", TTL, at(5_000))).toMatchObject({
      epoch: 1,
      expiresAt: at(15_000),
    });
    expect(await store.leases.get("b")).toMatchObject({ expiresAt: at(TTL) });
    expect(await store.leases.get("c")).toMatchObject({ expiresAt: at(TTL) });
  });

  it("a row without owner is free, whatever its expiry says", async () => {
    other
      .prepare("insert into chatwoot_leases (name, owner, epoch, expires_at) values (?, null, 3, ?)")
      .run("l", at(TTL * 100).getTime());
    expect(await store.leases.acquire("l", "p2", TTL, at(0))).toEqual({
      name: "l",
      owner: "p2",
      epoch: 4,
      expiresAt: at(TTL),
    });
  });
});

describe("knex lease store: lost compare-and-sets", () => {
  it("a holder whose renewal keeps losing gives up after four rounds", { timeout: 5_000 }, async () => {
    await store.leases.acquire("l", "p1", TTL, at(0));
    // Before each write another process changes owner and back, so the epoch the holder read is stale.
    beforeQuery = (n) => {
      if (n % 2 === 0) other.prepare("update chatwoot_leases set epoch = epoch + 1 where name = ?").run("l");
    };
    const { result, kinds } = await counted(() => store.leases.acquire("l", "p1", TTL, at(1)));
    expect(result).toBeNull();
    expect(kinds).toEqual(["select", "update", "select", "update", "select", "update", "select", "update"]);
  });

  it("a takeover loses to the holder renewing in between, and reads the lease live again", async () => {
    await store.leases.acquire("l", "p1", TTL, at(0));
    beforeQuery = (n) => {
      if (n === 2)
        other
          .prepare("update chatwoot_leases set expires_at = ? where name = ?")
          .run(at(3 * TTL).getTime(), "l");
    };
    const { result, kinds } = await counted(() => store.leases.acquire("l", "p2", TTL, at(TTL + 1)));
    expect(result).toBeNull();
    expect(kinds).toEqual(["select", "update", "select"]);
    expect(row("l")).toMatchObject({ owner: "p1", epoch: 1 });
  });

  it("a takeover loses to another takeover in between", async () => {
    await store.leases.acquire("l", "p1", TTL, at(0));
    beforeQuery = (n) => {
      if (n === 2)
        other
          .prepare("update chatwoot_leases set owner = 'p3', epoch = 2, expires_at = ? where name = ?")
          .run(at(3 * TTL).getTime(), "l");
    };
    expect(await store.leases.acquire("l", "p2", TTL, at(TTL + 1))).toBeNull();
    expect(await store.leases.get("l")).toMatchObject({ owner: "p3", epoch: 2 });
  });

  it("a first acquire loses to another first acquire in between", async () => {
    beforeQuery = (n) => {
      if (n === 2)
        other
          .prepare("insert into chatwoot_leases (name, owner, epoch, expires_at) values ('l', 'p3', 1, ?)")
          .run(at(TTL).getTime());
    };
    const { result, kinds } = await counted(() => store.leases.acquire("l", "p2", TTL, at(0)));
    expect(result).toBeNull();
    expect(kinds).toEqual(["select", "insert", "select"]);
    expect(await store.leases.get("l")).toMatchObject({ owner: "p3", epoch: 1 });
  });

  it("a first acquire that lost to a holder who then released tries again and takes it", async () => {
    beforeQuery = (n) => {
      if (n === 2)
        other
          .prepare("insert into chatwoot_leases (name, owner, epoch, expires_at) values ('l', null, 1, 0)")
          .run();
    };
    expect(await store.leases.acquire("l", "p2", TTL, at(0))).toEqual({
      name: "l",
      owner: "p2",
      epoch: 2,
      expiresAt: at(TTL),
    });
  });
});
