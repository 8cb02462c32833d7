import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import knexFactory, { type Knex } from "knex";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { createKnexStore, migrate } from "./index.js";

// The knex outbox on SQLite: what each call costs in statements (calls made together share one), the field names in
// its refusals, and another process's writes slipped in between two statements of an enqueue (a second connection,
// synchronous) (mutation testing: docs/testing.md). The store conformance suite covers the contract itself.

const directory = mkdtempSync(join(tmpdir(), "chatwoot-knex-outbox-"));
const file = join(directory, "outbox.db");
const db = knexFactory({ client: "better-sqlite3", connection: { filename: file }, useNullAsDefault: true });
await migrate(db);
const other = new Database(file);
other.pragma("busy_timeout = 5000");

/** Runs before the store builds its n-th query on the outbox table (n from 1, counted from the last reset). */
let beforeQuery: ((n: number) => void) | null = null;
let built = 0;
const proxied = new Proxy(db, {
  apply(target, self, args: [string]) {
    if (args[0] === "chatwoot_outbox") beforeQuery?.(++built);
    return Reflect.apply(target, self, args);
  },
}) as Knex;
const store = createKnexStore(proxied);
const statements: string[] = [];
const bindings: unknown[][] = [];
db.on("query", (query: { sql: string; bindings?: unknown[] }) => {
  statements.push(query.sql.toLowerCase());
  bindings.push(query.bindings ?? []);
});

afterAll(async () => {
  other.close();
  await db.destroy();
  rmSync(directory, { recursive: true, force: true });
});

beforeEach(async () => {
  await db("chatwoot_outbox").delete();
  await db("chatwoot_outbox_chats").delete();
  beforeQuery = null;
  built = 0;
  statements.length = 0;
});

const now = new Date(1_900_000_000_000);
const item = (dedupeKey: string, chatKey = "chat", integrationId = "int_o") => ({
  integrationId,
  direction: "inbound" as const,
  chatKey,
  dedupeKey,
  payload: { dedupeKey },
});
/** The statements of `kinds` grouped by transaction (from each `begin` to its `commit`). */
const transactions = (kinds: string[]) =>
  kinds
    .join(" ")
    .split(/(?<=commit) ?/)
    .filter((text) => text.startsWith("begin"));
async function counted<T>(call: () => Promise<T>): Promise<{ result: T; kinds: string[] }> {
  statements.length = 0;
  bindings.length = 0;
  built = 0;
  const result = await call();
  return { result, kinds: statements.map((sql) => sql.split(" ")[0]!) };
}
/** The chat rows: where each chat's head is and when it is due (migration 0010). */
const chatRows = () =>
  other.prepare("select chat_key, head_seq, head_due from chatwoot_outbox_chats order by chat_key").all();
const rawRow = (dedupeKey: string) =>
  other.prepare("select * from chatwoot_outbox where dedupe_key = ?").get(dedupeKey) as Record<
    string,
    unknown
  >;

describe("knex outbox: refusals", () => {
  it("name the key that is too long", async () => {
    await expect(store.outbox.enqueue({ ...item("d"), chatKey: "c".repeat(192) }, now)).rejects.toThrow(
      "chatKey is longer than 191 characters (192)",
    );
    await expect(store.outbox.enqueue(item("d".repeat(192)), now)).rejects.toThrow(
      "dedupeKey is longer than 191 characters (192)",
    );
    await expect(
      store.outbox.claim({ owner: "o".repeat(192), limit: 1, claimTtlMs: 1_000, now }),
    ).rejects.toThrow("owner is longer than 191 characters (192)");
  });

  it("refuse a payload that is not JSON", async () => {
    await expect(store.outbox.enqueue({ ...item("d"), payload: undefined }, now)).rejects.toThrow(
      new TypeError("outbox payload must be JSON-serialisable"),
    );
    await expect(store.outbox.enqueue({ ...item("d"), payload: () => 1 }, now)).rejects.toThrow(TypeError);
    expect(await store.outbox.find("int_o", "d")).toBeNull();
  });
});

describe("knex outbox: statements", () => {
  it("an enqueue is one transaction, the item and its chat made due; a duplicate, its insert and a read", async () => {
    const first = await counted(() => store.outbox.enqueue(item("d"), now));
    expect(first.kinds).toEqual(["begin", "insert", "insert", "commit"]);
    expect(first.result.duplicate).toBe(false);
    expect(await chatRows()).toEqual([{ chat_key: "chat", head_seq: 0, head_due: 0 }]);
    const again = await counted(() => store.outbox.enqueue(item("d"), now));
    expect(again).toEqual({
      result: { id: first.result.id, duplicate: true },
      kinds: ["begin", "insert", "commit", "select"],
    });
  });

  it("stores the item as given, due when it says, created now", async () => {
    const later = new Date(now.getTime() + 60_000);
    const { id } = await store.outbox.enqueue(
      { ...item("d"), direction: "outbound", availableAt: later },
      now,
    );
    expect(rawRow("d")).toMatchObject({
      id,
      integration_id: "int_o",
      direction: "outbound",
      chat_key: "chat",
      dedupe_key: "d",
      payload: '{"dedupeKey":"d"}',
      status: "pending",
      attempts: 0,
      available_at: later.getTime(),
      claimed_by: null,
      claim_until: null,
      last_error: "",
      created_at: now.getTime(),
    });
    await store.outbox.enqueue(item("e"), now);
    expect(rawRow("e")).toMatchObject({ available_at: now.getTime() });
  });

  it("enqueues made together share their inserts, duplicates among them and in the table included", async () => {
    const stored = await store.outbox.enqueue(item("old"), now);
    const { result, kinds } = await counted(() =>
      Promise.all([
        store.outbox.enqueue(item("a"), now),
        store.outbox.enqueue(item("b", "chat2"), now),
        store.outbox.enqueue(item("a"), now),
        store.outbox.enqueue(item("old"), now),
        store.outbox.enqueue(item("a", "chat", "int_other"), now),
      ]),
    );
    // Shared statements (how calls are grouped is batch.ts's business): one transaction, the items' insert and their
    // chats', and one read of the dedupe key it could not place; never a call's own insert and read.
    expect(kinds).toEqual(["begin", "insert", "insert", "commit", "select"]);
    const [a, b, a2, old, otherA] = result;
    expect(a!.duplicate).toBe(false);
    expect(b!.duplicate).toBe(false);
    expect(a2).toEqual({ id: a!.id, duplicate: true });
    expect(old).toEqual({ id: stored.id, duplicate: true });
    expect(otherA!.duplicate).toBe(false);
    expect(new Set([a!.id, b!.id, otherA!.id]).size).toBe(3);
  });

  it("a claim of nothing costs nothing", async () => {
    await store.outbox.enqueue(item("d"), now);
    expect(await counted(() => store.outbox.claim({ owner: "w", limit: 0, claimTtlMs: 1_000, now }))).toEqual(
      {
        result: [],
        kinds: [],
      },
    );
    expect(await store.outbox.claim({ owner: "w", limit: -1, claimTtlMs: 1_000, now })).toEqual([]);
  });

  it("completes made together are one update per owner, and only the first of the same item counts", async () => {
    for (const key of ["a", "b", "c"]) await store.outbox.enqueue(item(key, key), now);
    const claimed = await store.outbox.claim({ owner: "w1", limit: 2, claimTtlMs: 60_000, now });
    const [third] = await store.outbox.claim({ owner: "w2", limit: 1, claimTtlMs: 60_000, now });
    const { result, kinds } = await counted(() =>
      Promise.all([
        store.outbox.complete(claimed[0]!.id, "w1"),
        store.outbox.complete(claimed[1]!.id, "w1"),
        store.outbox.complete(claimed[0]!.id, "w1"),
        store.outbox.complete(third!.id, "w2"),
        store.outbox.complete(third!.id, "w1"),
      ]),
    );
    expect(result).toEqual([true, true, false, true, false]);
    // One transaction per owner (and the first call may go alone, as batch.ts groups them): fewer than one per call,
    // each the items' update and their chats'.
    expect(transactions(kinds).length).toBeLessThanOrEqual(3);
    expect(new Set(transactions(kinds))).toEqual(new Set(["begin update update commit"]));
    expect(await store.outbox.count("int_o")).toEqual({ pending: 0, claimed: 0, done: 3, dead: 0 });
  });

  it("completes made together answer each call on knex's own path too (preparedStatements: false)", async () => {
    const plain = createKnexStore(db, { preparedStatements: false });
    for (const key of ["a", "b", "c"]) await plain.outbox.enqueue(item(key, key), now);
    const [a, b, c] = await plain.outbox.claim({ owner: "w", limit: 3, claimTtlMs: 60_000, now });
    const { result, kinds } = await counted(() =>
      Promise.all([
        plain.outbox.complete(a!.id, "w"),
        plain.outbox.complete(b!.id, "w"),
        plain.outbox.complete(c!.id, "someone else"),
      ]),
    );
    expect(result).toEqual([true, true, false]);
    expect(transactions(kinds).length).toBeLessThanOrEqual(2);
    expect(await plain.outbox.count("int_o")).toMatchObject({ done: 2, claimed: 1 });
  });

  it("a lone complete is one transaction, clears the claim deadline and makes its chat due", async () => {
    await store.outbox.enqueue(item("d"), now);
    const [claimed] = await store.outbox.claim({ owner: "w", limit: 1, claimTtlMs: 60_000, now });
    expect(await chatRows()).toEqual([
      { chat_key: "chat", head_seq: rawRow("d").seq, head_due: now.getTime() + 60_000 },
    ]);
    expect(await counted(() => store.outbox.complete(claimed!.id, "w"))).toEqual({
      result: true,
      kinds: ["begin", "update", "update", "commit"],
    });
    expect(rawRow("d")).toMatchObject({ status: "done", claim_until: null, claimed_by: "w" });
    expect(await chatRows()).toEqual([{ chat_key: "chat", head_seq: rawRow("d").seq, head_due: 0 }]);
    // Not held any more: nothing completed, no chat touched.
    expect(await counted(() => store.outbox.complete(claimed!.id, "w"))).toEqual({
      result: false,
      kinds: ["begin", "update", "commit"],
    });
  });

  it("fail and markDead clear the claim, fail keeps or counts the attempt", async () => {
    for (const key of ["a", "b", "c"]) await store.outbox.enqueue(item(key, key), now);
    const [a, b, c] = await store.outbox.claim({ owner: "w", limit: 3, claimTtlMs: 60_000, now });
    const retryAt = new Date(now.getTime() + 5_000);
    expect(await store.outbox.fail(a!.id, "w", { retryAt, error: "boom" })).toBe(true);
    expect(await store.outbox.fail(b!.id, "w", { retryAt, error: "later", attempted: false })).toBe(true);
    expect(await store.outbox.markDead(c!.id, "w", "gone")).toBe(true);
    expect(rawRow("a")).toMatchObject({
      status: "pending",
      attempts: 1,
      available_at: retryAt.getTime(),
      last_error: "boom",
      claimed_by: null,
      claim_until: null,
    });
    expect(rawRow("b")).toMatchObject({ status: "pending", attempts: 0, last_error: "later" });
    expect(rawRow("c")).toMatchObject({ status: "dead", last_error: "gone", claim_until: null });
    expect(await store.outbox.count("int_o")).toEqual({ pending: 2, claimed: 0, done: 0, dead: 1 });
    expect(await store.outbox.count("int_none")).toEqual({ pending: 0, claimed: 0, done: 0, dead: 0 });
  });

  it("extend moves the deadline of a held claim only", async () => {
    await store.outbox.enqueue(item("d"), now);
    const [claimed] = await store.outbox.claim({ owner: "w", limit: 1, claimTtlMs: 1_000, now });
    const until = new Date(now.getTime() + 90_000);
    expect(await store.outbox.extend(claimed!.id, "x", until)).toBe(false);
    expect(await store.outbox.extend(claimed!.id, "w", until)).toBe(true);
    expect(rawRow("d")).toMatchObject({ claim_until: until.getTime() });
  });

  it("cancelAll removes the unfinished items of one integration, of one direction when asked", async () => {
    await store.outbox.enqueue(item("in"), now);
    await store.outbox.enqueue({ ...item("out"), direction: "outbound" }, now);
    await store.outbox.enqueue(item("else", "chat", "int_else"), now);
    expect(await store.outbox.cancelAll("int_o", "outbound")).toBe(1);
    expect(await store.outbox.find("int_o", "in")).not.toBeNull();
    expect(await store.outbox.cancelAll("int_o")).toBe(1);
    expect(await store.outbox.find("int_o", "in")).toBeNull();
    expect(await store.outbox.find("int_else", "else")).not.toBeNull();
  });
});

describe("knex outbox: claims read the due chats' heads", () => {
  const later = (ms: number) => new Date(now.getTime() + ms);
  const claimAt = (at: Date, limit: number, owner = "w") =>
    store.outbox.claim({ owner, limit, claimTtlMs: 60_000, now: at });
  const heads = () =>
    Object.fromEntries(
      (chatRows() as Array<{ chat_key: string; head_seq: number; head_due: number | null }>).map((row) => [
        row.chat_key,
        [row.head_seq, row.head_due],
      ]),
    );
  const seqOf = (dedupeKey: string) => rawRow(dedupeKey).seq as number;

  it("take the oldest claimable heads, passing over heads waiting for a retry, held by others or gone, and write back only the heads that changed", async () => {
    // z's chat row comes first (its first item, finished below), its next item last of all.
    for (const [key, chat] of [
      ["z0", "z"],
      ["r1", "r"],
      ["h1", "h"],
      ["g1", "g"],
    ])
      await store.outbox.enqueue(item(key!, chat), now);
    const taken = await claimAt(now, 4, "other");
    const byKey = new Map(taken.map((entry) => [entry.dedupeKey, entry.id]));
    expect(
      await store.outbox.fail(byKey.get("r1")!, "other", { retryAt: later(120_000), error: "later" }),
    ).toBe(true);
    expect(await store.outbox.extend(byKey.get("h1")!, "other", later(120_000))).toBe(true);
    expect(await store.outbox.complete(byKey.get("g1")!, "other")).toBe(true);
    expect(await store.outbox.complete(byKey.get("z0")!, "other")).toBe(true);

    // Due chats without a claimable head: read, their heads written back, no item claimed.
    const idle = await counted(() => claimAt(now, 1));
    expect(idle.result).toEqual([]);
    expect(idle.kinds).toEqual(["begin", "select", "update", "commit"]);
    expect(statements[2]).toMatch(/^update `chatwoot_outbox_chats`/);
    expect(heads()).toEqual({
      g: [seqOf("g1"), null],
      h: [seqOf("h1"), now.getTime() + 60_000],
      r: [seqOf("r1"), now.getTime() + 120_000],
      z: [seqOf("z0"), null],
    });
    // Nothing due now: nothing written.
    expect((await counted(() => claimAt(now, 1))).kinds).toEqual(["begin", "select", "commit"]);

    for (const [key, chat] of [
      ["x1", "x"],
      ["y1", "y"],
      ["z1", "z"],
    ])
      await store.outbox.enqueue(item(key!, chat), now);
    // When h's claim was to end (it was extended): h, x, y and z are due; only x, y and z claimable, x the oldest.
    const at = later(60_000);
    expect((await claimAt(at, 1)).map((entry) => entry.dedupeKey)).toEqual(["x1"]);
    expect(heads()).toMatchObject({
      h: [seqOf("h1"), now.getTime() + 120_000],
      x: [seqOf("x1"), at.getTime() + 60_000],
      y: [seqOf("y1"), now.getTime()],
      z: [seqOf("z1"), now.getTime()],
    });
    // Again: y claimed; z's head and due time are as written, so only y's row is written.
    const next = await counted(() => claimAt(at, 1));
    expect(next.result.map((entry) => entry.dedupeKey)).toEqual(["y1"]);
    expect(JSON.parse(String(bindings[3]![0]))).toEqual([["int_o", "y", seqOf("y1"), at.getTime() + 60_000]]);
  });
});

describe("knex outbox: a write transaction that fails", () => {
  /** Fails every update of the chat rows: `abort` undoes the statement, `rollback` the whole transaction. */
  const failChatUpdates = (how: "abort" | "rollback") =>
    other.exec(
      `create trigger chats_fail before update on chatwoot_outbox_chats begin select raise(${how}, 'chats refused'); end`,
    );
  /** Whether another connection can take the database's write lock at once. */
  const writable = () => {
    other.pragma("busy_timeout = 0");
    try {
      other.exec("begin immediate; rollback");
      return true;
    } catch {
      return false;
    } finally {
      other.pragma("busy_timeout = 5000");
    }
  };

  it("rolls a claim back whole, reports the statement's error and leaves the database writable", async () => {
    await store.outbox.enqueue(item("d"), now);
    failChatUpdates("abort");
    try {
      await expect(store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 60_000, now })).rejects.toThrow(
        "chats refused",
      );
    } finally {
      other.exec("drop trigger chats_fail");
    }
    // The item's claim (the statement before the failed one) is undone: nothing is claimed, the chat is due still.
    expect(rawRow("d")).toMatchObject({ status: "pending", claimed_by: null });
    expect(writable()).toBe(true);
    expect((await store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 60_000, now })).length).toBe(1);
  });

  it("rolls a complete back when SQLite ended the transaction itself, reporting the statement's error", async () => {
    await store.outbox.enqueue(item("d"), now);
    const [claimed] = await store.outbox.claim({ owner: "w", limit: 1, claimTtlMs: 60_000, now });
    failChatUpdates("rollback");
    try {
      await expect(store.outbox.complete(claimed!.id, "w")).rejects.toThrow("chats refused");
    } finally {
      other.exec("drop trigger chats_fail");
    }
    expect(rawRow("d")).toMatchObject({ status: "claimed", claimed_by: "w" });
    expect(writable()).toBe(true);
    expect(await store.outbox.complete(claimed!.id, "w")).toBe(true);
  });
});

describe("knex outbox: summary and pruning", () => {
  it("the summary counts unfinished and dead items; its oldest due item is none until one is due", async () => {
    expect(await store.outbox.summary("int_o", now)).toEqual({ depth: 0, dead: 0, oldestDueAt: null });
    await store.outbox.enqueue({ ...item("later"), availableAt: new Date(now.getTime() + 60_000) }, now);
    expect(await store.outbox.summary("int_o", now)).toEqual({ depth: 1, dead: 0, oldestDueAt: null });
    const earlier = new Date(now.getTime() - 5_000);
    await store.outbox.enqueue(item("due", "chat2"), earlier);
    expect(await store.outbox.summary("int_o", now)).toEqual({ depth: 2, dead: 0, oldestDueAt: earlier });
    expect(await store.outbox.totals(now)).toEqual({ depth: 2, dead: 0, oldestDueAt: earlier });
  });

  it("prune deletes done items first, then dead ones, never more than its limit in all", async () => {
    for (const key of ["d1", "d2", "x1", "x2", "x3"]) await store.outbox.enqueue(item(key, key), now);
    const claimed = await store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 60_000, now });
    for (const entry of claimed)
      if (entry.dedupeKey.startsWith("d")) await store.outbox.complete(entry.id, "w");
      else await store.outbox.markDead(entry.id, "w", "gone");
    const before = new Date(now.getTime() + 1);
    expect(await store.outbox.prune({ doneBefore: before, deadBefore: before, limit: 3 })).toBe(3);
    expect(await store.outbox.count("int_o")).toMatchObject({ done: 0, dead: 2 });
    expect(await store.outbox.prune({ doneBefore: before, deadBefore: before, limit: 0 })).toBe(0);
    expect(await store.outbox.prune({ doneBefore: before, deadBefore: now, limit: 5 })).toBe(0);
    expect(await store.outbox.prune({ doneBefore: before, deadBefore: before, limit: 5 })).toBe(2);
    expect(await store.outbox.count("int_o")).toMatchObject({ done: 0, dead: 0 });
  });
});

describe("knex outbox: another process in between", () => {
  it("an enqueue whose duplicate is cancelled before it is read enqueues again", async () => {
    await store.outbox.enqueue(item("d"), now);
    // The insert (a prepared statement, absorbed as a duplicate); before the read (the first built query), the
    // duplicate goes.
    beforeQuery = (n) => {
      if (n === 1) other.prepare("delete from chatwoot_outbox where dedupe_key = 'd'").run();
    };
    const { result, kinds } = await counted(() => store.outbox.enqueue(item("d"), now));
    expect(result.duplicate).toBe(false);
    // The reads find nothing; then a write transaction of its own (the write lock first): the chat's row, the item, the
    // chat made due.
    expect(kinds).toEqual([
      ...["begin", "insert", "commit", "select", "select"],
      ...["begin;", "delete", "insert", "insert", "update", "commit;"],
    ]);
    expect(await chatRows()).toEqual([{ chat_key: "chat", head_seq: 0, head_due: 0 }]);
    expect(rawRow("d")).toMatchObject({ id: result.id, status: "pending" });
  });

  it("enqueues made together whose duplicate is cancelled before it is read are enqueued one by one", async () => {
    await store.outbox.enqueue(item("d"), now);
    // The shared insert is a prepared statement on the connection (no query builder); before 1, the read of the
    // stored duplicates, the duplicate goes.
    beforeQuery = (n) => {
      if (n === 1) other.prepare("delete from chatwoot_outbox where dedupe_key = 'd'").run();
    };
    const [d, e] = await Promise.all([
      store.outbox.enqueue(item("d"), now),
      store.outbox.enqueue(item("e"), now),
    ]);
    expect(d!.duplicate).toBe(false);
    expect(e!.duplicate).toBe(false);
    expect(rawRow("d")).toMatchObject({ id: d!.id });
  });
});
