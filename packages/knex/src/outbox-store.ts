import { randomUUID } from "node:crypto";
import type { OutboxItem, OutboxStatus, OutboxStore } from "@ryze/chatwoot-core";
import type { Knex } from "knex";
import { checkKey, outboxFromRow, type Row } from "./codec.js";
import type { StoreContext } from "./context.js";
import { type Dialect, insertUnlessDuplicate } from "./dialect.js";
import type { ChatwootTableNames } from "./tables.js";

/*
 * Claim design: one live claim per chat key, FIFO, under concurrent claimers.
 *
 * `FOR UPDATE SKIP LOCKED` on outbox rows alone is not enough: two claimers can lock two *different* rows of
 * one chat key (e.g. when an older row commits late and becomes the head again, or when each claimer's
 * snapshot sees a different head), and both would be live. So the lock is per chat key instead: every
 * (integration, chat key) has a row in `<prefix>outbox_chats`, and both a claim and an enqueue of a chat key
 * hold that row's lock.
 *
 * claim, in one transaction (READ COMMITTED):
 *   1. pick candidate chat keys whose head (oldest pending/claimed item) is due or whose claim expired;
 *   2. lock their chat rows with `FOR UPDATE SKIP LOCKED`: chat keys another claimer is working on are skipped;
 *   3. for the locked chat keys only, re-read the head and "is anything claimed with a live deadline?" with
 *      fresh statements (the previous holder of the lock has committed by now), then claim each head with an
 *      UPDATE guarded by the same due/expired condition (a concurrent complete/fail/markDead by the previous
 *      owner then makes it a no-op instead of being overwritten). On PostgreSQL the re-read and the claims are
 *      one `UPDATE ... WHERE seq IN (heads of the locked chats) RETURNING *`; MySQL/MariaDB (no UPDATE
 *      RETURNING) read and claim head by head.
 * enqueue takes the same chat lock (blocking) before inserting, so items of one chat key get their `seq`
 * in commit order and a late commit can never slip in ahead of a head that is already claimed. On PostgreSQL
 * an enqueue into a chat whose row exists is one autocommit statement (`WITH chat AS (... FOR UPDATE) INSERT`).
 *
 * SQLite has no row locks and one writer at a time: a claim is a single `UPDATE ... WHERE seq IN (the oldest
 * due heads) RETURNING *`, an enqueue a single INSERT, each atomic on its own; no chat rows are needed.
 */

const UNFINISHED: OutboxStatus[] = ["pending", "claimed"];
const NUMERIC_CASTS: Record<string, string> = {
  attempts: "::integer",
  available_at: "::bigint",
  claim_until: "::bigint",
  created_at: "::bigint",
};

interface ChatKey {
  integration_id: string;
  chat_key: string;
}

const chatId = (row: ChatKey | Row) => `${String(row.integration_id)}\u0000${String(row.chat_key)}`;

/** Restricts a query to the given chat keys (column names qualified with `alias.` when given). */
function inChats(query: Knex.QueryBuilder, chats: ChatKey[], alias = ""): Knex.QueryBuilder {
  return query.where((where) => {
    for (const chat of chats) {
      where.orWhere({ [`${alias}integration_id`]: chat.integration_id, [`${alias}chat_key`]: chat.chat_key });
    }
  });
}

/** Items that may be claimed at `at`: due pending ones and claimed ones whose deadline passed. */
function claimable(query: Knex.QueryBuilder, at: number, alias = ""): Knex.QueryBuilder {
  return query.where((where) =>
    where
      .where((pending) =>
        pending.where(`${alias}status`, "pending").andWhere(`${alias}available_at`, "<=", at),
      )
      .orWhere((expired) =>
        expired.where(`${alias}status`, "claimed").andWhere(`${alias}claim_until`, "<=", at),
      ),
  );
}

/** Keeps only the head of each chat key: no older unfinished item of the same chat key exists. */
function headsOnly(query: Knex.QueryBuilder, outbox: string): Knex.QueryBuilder {
  return query.whereNotExists((older) =>
    older
      .select("p.seq")
      .from(`${outbox} as p`)
      .whereRaw("?? = ??", ["p.integration_id", "o.integration_id"])
      .andWhereRaw("?? = ??", ["p.chat_key", "o.chat_key"])
      .whereIn("p.status", UNFINISHED)
      .andWhereRaw("?? < ??", ["p.seq", "o.seq"]),
  );
}

/** Blocks until this transaction holds the chat-key locks matching `where` (no-op on SQLite). */
export async function lockChats(
  trx: Knex.Transaction,
  dialect: Dialect,
  t: ChatwootTableNames,
  where: Partial<ChatKey>,
): Promise<void> {
  if (dialect === "sqlite") return;
  await trx(t.outboxChats).select("chat_key").where(where).orderBy("chat_key").forUpdate();
}

export function createOutboxStore({ knex, dialect, tables: t, inTransaction }: StoreContext): OutboxStore {
  /** Makes sure the chat row exists and this transaction holds its lock. */
  async function lockChat(trx: Knex.Transaction, chat: ChatKey): Promise<void> {
    if (dialect === "sqlite") {
      await insertUnlessDuplicate(trx, dialect, t.outboxChats, { ...chat }, ["integration_id", "chat_key"]);
      return;
    }
    const existing: Row | undefined = await trx(t.outboxChats)
      .select("chat_key")
      .where(chat)
      .forUpdate()
      .first();
    if (existing) return;
    // Our own new row is locked by the insert; if another writer inserted it first, wait for it and lock it.
    if (await insertUnlessDuplicate(trx, dialect, t.outboxChats, { ...chat }, ["integration_id", "chat_key"]))
      return;
    await trx(t.outboxChats).select("chat_key").where(chat).forUpdate().first();
  }

  /** The claimed item held by `owner`, as an UPDATE guard. */
  const held = (id: string, owner: string) =>
    knex(t.outbox).where({ id, status: "claimed", claimed_by: owner });

  return {
    async enqueue(input, now) {
      checkKey("chatKey", input.chatKey);
      checkKey("dedupeKey", input.dedupeKey);
      const payload = JSON.stringify(input.payload);
      if (payload === undefined) throw new TypeError("outbox payload must be JSON-serialisable");
      const dedupe = { integration_id: input.integrationId, dedupe_key: input.dedupeKey };
      const id = randomUUID();
      const row = {
        id,
        integration_id: input.integrationId,
        direction: input.direction,
        chat_key: input.chatKey,
        dedupe_key: input.dedupeKey,
        payload,
        status: "pending",
        attempts: 0,
        available_at: (input.availableAt ?? now).getTime(),
        claimed_by: null,
        claim_until: null,
        last_error: "",
        created_at: now.getTime(),
      };

      if (dialect === "sqlite") {
        // One autocommit statement: SQLite has one writer at a time, so the insert gets its `seq` in commit order
        // without a chat lock (claims on SQLite never read the chat rows).
        for (let attempt = 0; attempt < 3; attempt++) {
          const inserted: Row[] = await knex(t.outbox)
            .insert(row)
            .onConflict(["integration_id", "dedupe_key"])
            .ignore()
            .returning(["id"]);
          if (inserted.length > 0) return { id, duplicate: false };
          const existing: Row | undefined = await knex(t.outbox).select("id").where(dedupe).first();
          if (existing) return { id: String(existing.id), duplicate: true };
          // The duplicate was cancelled in between: its dedupe key is free again.
        }
        throw new Error("outbox dedupe conflict without a stored item");
      }

      if (dialect === "postgresql") {
        // The usual case in one round trip: lock the (existing) chat row and insert in one autocommit statement.
        // The lock is taken before `seq` is drawn and held until commit, as in the transaction below. No row
        // comes back when the chat row does not exist yet or the dedupe key is taken: the transaction decides.
        const columns = Object.keys(row) as (keyof typeof row)[];
        // Parameters of INSERT ... SELECT arrive as text: the numeric columns need their type said.
        const cast = (column: string) => NUMERIC_CASTS[column] ?? "";
        const result = (await knex.raw(
          `with chat as (select 1 from ?? where ?? = ? and ?? = ? for update) ` +
            `insert into ?? (${columns.map(() => "??").join(", ")}) ` +
            `select ${columns.map((column) => `?${cast(column)}`).join(", ")} from chat ` +
            `on conflict (??, ??) do nothing returning ??`,
          [
            t.outboxChats,
            "integration_id",
            input.integrationId,
            "chat_key",
            input.chatKey,
            t.outbox,
            ...columns,
            ...columns.map((column) => row[column]),
            "integration_id",
            "dedupe_key",
            "id",
          ],
        )) as { rows: Row[] };
        if (result.rows.length > 0) return { id, duplicate: false };
      }

      const known: Row | undefined = await knex(t.outbox).select("id").where(dedupe).first();
      if (known) return { id: String(known.id), duplicate: true };

      return inTransaction(async (trx) => {
        await lockChat(trx, { integration_id: input.integrationId, chat_key: input.chatKey });
        if (await insertUnlessDuplicate(trx, dialect, t.outbox, row, ["integration_id", "dedupe_key"])) {
          return { id, duplicate: false };
        }
        const existing: Row | undefined = await trx(t.outbox).select("id").where(dedupe).first();
        if (!existing) throw new Error("outbox dedupe conflict without a stored item");
        return { id: String(existing.id), duplicate: true };
      });
    },

    async claim({ owner, limit, claimTtlMs, now }) {
      if (limit <= 0) return [];
      checkKey("owner", owner);
      const at = now.getTime();
      const claimUntil = at + claimTtlMs;
      // Taking over an expired claim counts as an attempt: the previous one ended without an outcome (a crash).
      // (SET expressions see the row as it was, on SQLite and PostgreSQL, the two that use this.)
      const claimColumns = (db: Knex) => ({
        attempts: db.raw("?? + (case when ?? = ? then 1 else 0 end)", ["attempts", "status", "claimed"]),
        status: "claimed",
        claimed_by: owner,
        claim_until: claimUntil,
      });
      // Candidates: due pending heads and heads whose claim expired, read separately, each along its own index in
      // due order, so that a claim never walks the finished items that accumulate in the table.
      const wanted = limit * 2 + 8;
      const dueHeads = (db: Knex, status: OutboxStatus, deadline: "available_at" | "claim_until") =>
        headsOnly(
          db(`${t.outbox} as o`)
            .select("o.integration_id", "o.chat_key", "o.seq")
            .where("o.status", status)
            .andWhere(`o.${deadline}`, "<=", at),
          t.outbox,
        )
          .orderBy(`o.${deadline}`, "asc")
          .limit(wanted);
      const byEnqueueOrder = (rows: Row[]) => rows.sort((a, b) => Number(a.seq) - Number(b.seq));

      if (dialect === "sqlite") {
        // One statement, atomic on its own (SQLite has one writer at a time): every candidate is the head of its
        // chat key and due, so the oldest `limit` of them are claimed at once.
        const candidates = knex
          .select("seq")
          .from(dueHeads(knex, "pending", "available_at").as("d"))
          .unionAll(knex.select("seq").from(dueHeads(knex, "claimed", "claim_until").as("e")));
        const picked = knex.select("seq").from(candidates.as("c")).orderBy("seq", "asc").limit(limit);
        const rows: Row[] = await claimable(knex(t.outbox).whereIn("seq", picked), at)
          .update(claimColumns(knex))
          .returning("*");
        return byEnqueueOrder(rows).map(outboxFromRow);
      }

      return inTransaction(async (trx) => {
        // 1. Candidates (plain read): more than `limit`, as some may be locked by other claimers.
        const due = await dueHeads(trx, "pending", "available_at");
        const expired = await dueHeads(trx, "claimed", "claim_until");
        const candidates: ChatKey[] = byEnqueueOrder([...due, ...expired])
          .slice(0, wanted)
          .map((row) => ({ integration_id: String(row.integration_id), chat_key: String(row.chat_key) }));
        if (candidates.length === 0) return [];

        // 2. Lock the candidates' chat keys, skipping those another claimer holds.
        const chats: ChatKey[] = await inChats(
          trx(t.outboxChats).select("integration_id", "chat_key"),
          candidates,
        )
          .forUpdate()
          .skipLocked();
        if (chats.length === 0) return [];
        const locked = new Set(chats.map(chatId));

        // 3. Fresh reads for the locked chat keys (the previous holder of a lock has committed by now): each
        //    chat's head, its oldest unfinished item. Only heads are ever claimed, so a head claimed with a live
        //    deadline means the chat is busy. The claims are guarded by the same due/expired condition, so a
        //    concurrent complete/fail/markDead by the previous owner makes them a no-op instead of being
        //    overwritten.
        if (dialect === "postgresql") {
          // The oldest `limit` locked chats, their heads read and claimed in one statement. Each head is the
          // smaller of the chat's oldest pending and oldest claimed seq, two look-ups along the chat index (a
          // NOT EXISTS anti-join here let the planner walk the whole table: seconds with a backlog of 1,000).
          const chosen = candidates.filter((chat) => locked.has(chatId(chat))).slice(0, limit);
          const oldest = (status: OutboxStatus) =>
            `(select min(p.seq) from ?? as p where p.integration_id = c.i and p.chat_key = c.k and p.status = '${status}')`;
          const heads = trx
            .select(trx.raw(`least(${oldest("pending")}, ${oldest("claimed")})`, [t.outbox, t.outbox]))
            .from(
              trx.raw(
                `(values ${chosen.map(() => "(?, ?)").join(", ")}) as c(i, k)`,
                chosen.flatMap((chat) => [chat.integration_id, chat.chat_key]),
              ),
            );
          const rows: Row[] = await claimable(trx(t.outbox).whereIn("seq", heads), at)
            .update(claimColumns(knex))
            .returning("*");
          return byEnqueueOrder(rows).map(outboxFromRow);
        }

        // MySQL/MariaDB (no UPDATE ... RETURNING): oldest candidate first, one head at a time.
        const heads: Row[] = [];
        for (const chat of candidates) {
          if (heads.length >= limit) break;
          if (!locked.has(chatId(chat))) continue;
          const head: Row | undefined = await trx(t.outbox)
            .where({ integration_id: chat.integration_id, chat_key: chat.chat_key })
            .whereIn("status", UNFINISHED)
            .orderBy("seq", "asc")
            .first();
          if (!head) continue;
          const due =
            head.status === "pending" ? Number(head.available_at) <= at : Number(head.claim_until) <= at;
          if (due) heads.push(head);
        }

        const claimed: OutboxItem[] = [];
        for (const head of heads) {
          const attempts = Number(head.attempts) + (head.status === "claimed" ? 1 : 0);
          const changed = await claimable(trx(t.outbox).where({ seq: head.seq }), at).update({
            status: "claimed",
            claimed_by: owner,
            claim_until: claimUntil,
            attempts,
          });
          if (changed === 1) {
            claimed.push(
              outboxFromRow({
                ...head,
                status: "claimed",
                claimed_by: owner,
                claim_until: claimUntil,
                attempts,
              }),
            );
          }
        }
        return claimed;
      });
    },

    async complete(id, owner) {
      return (await held(id, owner).update({ status: "done", claim_until: null })) === 1;
    },

    async extend(id, owner, claimUntil) {
      return (await held(id, owner).update({ claim_until: claimUntil.getTime() })) === 1;
    },

    async fail(id, owner, { retryAt, error, attempted = true }) {
      const changed = await held(id, owner).update({
        status: "pending",
        ...(attempted ? { attempts: knex.raw("?? + 1", ["attempts"]) } : {}),
        available_at: retryAt.getTime(),
        last_error: error,
        claimed_by: null,
        claim_until: null,
      });
      return changed === 1;
    },

    async markDead(id, owner, error) {
      return (await held(id, owner).update({ status: "dead", last_error: error, claim_until: null })) === 1;
    },

    cancelAll(integrationId, direction) {
      return inTransaction(async (trx) => {
        // Chat locks first (as claims take them), so a claim in progress finishes before its items vanish.
        await lockChats(trx, dialect, t, { integration_id: integrationId });
        const query = trx(t.outbox).where({ integration_id: integrationId }).whereIn("status", UNFINISHED);
        if (direction !== undefined) query.andWhere({ direction });
        return query.delete();
      });
    },

    async find(integrationId, dedupeKey) {
      const row: Row | undefined = await knex(t.outbox)
        .where({ integration_id: integrationId, dedupe_key: dedupeKey })
        .first();
      return row ? outboxFromRow(row) : null;
    },

    async count(integrationId) {
      const rows: Row[] = await knex(t.outbox)
        .select("status")
        .count({ n: "*" })
        .where({ integration_id: integrationId })
        .groupBy("status");
      const counts: Record<OutboxStatus, number> = { pending: 0, claimed: 0, done: 0, dead: 0 };
      for (const row of rows) counts[String(row.status) as OutboxStatus] = Number(row.n);
      return counts;
    },
  };
}
