import { eventually } from "@ryze/chatwoot-testkit";
import { describe, expect, it } from "vitest";
import { createKnexStore } from "./index.js";
import { itemOf, now, outboxStatementsDatabase } from "./outbox-statements.fixture.js";

// The knex outbox on PostgreSQL: what the hot calls cost in statements. Calls made together share one statement, sent
// as a named prepared statement whose text is the same for every batch size (`prepared.ts`: parsed and planned once
// per connection): the batch binds one array per column (`unnest`), never a VALUES list that grows with the batch.
// The store conformance suite (postgres.test.ts) covers the contract itself. Skipped loudly when PostgreSQL is
// unreachable.

const fixture = await outboxStatementsDatabase("postgres", "cw_knex_outbox");
const item = itemOf("int_p");

if (fixture) {
  const { database, db, store } = fixture;
  /** The call's result and the texts of the statements it sent. */
  const counted = async <T>(call: () => Promise<T>) => {
    const { result, sql } = await fixture.counted(call);
    return { result, sql: sql.map((entry) => entry.sql) };
  };

  describe("knex outbox on PostgreSQL: statements on the hot path", () => {
    it("enqueues into a known chat made together are one prepared insert, whatever their number", async () => {
      await store.outbox.enqueue(item("first"), now); // the chat's first item makes its chat row
      for (const size of [2, 5]) {
        const keys = Array.from({ length: size }, (_, i) => `k${size}-${i}`);
        const { result, sql } = await counted(() =>
          Promise.all(keys.map((key) => store.outbox.enqueue(item(key), now))),
        );
        expect(result.every((entry) => !entry.duplicate)).toBe(true);
        expect(sql).toHaveLength(1);
        expect(sql[0]).toMatch(/^with v as \(select \* from unnest\(\$1::text\[\], \$2::text\[\]/);
      }
      // Stored as enqueued, in call order, every column in its place.
      const rows = await db("chatwoot_outbox")
        .orderBy("seq")
        .select("dedupe_key", "status", "attempts", "chat_key");
      expect(rows.map((row) => row.dedupe_key)).toEqual([
        "first",
        "k2-0",
        "k2-1",
        "k5-0",
        "k5-1",
        "k5-2",
        "k5-3",
        "k5-4",
      ]);
      expect(
        rows.every(
          (row) => row.status === "pending" && Number(row.attempts) === 0 && row.chat_key === "chat",
        ),
      ).toBe(true);
    });

    it("an enqueue alone into a known chat is that one statement too; into a new chat, a transaction", async () => {
      const first = await counted(() => store.outbox.enqueue(item("first", "new chat"), now));
      expect(first.result.duplicate).toBe(false);
      expect(first.sql.length).toBeGreaterThan(1);
      const { result, sql } = await counted(() => store.outbox.enqueue(item("second", "new chat"), now));
      expect(result.duplicate).toBe(false);
      expect(sql).toEqual([expect.stringMatching(/^with v as \(select \* from unnest\(/)]);
    });

    it("a claim is one transaction of two prepared statements; completes made together one, which makes their chats due", async () => {
      await store.outbox.enqueue(item("a", "one"), now);
      await store.outbox.enqueue(item("b", "two"), now);
      await store.outbox.enqueue(item("c", "two"), now);
      await store.outbox.enqueue(item("later", "three"), now);
      await store.outbox.fail(
        (await store.outbox.claim({ owner: "x", limit: 10, claimTtlMs: 1, now }))[2]!.id,
        "x",
        {
          retryAt: new Date(now.getTime() + 5_000),
          error: "later",
        },
      );
      const heads = async () =>
        Object.fromEntries(
          (await db("chatwoot_outbox_chats").select("chat_key", "head_seq", "head_due")).map((row) => [
            row.chat_key,
            row.head_due === null ? null : Number(row.head_due),
          ]),
        );
      const at = new Date(now.getTime() + 1);
      const claim = await counted(() =>
        store.outbox.claim({ owner: "w", limit: 10, claimTtlMs: 60_000, now: at }),
      );
      expect(claim.result.map((entry) => [entry.dedupeKey, entry.attempts])).toEqual([
        ["a", 1],
        ["b", 1],
      ]);
      expect(claim.sql).toEqual([
        "begin isolation level read committed",
        expect.stringMatching(
          /^select integration_id, chat_key, head_seq from "chatwoot_outbox_chats" where head_due/,
        ),
        expect.stringMatching(
          /^with l as \(select \* from unnest\(\$1::text\[\], \$2::text\[\], \$3::bigint\[\]\)/,
        ),
        "commit",
      ]);
      // Written back: a claimed head is due when its claim ends, a head waiting for its retry when that comes.
      expect(await heads()).toEqual({
        one: at.getTime() + 60_000,
        two: at.getTime() + 60_000,
        three: now.getTime() + 5_000,
      });
      const done = await counted(() =>
        Promise.all(claim.result.map((entry) => store.outbox.complete(entry.id, "w"))),
      );
      expect(done.result).toEqual([true, true]);
      expect(done.sql).toEqual([expect.stringMatching(/^with held as .* returning o.id$/)]);
      expect(await heads()).toEqual({ one: 0, two: 0, three: now.getTime() + 5_000 });
      // The next claim finds "two"'s next head; "one" has none left.
      expect(
        (await store.outbox.claim({ owner: "w", limit: 10, claimTtlMs: 60_000, now: at })).map(
          (entry) => entry.dedupeKey,
        ),
      ).toEqual(["c"]);
      expect(await heads()).toEqual({ one: null, two: at.getTime() + 60_000, three: now.getTime() + 5_000 });
    });

    it("an enqueue that waited for a claim finding its chat empty leaves the chat due (its snapshot predates the claim)", async () => {
      await store.outbox.claim({ owner: "w", limit: 1, claimTtlMs: 60_000, now }); // the first claim also sweeps
      await store.outbox.enqueue(item("a", "racy"), now);
      const [a] = await store.outbox.claim({ owner: "w", limit: 1, claimTtlMs: 60_000, now });
      expect(await store.outbox.complete(a!.id, "w")).toBe(true); // the chat is due: look for its next head
      // A claim in another process holds the chat and finds it empty (it writes no due time), while an enqueue into
      // the chat waits for that lock with a snapshot taken before the claim commits.
      const claimer = await db.transaction();
      await claimer("chatwoot_outbox_chats").where({ chat_key: "racy" }).forUpdate();
      await claimer("chatwoot_outbox_chats").where({ chat_key: "racy" }).update({ head_due: null });
      const enqueued = store.outbox.enqueue(item("b", "racy"), now);
      await eventually(async () => {
        const waiting = await db.raw(
          "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%insert into%chatwoot_outbox%'",
        );
        return waiting.rows[0].n > 0;
      });
      await claimer.commit();
      expect((await enqueued).duplicate).toBe(false);
      const claimed = await store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 60_000, now });
      expect(claimed.map((entry) => entry.dedupeKey)).toEqual(["b"]);
    });

    it("a claim whose second statement fails rolls back: its chat locks are released and the connection serves on", async () => {
      const single = database.connect({ poolMax: 1 });
      try {
        const alone = createKnexStore(single);
        await alone.outbox.claim({ owner: "w", limit: 1, claimTtlMs: 60_000, now }); // the first claim also sweeps
        await alone.outbox.enqueue(item("a", "one"), now);
        await db.raw('alter table "chatwoot_outbox" rename column "available_at" to "available_at_"');
        try {
          await expect(alone.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 60_000, now })).rejects.toThrow(
            /available_at/,
          );
        } finally {
          await db.raw('alter table "chatwoot_outbox" rename column "available_at_" to "available_at"');
        }
        // Nothing claimed, no chat row left locked (another transaction takes it at once), and the same connection
        // claims next.
        const other = await db.transaction();
        try {
          expect(await other.raw('select 1 from "chatwoot_outbox_chats" for update nowait')).toBeTruthy();
        } finally {
          await other.rollback();
        }
        expect(await alone.outbox.count("int_p")).toMatchObject({ pending: 1, claimed: 0 });
        const claimed = await alone.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 60_000, now });
        expect(claimed.map((entry) => entry.dedupeKey)).toEqual(["a"]);
      } finally {
        await single.destroy();
      }
    });
  });
} else {
  // The server is unreachable (warned above); CI sets CI_REQUIRE_DB=1, where this cannot happen.
  it.skipIf(true)("runs the outbox statement checks on PostgreSQL", () => {});
}
