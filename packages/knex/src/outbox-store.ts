import { randomUUID } from "node:crypto";
import type { OutboxStatus, OutboxStore } from "@ryze/chatwoot-core/store";
import type { Knex } from "knex";
import { batched, firstIndexes, groupBy, WRITES } from "./batch.js";
import { checkKey, outboxFromRow, type Row } from "./codec.js";
import type { StoreContext } from "./context.js";
import { type Dialect, insertUnlessDuplicate } from "./dialect.js";
import {
  createPreparedQuery,
  createPreparedTransaction,
  createSqliteStatements,
  numbered,
  type SqliteRun,
} from "./prepared.js";
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
 * The chat row also keeps where its head (oldest unfinished item) is and when it is due (migration 0010):
 * `head_seq`, below which every item of the chat is finished, and `head_due`, no later than when the head may be
 * claimed (0: look now; null: nothing unfinished). Both are lower bounds, so a write that changes a head only has to
 * lower `head_due` under the chat lock (enqueue into an empty chat, complete, fail, markDead, retryDead, cancelAll),
 * never find the next head; `extend` leaves it early.
 * claim on PostgreSQL and MySQL/MariaDB, one READ COMMITTED transaction (see `claimPostgres`):
 *   1. the due chats (`head_due` come) along the chats' due index, locked with `FOR UPDATE SKIP LOCKED`: chat keys
 *      another claimer is working on are skipped;
 *   2. in a statement of its own, whose snapshot follows those locks: each locked chat's head (first unfinished item
 *      from `head_seq` on), the oldest `limit` claimable ones claimed by an UPDATE guarded by the same due/expired
 *      condition, and every locked chat's head and due time written back.
 * enqueue takes the same chat lock (blocking) before inserting, so items of one chat key get their `seq`
 * in commit order and a late commit can never slip in ahead of a head that is already claimed. On PostgreSQL
 * an enqueue into a chat whose row exists is one autocommit statement (`WITH chat AS (... FOR UPDATE) INSERT`).
 *
 * SQLite has no row locks and one writer at a time: a claim, an enqueue and a complete are each one write transaction
 * (`BEGIN IMMEDIATE`) whose statements run synchronously on the connection (`createSqliteStatements`), so nothing
 * runs between them; a claim reads the due chats and their heads in one statement, claims, and writes the heads back
 * (`claimSqlite`).
 *
 * Concurrent enqueues and completes share one statement (PostgreSQL) or one transaction (SQLite, MySQL/MariaDB)
 * each (`batched`): every ingested event is an enqueue, every delivered one a complete.
 *
 * A claim may leave the items of some integrations alone (`excludeIntegrations`, the dispatcher's fair share): their
 * heads are no candidates (a JSON array bound once on SQLite and PostgreSQL, so the statement's text stays the same).
 */

const UNFINISHED: OutboxStatus[] = ["pending", "claimed"];
/** How often claims look for chats with work but no due time (`sweep`). */
export const SWEEP_INTERVAL_MS = 60_000;
/** The columns of an enqueued row and their PostgreSQL types (the prepared enqueue binds one array per column). */
const PG_ROW: Array<[string, string]> = [
  ["id", "text"],
  ["integration_id", "text"],
  ["direction", "text"],
  ["chat_key", "text"],
  ["dedupe_key", "text"],
  ["payload", "text"],
  ["status", "text"],
  ["attempts", "integer"],
  ["available_at", "bigint"],
  ["claimed_by", "text"],
  ["claim_until", "bigint"],
  ["last_error", "text"],
  ["created_at", "bigint"],
];
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

type Enqueued = { id: string; duplicate: boolean };

interface ClaimRequest {
  owner: string;
  limit: number;
  at: number;
  claimUntil: number;
  /** Integrations whose items are left alone. */
  exclude: readonly string[];
}

/**
 * SQL for "may be claimed at the bound instant" (bound twice): a due pending item or a claim whose deadline passed;
 * `claimable` below is the same condition for the query builder.
 */
const claimableSql = (alias = "") =>
  `((${alias}status = 'pending' and ${alias}available_at <= ?) or (${alias}status = 'claimed' and ${alias}claim_until <= ?))`;

const claimId = ({ id, owner }: { id: string; owner: string }) => `${owner}\u0000${id}`;
const dedupeId = (row: Row) => `${String(row.integration_id)}\u0000${String(row.dedupe_key)}`;
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

export function createOutboxStore({
  knex,
  dialect,
  tables: t,
  inTransaction,
  preparedStatements,
}: StoreContext): OutboxStore {
  /** PostgreSQL: the hot statements as named prepared statements (`prepared.ts`). */
  const prepared = preparedStatements && dialect === "postgresql" ? createPreparedQuery(knex) : null;
  const outboxId = knex.client.wrapIdentifier(t.outbox) as string;
  const chatsId = knex.client.wrapIdentifier(t.outboxChats) as string;
  /**
   * The CTE that makes the chats of the rows inserted by the CTE `ins` due when they had no unfinished item (their
   * chat rows are locked by then): the next claim finds the head. The test is in the SET, not the WHERE: the
   * statement's snapshot predates the chat lock it waited for, so a claim that found the chat empty and committed
   * meanwhile is seen only in the row's latest version, which PostgreSQL reads for SET (and for a WHERE only when
   * the snapshot's version already matched).
   */
  const dueNewSql =
    `due as (update ${chatsId} as c set head_due = case when c.head_due is null then 0 else c.head_due end ` +
    "from (select distinct integration_id, chat_key from ins) as n " +
    "where c.integration_id = n.integration_id and c.chat_key = n.chat_key)";
  const enqueuePgSql =
    `with v as (select * from unnest(${PG_ROW.map(([, type], i) => `$${i + 1}::${type}[]`).join(", ")}) ` +
    `with ordinality as v(${PG_ROW.map(([column]) => column).join(", ")}, ord)), ` +
    `chat as (select c.integration_id, c.chat_key from ${chatsId} as c where exists ` +
    "(select 1 from v where v.integration_id = c.integration_id and v.chat_key = c.chat_key) " +
    "order by c.integration_id, c.chat_key for update), " +
    `ins as (insert into ${outboxId} (${PG_ROW.map(([column]) => column).join(", ")}) ` +
    `select ${PG_ROW.map(([column]) => `v.${column}`).join(", ")} from v join chat ` +
    "on chat.integration_id = v.integration_id and chat.chat_key = v.chat_key order by v.ord " +
    `on conflict (integration_id, dedupe_key) do nothing returning id, integration_id, chat_key), ${dueNewSql} ` +
    "select id from ins";
  /**
   * PostgreSQL: completes the items `owner` holds (`?` owner, `?` ids, twice): their chat rows locked first, in key
   * order (as every locker takes them), and made due, so that the next claim finds the chat's next head.
   */
  const completePgSql =
    `with held as (select integration_id, chat_key from ${outboxId} where status = 'claimed' and claimed_by = ? ` +
    "and id = any(?::text[])), " +
    `lk as (select c.integration_id, c.chat_key from ${chatsId} as c where exists (select 1 from held where ` +
    "held.integration_id = c.integration_id and held.chat_key = c.chat_key) " +
    "order by c.integration_id, c.chat_key for update), " +
    `due as (update ${chatsId} as c set head_due = 0 from lk where c.integration_id = lk.integration_id and ` +
    "c.chat_key = lk.chat_key returning c.integration_id, c.chat_key) " +
    `update ${outboxId} as o set status = 'done', claim_until = null from due where ` +
    "o.integration_id = due.integration_id and o.chat_key = due.chat_key and o.status = 'claimed' and " +
    "o.claimed_by = ? and o.id = any(?::text[]) returning o.id";
  const completePgNumbered = numbered(completePgSql);
  /**
   * SQLite: the hot statements straight on the connection (`prepared.ts`), kept prepared unless
   * `preparedStatements` is off.
   */
  const lite = dialect === "sqlite" ? createSqliteStatements(knex, preparedStatements) : null;
  /** SQLite: the chats (a JSON array of `[integration_id, chat_key]`) keyed as `v.i`, `v.k`. */
  const chatsJson = (extra = "") =>
    `(select json_extract(value, '$[0]') as i, json_extract(value, '$[1]') as k${extra} from json_each(?)) as v`;
  const chatPairs = (rows: Row[]) =>
    JSON.stringify([
      ...new Map(rows.map((row) => [chatId(row), [row.integration_id, row.chat_key]])).values(),
    ]);
  /** SQLite: the chats given are due now (their heads have changed: the next claim looks). */
  const dueSqliteSql = `update ${chatsId} as c set head_due = 0 from ${chatsJson()} where c.integration_id = v.i and c.chat_key = v.k`;
  /**
   * SQLite: the chats of `source` (columns `i`, `k`) get a row if they have none, and are due now if they had no
   * unfinished item.
   */
  const dueNewSqlite = (source: string) =>
    `insert into ${chatsId} (integration_id, chat_key, head_due) select v.i, v.k, 0 from ${source} where true ` +
    `on conflict (integration_id, chat_key) do update set head_due = 0 where ${chatsId}.head_due is null`;
  /** The chats given (a JSON array, as `chatPairs` makes it). */
  const dueNewSqliteSql = dueNewSqlite(chatsJson());
  const completeSqliteSql =
    `update ${outboxId} set status = 'done', claim_until = null where status = 'claimed' and claimed_by = ? and ` +
    "id in (select value from json_each(?)) returning id, integration_id, chat_key";
  /**
   * Completes `ids` held by `owner` (PostgreSQL: one prepared statement; SQLite: one transaction, the items and their
   * chats made due): the ids completed.
   */
  const completeHeld = (owner: string, ids: string[]): Promise<Row[]> | null =>
    prepared
      ? prepared(completePgNumbered, [owner, ids, owner, ids])
      : lite
        ? lite.transaction((run) => {
            const rows = run(completeSqliteSql, [owner, JSON.stringify(ids)]);
            if (rows.length > 0) run(dueSqliteSql, [chatPairs(rows)]);
            return rows;
          })
        : dialect === "postgresql"
          ? knex
              .raw(completePgSql, [owner, ids, owner, ids])
              .then((result) => (result as { rows: Row[] }).rows)
          : null;
  /** The chats among `chats` that had no unfinished item become due (their rows exist, locks held). */
  async function markDue(trx: Knex.Transaction, chats: ChatKey[]): Promise<void> {
    if (chats.length === 0) return;
    await inChats(trx(t.outboxChats), chats).whereNull("head_due").update({ head_due: 0 });
  }
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

  /**
   * Depth, dead letters and the oldest due item of one integration's outbox (`null`: every integration's).
   * Unfinished items along the open-items index (SQLite, PostgreSQL), dead ones along the dead index.
   */
  async function outboxCounts(now: Date, integrationId: string | null) {
    const scoped = (query: Knex.QueryBuilder) =>
      integrationId === null ? query : query.where({ integration_id: integrationId });
    const [open, dead] = await Promise.all([
      scoped(knex(t.outbox))
        .whereIn("status", UNFINISHED)
        .select(
          knex.raw("count(*) as ??", ["n"]),
          knex.raw("min(case when ?? <= ? then ?? end) as ??", [
            "available_at",
            now.getTime(),
            "created_at",
            "oldest",
          ]),
        )
        .first() as Promise<Row | undefined>,
      scoped(knex(t.outbox)).where({ status: "dead" }).count({ n: "*" }).first() as Promise<Row | undefined>,
    ]);
    const oldest = open?.oldest;
    return {
      depth: Number(open?.n ?? 0),
      dead: Number(dead?.n ?? 0),
      oldestDueAt: oldest === null || oldest === undefined ? null : new Date(Number(oldest)),
    };
  }

  /** The claimed item held by `owner`, as a guard (on `db`, the store's knex or a transaction of it). */
  const held = (db: Knex, id: string, owner: string) =>
    db(t.outbox).where({ id, status: "claimed", claimed_by: owner });

  /** Looks up which dedupe keys are already stored, per integration: key → stored item id. */
  async function storedIds(rows: Row[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (const [integrationId, group] of groupBy(rows, (row) => String(row.integration_id))) {
      const stored: Row[] = await knex(t.outbox)
        .select("id", "integration_id", "dedupe_key")
        .where({ integration_id: integrationId })
        .whereIn(
          "dedupe_key",
          group.map(({ item }) => String(item.dedupe_key)),
        );
      for (const row of stored) found.set(dedupeId(row), String(row.id));
    }
    return found;
  }

  /** One item, in as few statements as its case allows (a known chat: one). */
  async function enqueueOne(row: Row): Promise<Enqueued> {
    const id = String(row.id);
    const dedupe = { integration_id: row.integration_id, dedupe_key: row.dedupe_key };
    if (dialect === "postgresql") {
      // The usual case in one round trip: the statement locks the (existing) chat row and inserts.
      const inserted = await insertIntoKnownChats([row]);
      if (inserted.has(id)) return { id, duplicate: false };
    }

    const known: Row | undefined = await knex(t.outbox).select("id").where(dedupe).first();
    if (known) return { id: String(known.id), duplicate: true };

    return inTransaction(async (trx) => {
      const chat = { integration_id: String(row.integration_id), chat_key: String(row.chat_key) };
      await lockChat(trx, chat);
      if (await insertUnlessDuplicate(trx, dialect, t.outbox, row, ["integration_id", "dedupe_key"])) {
        await markDue(trx, [chat]);
        return { id, duplicate: false };
      }
      const existing: Row | undefined = await trx(t.outbox).select("id").where(dedupe).first();
      if (!existing) throw new Error("outbox dedupe conflict without a stored item");
      return { id: String(existing.id), duplicate: true };
    });
  }

  /**
   * PostgreSQL: inserts the rows whose chat row exists, in one autocommit statement that locks those chat rows
   * (in key order, as every locker does) before any `seq` is drawn and holds them until commit, as the
   * transaction of a first enqueue does; `seq` follows the rows' order. Rows of unknown chats and rows whose
   * dedupe key is taken are left out. Answers the ids inserted.
   */
  async function insertIntoKnownChats(rows: Row[]): Promise<Set<string>> {
    if (prepared) {
      // One text for every batch size (each column bound as one array, the columns `enqueue` gives every row), so it
      // is prepared once per connection.
      const inserted = await prepared(
        enqueuePgSql,
        PG_ROW.map(([column]) => rows.map((row) => row[column] ?? null)),
      );
      return new Set(inserted.map((row) => String(row.id)));
    }
    // Parameters in VALUES arrive as text: the numeric columns need their type said.
    const columns = Object.keys(rows[0]!);
    const tuple = `(${columns.map((column) => `?${NUMERIC_CASTS[column] ?? ""}`).join(", ")}, ?::integer)`;
    const names = columns.map(() => "??").join(", ");
    const result = (await knex.raw(
      `with v (${names}, ord) as (values ${rows.map(() => tuple).join(", ")}), ` +
        "chat as (select c.integration_id, c.chat_key from ?? as c where exists " +
        "(select 1 from v where v.integration_id = c.integration_id and v.chat_key = c.chat_key) " +
        "order by c.integration_id, c.chat_key for update), " +
        `ins as (insert into ?? (${names}) select ${columns.map(() => "v.??").join(", ")} from v join chat ` +
        "on chat.integration_id = v.integration_id and chat.chat_key = v.chat_key order by v.ord " +
        `on conflict (??, ??) do nothing returning id, integration_id, chat_key), ${dueNewSql} select ?? from ins`,
      [
        ...columns,
        ...rows.flatMap((row, ord) => [...columns.map((column) => row[column] as Knex.Value), ord]),
        t.outboxChats,
        t.outbox,
        ...columns,
        ...columns,
        "integration_id",
        "dedupe_key",
        "id",
      ],
    )) as { rows: Row[] };
    return new Set(result.rows.map((row) => String(row.id)));
  }

  /**
   * MySQL/MariaDB (no `RETURNING`), one transaction for the batch: the chat rows upserted in key order (`ON
   * DUPLICATE KEY UPDATE` locks an existing row as `FOR UPDATE` would, and a new one is locked by its insert), the
   * items inserted in one statement in call order (a taken dedupe key left as it is, without turning other errors
   * into warnings as `INSERT IGNORE` would), then one read of the batch's dedupe keys: a row holding our id is ours,
   * another id is the duplicate stored before. Answers per unique row, in order.
   */
  async function enqueueMysql(unique: Row[]): Promise<Map<string, Enqueued>> {
    const chats = [...new Map(unique.map((row) => [chatId(row), row])).values()]
      .map((row) => ({ integration_id: String(row.integration_id), chat_key: String(row.chat_key) }))
      .sort((a, b) =>
        a.integration_id === b.integration_id
          ? a.chat_key < b.chat_key
            ? -1
            : 1
          : a.integration_id < b.integration_id
            ? -1
            : 1,
      );
    const columns = Object.keys(unique[0]!);
    const tuple = `(${columns.map(() => "?").join(", ")})`;
    return inTransaction(async (trx) => {
      await trx.raw(
        `insert into ?? (??, ??) values ${chats.map(() => "(?, ?)").join(", ")} on duplicate key update ?? = ??`,
        [
          t.outboxChats,
          "integration_id",
          "chat_key",
          ...chats.flatMap((chat) => [chat.integration_id, chat.chat_key]),
          "chat_key",
          "chat_key",
        ],
      );
      await trx.raw(
        `insert into ?? (${columns.map(() => "??").join(", ")}) values ${unique.map(() => tuple).join(", ")} ` +
          "on duplicate key update ?? = ??",
        [
          t.outbox,
          ...columns,
          ...unique.flatMap((row) => columns.map((column) => row[column] as Knex.Value)),
          "id",
          "id",
        ],
      );
      await markDue(trx, chats);
      const answers = new Map<string, Enqueued>();
      for (const [integrationId, group] of groupBy(unique, (row) => String(row.integration_id))) {
        const stored: Row[] = await trx(t.outbox)
          .select("id", "integration_id", "dedupe_key")
          .where({ integration_id: integrationId })
          .whereIn(
            "dedupe_key",
            group.map(({ item }) => String(item.dedupe_key)),
          );
        for (const row of stored) answers.set(dedupeId(row), { id: String(row.id), duplicate: false });
      }
      for (const row of unique) {
        const answer = answers.get(dedupeId(row));
        if (!answer) throw new Error("outbox dedupe conflict without a stored item");
        if (answer.id !== String(row.id)) answer.duplicate = true;
      }
      return answers;
    });
  }

  /**
   * Concurrent enqueues (every ingested event is one) share one statement on SQLite and PostgreSQL (one transaction on MySQL/MariaDB). Items of one
   * chat key keep their call order. What the shared statement could not place (a first item of a chat, a taken
   * dedupe key) takes the single path, in call order.
   */
  const enqueueRows = batched(async (rows: Row[]): Promise<Enqueued[]> => {
    if (dialect === "mysql" && rows.length > 1) {
      const first = firstIndexes(rows, dedupeId);
      const answers = await enqueueMysql(rows.filter((_, index) => first[index] === index));
      return rows.map((row, index) => {
        const answer = answers.get(dedupeId(row))!;
        return first[index] === index ? answer : { id: answer.id, duplicate: true };
      });
    }
    if (dialect === "mysql" || (rows.length === 1 && !lite)) {
      const answers: Enqueued[] = [];
      for (const row of rows) answers.push(await enqueueOne(row));
      return answers;
    }
    const first = firstIndexes(rows, dedupeId);
    const unique = rows.filter((_, index) => first[index] === index);
    let inserted: Set<string>;
    if (lite) {
      // One text per batch size, each prepared once; the items and their chats in one transaction.
      const columns = Object.keys(unique[0]!);
      const tuple = `(${columns.map(() => "?").join(", ")})`;
      const insert =
        `insert into ${outboxId} (${columns.map((column) => knex.client.wrapIdentifier(column)).join(", ")}) ` +
        `values ${unique.map(() => tuple).join(", ")} on conflict (integration_id, dedupe_key) do nothing ` +
        "returning id, integration_id, chat_key";
      const values = unique.flatMap((row) => columns.map((column) => row[column] ?? null));
      const stored = await lite.transaction((run) => {
        const rows = run(insert, values);
        if (rows.length > 0) run(dueNewSqliteSql, [chatPairs(rows)]);
        return rows;
      });
      inserted = new Set(stored.map((row) => String(row.id)));
    } else {
      inserted = await insertIntoKnownChats(unique);
    }
    const left = unique.filter((row) => !inserted.has(String(row.id)));
    const known = left.length > 0 ? await storedIds(left) : new Map<string, string>();
    const answers = new Map<string, Enqueued>();
    for (const row of unique) {
      const key = dedupeId(row);
      if (inserted.has(String(row.id))) answers.set(key, { id: String(row.id), duplicate: false });
      else if (known.has(key)) answers.set(key, { id: known.get(key)!, duplicate: true });
      else answers.set(key, await enqueueOne(row));
    }
    return rows.map((row, index) => {
      const answer = answers.get(dedupeId(row))!;
      return first[index] === index ? answer : { id: answer.id, duplicate: true };
    });
  }, WRITES);

  /**
   * MySQL/MariaDB (no RETURNING), one transaction: the chat rows of the items locked in key order, the items still
   * held by their owner read afresh, finished in one UPDATE, and their chats made due (the next claim finds the
   * next head). Answers the calls completed.
   */
  function completeMysql(calls: { id: string; owner: string }[]): Promise<Set<string>> {
    const ids = [...new Set(calls.map((call) => call.id))];
    return inTransaction(async (trx) => {
      // Their chats first (a plain read: an item's chat never changes), then those chat rows locked by key, in key
      // order; a locking read joined to the items could lock item rows before chat rows.
      const chats: ChatKey[] = await trx(t.outbox)
        .distinct("integration_id", "chat_key")
        .whereIn("id", ids)
        .andWhere("status", "claimed");
      if (chats.length === 0) return new Set<string>();
      await inChats(trx(t.outboxChats).select("integration_id", "chat_key"), chats)
        .orderBy(["integration_id", "chat_key"])
        .forUpdate();
      const rows: Row[] = await trx(t.outbox)
        .select("id", "claimed_by", "integration_id", "chat_key")
        .where("status", "claimed")
        .whereIn("id", ids);
      const wanted = new Set(calls.map(claimId));
      const mine = rows.filter((row) =>
        wanted.has(claimId({ id: String(row.id), owner: String(row.claimed_by) })),
      );
      if (mine.length > 0) {
        await trx(t.outbox)
          .whereIn(
            "id",
            mine.map((row) => String(row.id)),
          )
          .update({ status: "done", claim_until: null });
        await inChats(trx(t.outboxChats), mine as unknown as ChatKey[]).update({ head_due: 0 });
      }
      return new Set(mine.map((row) => claimId({ id: String(row.id), owner: String(row.claimed_by) })));
    });
  }

  /**
   * Completes claimed items, one statement per owner for concurrent callers (MySQL/MariaDB: one transaction per
   * batch).
   */
  const completeItems = batched(async (calls: { id: string; owner: string }[]): Promise<boolean[]> => {
    const first = firstIndexes(calls, claimId);
    if (dialect === "mysql") {
      const finished = await completeMysql(calls);
      return calls.map((call, index) => first[index] === index && finished.has(claimId(call)));
    }
    const done = new Set<string>();
    for (const [owner, group] of groupBy(calls, (call) => call.owner)) {
      const ids = [...new Set(group.map(({ item }) => item.id))];
      const rows: Row[] =
        (await completeHeld(owner, ids)) ??
        (await knex(t.outbox)
          .where({ status: "claimed", claimed_by: owner })
          .whereIn("id", ids)
          .update({ status: "done", claim_until: null })
          .returning(["id"]));
      for (const row of rows) done.add(claimId({ id: String(row.id), owner }));
    }
    return calls.map((call, index) => first[index] === index && done.has(claimId(call)));
  }, WRITES);

  /**
   * Changes an item `owner` holds (fail, markDead): under its chat's lock, and the chat made due, as a complete does
   * (the chat's head has changed or may be due at another time).
   */
  async function changeHeld(id: string, owner: string, changes: Record<string, unknown>): Promise<boolean> {
    return inTransaction(async (trx) => {
      const item: Row | undefined = await held(trx, id, owner).select("integration_id", "chat_key").first();
      if (!item) return false;
      const chat = { integration_id: String(item.integration_id), chat_key: String(item.chat_key) };
      await lockChats(trx, dialect, t, chat);
      // Held still? It may have changed hands while this transaction waited for the chat's lock.
      const changed = await held(trx, id, owner).update(changes);
      if (changed !== 1) return false;
      await trx(t.outboxChats).where(chat).update({ head_due: 0 });
      return true;
    });
  }

  /*
   * Claims. Every one is guarded by the claimable condition (a due pending item, or a claim whose deadline passed)
   * and counts taking over an expired claim as an attempt (SET expressions see the row as it was): the previous
   * one ended without an outcome (a crash).
   */
  const claimSet =
    "set attempts = attempts + (case when status = 'claimed' then 1 else 0 end), status = 'claimed', " +
    "claimed_by = ?, claim_until = ? where seq in (select seq from chosen) and " +
    `${claimableSql()} returning *`;
  const claimSetBindings = ({ owner, claimUntil, at }: ClaimRequest) => [owner, claimUntil, at, at];
  /** Whether a head read back (`status`, `available_at`, `claim_until`) may be claimed at `at` (`claimableSql`). */
  const isClaimable = (head: Row, at: number) =>
    head.status === "pending" ? Number(head.available_at) <= at : Number(head.claim_until) <= at;
  /**
   * A chat's due time after a claim that read its head `head` (a row with `seq`, null when the chat has none): the
   * claim's deadline when this claim took it (`mine`, the claimed seqs), else the head's own due time.
   */
  const headDue = (head: Row, mine: ReadonlySet<number>, claimUntil: number): number | null =>
    head.seq === null
      ? null
      : mine.has(Number(head.seq))
        ? claimUntil
        : head.status === "pending"
          ? Number(head.available_at)
          : Number(head.claim_until);
  /** More candidates than `limit`, as some may be locked by other claimers. */
  const wantedFor = (limit: number) => limit * 2 + 8;

  /**
   * SQLite: one write transaction (nothing runs between its statements): the due chats along
   * `<prefix>outbox_chats_due_idx`, each with its head (its first unfinished item from `head_seq` on, one descent of
   * the open-items index) in one statement; the oldest `limit` claimable heads claimed (by rowid); and the heads and
   * due times that changed written back, as on PostgreSQL.
   */
  const dueHeadsSqliteSql = (excluding: boolean) =>
    "select c.integration_id, c.chat_key, c.head_seq, c.head_due, o.seq, o.status, o.available_at, o.claim_until " +
    `from ${chatsId} as c left join ${outboxId} as o on o.seq = (select p.seq from ${outboxId} as p indexed by ` +
    `${knex.client.wrapIdentifier(`${t.outbox}_open_idx`)} where p.integration_id = c.integration_id and ` +
    "p.chat_key = c.chat_key and p.seq >= c.head_seq and p.status in ('pending', 'claimed') order by p.seq limit 1) " +
    `where c.head_due <= ?${excluding ? " and c.integration_id not in (select value from json_each(?))" : ""} ` +
    "order by c.head_due limit ?";
  const dueHeadsSqliteSqls = [dueHeadsSqliteSql(false), dueHeadsSqliteSql(true)] as const;
  const claimSqliteSql = `with chosen(seq) as (select value from json_each(?)) update ${outboxId} not indexed ${claimSet}`;
  const headsSqliteSql =
    `update ${chatsId} as c set head_seq = v.s, head_due = v.d from ${chatsJson(", json_extract(value, '$[2]') as s, json_extract(value, '$[3]') as d")} ` +
    "where c.integration_id = v.i and c.chat_key = v.k";
  function claimSqlite(run: SqliteRun, request: ClaimRequest): Row[] {
    const { at, claimUntil, exclude, limit } = request;
    const excluding = exclude.length > 0;
    const found = run(dueHeadsSqliteSqls[excluding ? 1 : 0], [
      at,
      ...(excluding ? [JSON.stringify(exclude)] : []),
      wantedFor(limit),
    ]);
    const chosen = found
      .filter((row) => row.seq !== null && isClaimable(row, at))
      .sort((a, b) => Number(a.seq) - Number(b.seq))
      .slice(0, limit)
      .map((row) => Number(row.seq));
    const claimed =
      chosen.length > 0 ? run(claimSqliteSql, [JSON.stringify(chosen), ...claimSetBindings(request)]) : [];
    const mine = new Set(claimed.map((row) => Number(row.seq)));
    const changed = found.flatMap((row) => {
      const seq = row.seq === null ? Number(row.head_seq) : Number(row.seq);
      const due = headDue(row, mine, claimUntil);
      // A chat read here is due, so it has a due time.
      return seq === Number(row.head_seq) && due === Number(row.head_due)
        ? []
        : [[row.integration_id, row.chat_key, seq, due]];
    });
    if (changed.length > 0) run(headsSqliteSql, [JSON.stringify(changed)]);
    return claimed;
  }

  /*
   * PostgreSQL and MySQL/MariaDB: a claim is one READ COMMITTED transaction of two steps.
   *   1. The due chats: those whose `head_due` has come, along `<prefix>outbox_chats_due_idx` (one index range,
   *      however many chats have work), locked with `FOR UPDATE SKIP LOCKED` (chats another claimer holds are left
   *      to it).
   *   2. In a statement of its own, so in a snapshot taken after those locks (every enqueue and every change of a
   *      head takes its chat's lock first, so nothing of these chats changes until commit): each locked chat's head,
   *      its first unfinished item from `head_seq` on; the oldest `limit` claimable heads claimed (guarded by the
   *      claimable condition, as `extend` changes a claim without the chat lock); and every locked chat's head and
   *      due time written back (the claim's deadline, the head's own due time, or null when the chat has none).
   * Each step reads only the chats it locked and their heads: the cost follows `limit`, not the chats with work.
   */
  const dueChatsSql = (excluding: boolean) =>
    `select integration_id, chat_key, head_seq from ${chatsId} where head_due <= ?` +
    `${excluding ? " and integration_id not in (select jsonb_array_elements_text(?::jsonb))" : ""}` +
    " order by head_due limit ? for update skip locked";
  const dueChatsSqls = [dueChatsSql(false), dueChatsSql(true)] as const;
  const dueChatsBindings = ({ at, exclude, limit }: ClaimRequest) => [
    at,
    ...(exclude.length > 0 ? [JSON.stringify(exclude)] : []),
    wantedFor(limit),
  ];
  /** PostgreSQL, step 2 (the locked chats bound as three arrays). */
  const claimHeadsPgSql =
    "with l as (select * from unnest(?::text[], ?::text[], ?::bigint[]) as l(integration_id, chat_key, head_seq)), " +
    "h as (select l.integration_id, l.chat_key, o.seq, o.status, o.available_at, o.claim_until from l left join " +
    `lateral (select seq, status, available_at, claim_until from ${outboxId} as o where o.integration_id = ` +
    "l.integration_id and o.chat_key = l.chat_key and o.seq >= l.head_seq and o.status in ('pending', 'claimed') " +
    "order by o.seq limit 1) as o on true), " +
    `chosen as (select seq from h where ${claimableSql("h.")} order by seq limit ?), ` +
    `claimed as (update ${outboxId} ${claimSet}), ` +
    `heads as (update ${chatsId} as c set head_seq = coalesce(h.seq, c.head_seq), head_due = case when exists ` +
    "(select 1 from claimed where claimed.seq = h.seq) then ? when h.status = 'pending' then h.available_at " +
    "else h.claim_until end from h where c.integration_id = h.integration_id and c.chat_key = h.chat_key) " +
    "select * from claimed";
  const claimPgNumbered = {
    dueChats: dueChatsSqls.map(numbered),
    heads: numbered(claimHeadsPgSql),
  };
  const preparedTransaction = prepared ? createPreparedTransaction(knex) : null;
  async function claimPostgres(request: ClaimRequest): Promise<Row[]> {
    const excluding = request.exclude.length > 0 ? 1 : 0;
    const work = async (query: (text: string, values: unknown[]) => Promise<Row[]>, numbers: boolean) => {
      const chats = await query(
        numbers ? claimPgNumbered.dueChats[excluding]! : dueChatsSqls[excluding],
        dueChatsBindings(request),
      );
      if (chats.length === 0) return [];
      return query(numbers ? claimPgNumbered.heads : claimHeadsPgSql, [
        chats.map((chat) => chat.integration_id),
        chats.map((chat) => chat.chat_key),
        chats.map((chat) => chat.head_seq),
        request.at,
        request.at,
        request.limit,
        ...claimSetBindings(request),
        request.claimUntil,
      ]);
    };
    if (preparedTransaction) return preparedTransaction((query) => work(query, true));
    return inTransaction((trx) =>
      work(
        async (text, values) => ((await trx.raw(text, values as Knex.RawBinding[])) as { rows: Row[] }).rows,
        false,
      ),
    );
  }

  /**
   * MySQL/MariaDB (no LATERAL, no UPDATE ... RETURNING): step 2 is a read of every locked chat's head (one
   * `UNION ALL` of index look-ups along `<prefix>outbox_chat_seq_idx`), the guarded UPDATE of the claims, and one
   * UPDATE of the chats' heads.
   */
  function claimMysql(request: ClaimRequest): Promise<Row[]> {
    const { owner, limit, at, claimUntil } = request;
    return inTransaction(async (trx) => {
      const chats: Row[] = await trx(t.outboxChats)
        .select("integration_id", "chat_key", "head_seq")
        .where("head_due", "<=", at)
        .modify((query) => {
          if (request.exclude.length > 0) query.whereNotIn("integration_id", [...request.exclude]);
        })
        .orderBy("head_due")
        .limit(wantedFor(limit))
        .forUpdate()
        .skipLocked();
      if (chats.length === 0) return [];
      const headOf =
        "(select * from ?? where integration_id = ? and chat_key = ? and seq >= ? and status in ('pending', 'claimed') order by seq limit 1)";
      const [found] = (await trx.raw(
        chats.map(() => headOf).join(" union all "),
        chats.flatMap(
          (chat) => [t.outbox, chat.integration_id, chat.chat_key, chat.head_seq] as Knex.Value[],
        ),
      )) as [Row[]];
      const heads = found
        .filter((head) => isClaimable(head, at))
        .sort((a, b) => Number(a.seq) - Number(b.seq))
        .slice(0, limit);
      let claimed: Row[] = [];
      if (heads.length > 0) {
        // SET is evaluated left to right on MySQL/MariaDB: `attempts` reads the status before it changes.
        const changed = await claimable(
          trx(t.outbox).whereIn(
            "seq",
            heads.map((head) => head.seq as Knex.Value),
          ),
          at,
        ).update({
          attempts: trx.raw("?? + (case when ?? = 'claimed' then 1 else 0 end)", ["attempts", "status"]),
          status: "claimed",
          claimed_by: owner,
          claim_until: claimUntil,
        });
        claimed = heads;
        // Every head was read under its chat's lock, so the guard holds for each but one whose claim `extend` moved
        // meanwhile: re-read should it fail.
        if (changed !== heads.length) {
          const mine = new Set(
            (
              (await trx(t.outbox)
                .select("seq")
                .whereIn(
                  "seq",
                  heads.map((head) => head.seq as Knex.Value),
                )
                .where({ status: "claimed", claimed_by: owner, claim_until: claimUntil })) as Row[]
            ).map((row) => String(row.seq)),
          );
          claimed = heads.filter((head) => mine.has(String(head.seq)));
        }
      }
      // Every locked chat's head and due time, written back in one UPDATE.
      const mine = new Set(claimed.map((head) => Number(head.seq)));
      const headByChat = new Map(found.map((head) => [chatId(head), head]));
      const values = chats.map((chat) => {
        const head = headByChat.get(chatId(chat));
        const due = head ? headDue(head, mine, claimUntil) : null;
        return [
          String(chat.integration_id),
          String(chat.chat_key),
          head ? Number(head.seq) : Number(chat.head_seq),
          due,
        ] as Knex.Value[];
      });
      await trx.raw(
        `update ?? as c join (${values.map(() => "select ? as i, ? as k, cast(? as signed) as s, cast(? as signed) as d").join(" union all ")}) as v ` +
          "on c.integration_id = v.i and c.chat_key = v.k set c.head_seq = v.s, c.head_due = v.d",
        [t.outboxChats, ...values.flat()],
      );
      return claimed.map((head) => ({
        ...head,
        status: "claimed",
        claimed_by: owner,
        claim_until: claimUntil,
        attempts: Number(head.attempts) + (head.status === "claimed" ? 1 : 0),
      }));
    });
  }

  /**
   * Chats with unfinished items but no due time are made due: items enqueued by a process of a version before the
   * heads (migration 0010) while this one runs, during a rolling upgrade. Every `SWEEP_INTERVAL_MS` of the claims'
   * clock, from the first claim on; chats locked by others are left to the next. On SQLite, where such a process
   * wrote no chat rows, one statement over the open-items index gives those chats their row too.
   */
  let nextSweep = Number.NEGATIVE_INFINITY;
  /** SQLite: the chats with unfinished items (read along the open-items index). */
  const sweepSqliteSql = dueNewSqlite(
    `(select distinct integration_id as i, chat_key as k from ${outboxId} where status in ('pending', 'claimed')) as v`,
  );
  async function sweep(at: number): Promise<void> {
    if (at < nextSweep) return;
    nextSweep = at + SWEEP_INTERVAL_MS;
    if (lite) {
      await lite.query(sweepSqliteSql, []);
      return;
    }
    await inTransaction(async (trx) => {
      const lost: Row[] = await trx(`${t.outboxChats} as c`)
        .select("c.integration_id", "c.chat_key")
        .whereNull("c.head_due")
        .whereExists((open) =>
          open
            .select("o.seq")
            .from(`${t.outbox} as o`)
            .whereRaw("?? = ??", ["o.integration_id", "c.integration_id"])
            .andWhereRaw("?? = ??", ["o.chat_key", "c.chat_key"])
            .whereIn("o.status", UNFINISHED),
        )
        .orderBy(["c.integration_id", "c.chat_key"])
        .forUpdate()
        .skipLocked();
      if (lost.length > 0)
        await inChats(trx(t.outboxChats), lost as unknown as ChatKey[]).update({ head_due: 0 });
    });
  }

  return {
    async enqueue(input, now) {
      checkKey("chatKey", input.chatKey);
      checkKey("dedupeKey", input.dedupeKey);
      const payload = JSON.stringify(input.payload);
      if (payload === undefined) throw new TypeError("outbox payload must be JSON-serialisable");
      return enqueueRows({
        id: randomUUID(),
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
      });
    },

    async claim({ owner, limit, claimTtlMs, now, excludeIntegrations = [] }) {
      if (limit <= 0) return [];
      checkKey("owner", owner);
      const request: ClaimRequest = {
        owner,
        limit,
        at: now.getTime(),
        claimUntil: now.getTime() + claimTtlMs,
        exclude: excludeIntegrations,
      };
      await sweep(request.at);
      const claimed = lite
        ? await lite.transaction((run) => claimSqlite(run, request))
        : dialect === "postgresql"
          ? await claimPostgres(request)
          : await claimMysql(request);
      return claimed.sort((a, b) => Number(a.seq) - Number(b.seq)).map(outboxFromRow);
    },

    complete: (id, owner) => completeItems({ id, owner }),

    async extend(id, owner, claimUntil) {
      return (await held(knex, id, owner).update({ claim_until: claimUntil.getTime() })) === 1;
    },

    fail(id, owner, { retryAt, error, attempted = true }) {
      return changeHeld(id, owner, {
        status: "pending",
        ...(attempted ? { attempts: knex.raw("?? + 1", ["attempts"]) } : {}),
        available_at: retryAt.getTime(),
        last_error: error,
        claimed_by: null,
        claim_until: null,
      });
    },

    markDead(id, owner, error) {
      return changeHeld(id, owner, { status: "dead", last_error: error, claim_until: null });
    },

    cancelAll(integrationId, direction) {
      return inTransaction(async (trx) => {
        // Chat locks first (as claims take them), so a claim in progress finishes before its items vanish.
        await lockChats(trx, dialect, t, { integration_id: integrationId });
        const query = trx(t.outbox).where({ integration_id: integrationId }).whereIn("status", UNFINISHED);
        if (direction !== undefined) query.andWhere({ direction });
        const deleted = await query.delete();
        // Their heads may be gone: the next claim looks again.
        if (deleted > 0)
          await trx(t.outboxChats)
            .where({ integration_id: integrationId })
            .whereNotNull("head_due")
            .update({ head_due: 0 });
        return deleted;
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

    async deadLetters(integrationId, { limit, before }) {
      if (limit <= 0) return [];
      // Along `<prefix>outbox_dead_idx` (migration 0008), newest first.
      const query = knex(t.outbox)
        .where({ integration_id: integrationId, status: "dead" })
        .orderBy("seq", "desc")
        .limit(limit);
      if (before !== undefined) {
        const anchor: Row | undefined = await knex(t.outbox)
          .select("seq")
          .where({ integration_id: integrationId, id: before })
          .first();
        if (!anchor) return [];
        query.andWhere("seq", "<", Number(anchor.seq));
      }
      const rows: Row[] = await query;
      return rows.map(outboxFromRow);
    },

    retryDead(integrationId, id, now) {
      // The item gets a new `seq` (delete and insert again, with its id), so it queues behind the unfinished items of
      // its chat key, and only a head is ever claimed. Under the chat lock, as an enqueue: a claim in progress on the
      // chat finishes first.
      return inTransaction(async (trx) => {
        const found: Row | undefined = await trx(t.outbox)
          .select("chat_key")
          .where({ integration_id: integrationId, id })
          .first();
        if (!found) return "not_found" as const;
        await lockChat(trx, { integration_id: integrationId, chat_key: String(found.chat_key) });
        const row: Row | undefined = await trx(t.outbox)
          .where({ integration_id: integrationId, id })
          .modify((q) => {
            if (dialect !== "sqlite") q.forUpdate();
          })
          .first();
        if (!row) return "not_found" as const;
        if (row.status !== "dead") return "not_dead" as const;
        const { seq: _seq, ...rest } = row;
        if ((await trx(t.outbox).where({ seq: row.seq, status: "dead" }).delete()) !== 1)
          return "not_dead" as const;
        await trx(t.outbox).insert({
          ...rest,
          status: "pending",
          available_at: now.getTime(),
          claimed_by: null,
          claim_until: null,
        });
        await markDue(trx, [{ integration_id: integrationId, chat_key: String(found.chat_key) }]);
        return "retried" as const;
      });
    },

    summary: (integrationId, now) => outboxCounts(now, integrationId),

    // Every integration: unfinished items along the open-items index (SQLite, PostgreSQL) or the due index
    // (MySQL/MariaDB); dead ones along the retention index (migration 0006).
    totals: (now) => outboxCounts(now, null),

    async prune({ doneBefore, deadBefore, limit }) {
      if (limit <= 0) return 0;
      // Oldest first along `<prefix>outbox_retention_idx` (status, created_at): each select reads at most `limit`
      // entries of the index. PostgreSQL has no DELETE ... LIMIT, so the rows are picked first and deleted by key;
      // the status condition again keeps an item put back meanwhile (a retried dead letter gets a new key anyway).
      const pick = (status: "done" | "dead", before: Date, max: number) =>
        knex(t.outbox)
          .select("seq")
          .where({ status })
          .andWhere("created_at", "<", before.getTime())
          .orderBy("created_at", "asc")
          .limit(max) as Promise<Row[]>;
      let deleted = 0;
      for (const [status, before] of [
        ["done", doneBefore],
        ["dead", deadBefore],
      ] as const) {
        if (deleted >= limit) break;
        const rows = await pick(status, before, limit - deleted);
        if (rows.length === 0) continue;
        deleted += await knex(t.outbox)
          .whereIn(
            "seq",
            rows.map((row) => Number(row.seq)),
          )
          .andWhere({ status })
          .delete();
      }
      return deleted;
    },
  };
}
