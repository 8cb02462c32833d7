import { describe, expect, it } from "vitest";
import { itemOf, now, outboxStatementsDatabase, type SentStatement } from "./outbox-statements.fixture.js";

// The knex outbox on MariaDB/MySQL (no RETURNING, no partial index): what the hot calls cost in statements, in one
// transaction per batch. The store conformance suite (mariadb.test.ts) covers the contract itself. Skipped loudly
// when MariaDB is unreachable.

const fixture = await outboxStatementsDatabase("mariadb", "cw_knex_outbox_my");
const item = itemOf("int_m");

if (fixture) {
  const { db, store, counted } = fixture;

  /** The statements a call sent, without the transaction's own (isolation level, begin, commit). */
  const work = (sql: SentStatement[]) =>
    sql.filter((entry) => !/^(set transaction|begin|commit)/.test(entry.sql));
  const claim = (limit: number) => store.outbox.claim({ owner: "w", limit, claimTtlMs: 60_000, now });

  describe("knex outbox on MariaDB/MySQL: statements on the hot path", () => {
    it("enqueues made together are one transaction: each chat row locked once in key order, the items in one insert", async () => {
      const stored = await store.outbox.enqueue(item("x", "b", "i2"), now);
      const { result, sql } = await counted(() =>
        Promise.all([
          store.outbox.enqueue(item("a1", "b", "i2"), now),
          store.outbox.enqueue(item("a2", "a", "i2"), now),
          store.outbox.enqueue(item("a3", "z", "i1"), now),
          store.outbox.enqueue(item("a4", "b", "i2"), now),
          store.outbox.enqueue(item("a5", "y", "i1"), now),
          store.outbox.enqueue(item("a6", "c", "i2"), now),
          store.outbox.enqueue(item("a7", "w", "i1"), now),
          store.outbox.enqueue(item("x", "b", "i2"), now), // stored before
          store.outbox.enqueue(item("a1", "b", "i2"), now), // twice in the batch
        ]),
      );
      expect(result.map((entry) => entry.duplicate)).toEqual([
        false,
        false,
        false,
        false,
        false,
        false,
        false,
        true,
        true,
      ]);
      expect(result[7]!.id).toBe(stored.id);
      expect(result[8]!.id).toBe(result[0]!.id);
      const statements = work(sql);
      // Chat rows upserted in (integration, chat key) order, each once: two batches locking in one order cannot
      // deadlock each other.
      expect(statements[0]!.sql).toMatch(/^insert into `chatwoot_outbox_chats` .* on duplicate key update/);
      expect(statements[0]!.bindings.slice(0, 12)).toEqual([
        "i1",
        "w",
        "i1",
        "y",
        "i1",
        "z",
        "i2",
        "a",
        "i2",
        "b",
        "i2",
        "c",
      ]);
      // The batch's distinct items in one insert, then one read of their dedupe keys per integration.
      expect(statements[1]!.sql).toMatch(/^insert into `chatwoot_outbox` /);
      expect(statements[1]!.sql.match(/\(\?, /g)).toHaveLength(8);
      // The chats without unfinished items become due, in one update.
      expect(statements[2]!.sql).toMatch(
        /^update `chatwoot_outbox_chats` set `head_due` = \? where .* and `head_due` is null$/,
      );
      expect(statements.slice(3).map((entry) => entry.bindings[0])).toEqual(["i2", "i1"]);
      expect(statements).toHaveLength(5);
      // Stored in call order per chat.
      const rows = await db("chatwoot_outbox").orderBy("seq").select("dedupe_key");
      expect(rows.map((row) => row.dedupe_key)).toEqual(["x", "a1", "a2", "a3", "a4", "a5", "a6", "a7"]);
    });

    it("a claim is one transaction: the due chats locked, their heads in one read, one guarded update, the heads written back; oldest first", async () => {
      await claim(1); // the store's first claim also sweeps (suite.fixture.ts, "a rolling upgrade")
      await store.outbox.enqueue(item("first", "b", "i2"), now);
      await store.outbox.enqueue(item("second", "a", "i2"), now);
      await store.outbox.enqueue(item("third", "z", "i1"), now);
      await store.outbox.enqueue(item("behind", "b", "i2"), now); // not a head
      const { result, sql } = await counted(() => claim(2));
      expect(result.map((entry) => entry.dedupeKey)).toEqual(["first", "second"]);
      const statements = work(sql);
      expect(statements.map((entry) => entry.sql)).toEqual([
        expect.stringMatching(
          /^select `integration_id`, `chat_key`, `head_seq` from `chatwoot_outbox_chats` where `head_due` <= \? order by `head_due` asc limit \? for update skip locked$/,
        ),
        expect.stringMatching(/^\(select \* from `chatwoot_outbox` where .* limit 1\) union all \(select /),
        expect.stringMatching(/^update `chatwoot_outbox` set `attempts` = /),
        expect.stringMatching(/^update `chatwoot_outbox_chats` as c join \(select \? as i, /),
      ]);
      // Written back: the claimed heads are due when their claims end, the one left over at once.
      const heads = await db("chatwoot_outbox_chats").orderBy(["integration_id", "chat_key"]).select();
      expect(heads.map((head) => [head.chat_key, Number(head.head_due)])).toEqual([
        ["z", now.getTime()],
        ["a", now.getTime() + 60_000],
        ["b", now.getTime() + 60_000],
      ]);
      // The integration left alone is no candidate.
      const rest = await counted(() =>
        store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 60_000, now, excludeIntegrations: ["i1"] }),
      );
      expect(rest.result).toEqual([]);
      expect(work(rest.sql)).toHaveLength(1);
      expect((await claim(5)).map((entry) => entry.dedupeKey)).toEqual(["third"]);
      // "b"'s next head once "first" is done; none left in "a".
      await store.outbox.complete(result[0]!.id, "w");
      await store.outbox.complete(result[1]!.id, "w");
      expect((await claim(5)).map((entry) => entry.dedupeKey)).toEqual(["behind"]);
      const after = await db("chatwoot_outbox_chats").where({ chat_key: "a" }).first();
      expect([Number(after.head_seq), after.head_due]).toEqual([Number(heads[1].head_seq), null]);
    });

    it("an enqueue alone takes the single path: the dedupe key looked up first, no batch transaction", async () => {
      await store.outbox.enqueue(item("first"), now);
      const { result, sql } = await counted(() => store.outbox.enqueue(item("second"), now));
      expect(result.duplicate).toBe(false);
      expect(work(sql)[0]!.sql).toMatch(
        /^select `id` from `chatwoot_outbox` where `integration_id` = \? and `dedupe_key`/,
      );
    });

    it("a claim leaves alone the chats another claimer holds, and claims nothing when it holds them all", async () => {
      await store.outbox.enqueue(item("held", "one"), now);
      await store.outbox.enqueue(item("free", "two"), now);
      await store.outbox.enqueue(item("also held", "three"), now);
      // Another process's claim holding two chat locks (at the isolation level the store's transactions use).
      const other = await db.transaction({ isolationLevel: "read committed" });
      try {
        await other("chatwoot_outbox_chats")
          .where({ integration_id: "int_m" })
          .whereIn("chat_key", ["one", "three"])
          .forUpdate();
        expect((await claim(5)).map((entry) => entry.dedupeKey)).toEqual(["free"]);
        expect(await claim(5)).toEqual([]);
      } finally {
        await other.rollback();
      }
      expect((await claim(5)).map((entry) => entry.dedupeKey)).toEqual(["held", "also held"]);
    });

    it("a complete is one transaction: the chats locked, the items read afresh, one update each for the items and their chats", async () => {
      for (const key of ["a", "b", "c"]) await store.outbox.enqueue(item(key, key), now);
      const [a, b, c] = await claim(3);
      const steps = [
        expect.stringMatching(
          /^select distinct `integration_id`, `chat_key` from `chatwoot_outbox` where `id` in/,
        ),
        expect.stringMatching(
          /^select `integration_id`, `chat_key` from `chatwoot_outbox_chats` where .* order by `integration_id` asc, `chat_key` asc for update$/,
        ),
        expect.stringMatching(
          /^select `id`, `claimed_by`, `integration_id`, `chat_key` from `chatwoot_outbox`/,
        ),
        expect.stringMatching(
          /^update `chatwoot_outbox` set `status` = \?, `claim_until` = \? where `id` in/,
        ),
        expect.stringMatching(/^update `chatwoot_outbox_chats` set `head_due` = \? where/),
      ];
      const one = await counted(() => store.outbox.complete(a!.id, "w"));
      expect(one.result).toBe(true);
      expect(work(one.sql).map((entry) => entry.sql)).toEqual(steps);
      const together = await counted(() =>
        Promise.all([store.outbox.complete(b!.id, "w"), store.outbox.complete(c!.id, "other")]),
      );
      expect(together.result).toEqual([true, false]);
      expect(work(together.sql).map((entry) => entry.sql)).toEqual(steps);
      // Only the chat of the item completed is due.
      const due = await db("chatwoot_outbox_chats").orderBy("chat_key").select("chat_key", "head_due");
      expect(due.map((row) => [row.chat_key, Number(row.head_due)])).toEqual([
        ["a", 0],
        ["b", 0],
        ["c", now.getTime() + 60_000],
      ]);
      // None held by its caller: the reads and the lock alone.
      const none = await counted(() =>
        Promise.all([store.outbox.complete(c!.id, "x"), store.outbox.complete(c!.id, "y")]),
      );
      expect(none.result).toEqual([false, false]);
      expect(work(none.sql)).toHaveLength(3);
      // Nothing claimed among them: the first read alone.
      const unclaimed = await counted(() => store.outbox.complete(a!.id, "w"));
      expect(unclaimed.result).toBe(false);
      expect(work(unclaimed.sql)).toHaveLength(1);
      expect(await store.outbox.count("int_m")).toMatchObject({ done: 2, claimed: 1 });
    });
  });
} else {
  // The server is unreachable (warned above); CI sets CI_REQUIRE_DB=1, where this cannot happen.
  it.skipIf(true)("runs the outbox statement checks on MariaDB/MySQL", () => {});
}
