// Test support (not built): the storage conformance suite and migration checks for one knex database.
import { runStoreConformance, type StoreRaw } from "@ryze/chatwoot-testkit/conformance";
import type { Knex } from "knex";
import { describe, expect, it } from "vitest";
import { chatwootMigrations, chatwootTableNames, createKnexStore, migrate } from "./index.js";

/** Reads what the store wrote with plain SQL. */
function rawFor(db: Knex, tablePrefix?: string): StoreRaw {
  const { migrations: _migrations, ...tables } = chatwootTableNames(tablePrefix);
  return {
    integrationRow: async (id) => (await db(tables.integrations).where({ id }).first()) ?? null,
    dump: async () =>
      Object.fromEntries(
        await Promise.all(Object.values(tables).map(async (name) => [name, await db(name)])),
      ),
  };
}

async function emptyTables(db: Knex, tablePrefix?: string): Promise<void> {
  const { migrations: _migrations, ...tables } = chatwootTableNames(tablePrefix);
  for (const table of Object.values(tables)) await db(table).delete();
}

/**
 * Migrates `db`, runs the conformance suite under the default prefix and under `cw2_` (migrated through
 * knex's own migrator with the exported source), and checks that the migrations roll back.
 */
export async function runKnexStoreSuite(label: string, db: Knex): Promise<void> {
  await migrate(db);
  runStoreConformance({
    name: `knex (${label})`,
    createStore: () => createKnexStore(db),
    reset: () => emptyTables(db),
    raw: () => rawFor(db),
  });

  const source = chatwootMigrations({ tablePrefix: "cw2_" });
  await db.migrate.latest({ migrationSource: source, tableName: source.tableName });
  runStoreConformance({
    // The second run also takes knex's own path for every statement (`preparedStatements: false`), so both paths
    // pass the whole suite.
    name: `knex (${label}, prefix cw2_, preparedStatements: false)`,
    createStore: () => createKnexStore(db, { tablePrefix: "cw2_", preparedStatements: false }),
    reset: () => emptyTables(db, "cw2_"),
    raw: () => rawFor(db, "cw2_"),
  });

  /** The names of a table's indexes. */
  const indexesOf = async (table: string): Promise<string[]> => {
    const dialect = db.client.dialect as string;
    const rows: Array<Record<string, string>> =
      dialect === "sqlite3"
        ? await db.raw("select name from sqlite_master where type = 'index' and tbl_name = ?", [table])
        : dialect === "postgresql"
          ? (
              await db.raw(
                "select indexname as name from pg_indexes where tablename = ? and schemaname = current_schema()",
                [table],
              )
            ).rows
          : (
              await db.raw(
                "select distinct index_name as name from information_schema.statistics " +
                  "where table_schema = database() and table_name = ?",
                [table],
              )
            )[0];
    return rows.map((row) => String(row.name ?? row.NAME));
  };

  describe(`knex migrations on ${label}`, () => {
    it("run through knex.migrate with their own bookkeeping table, and roll back", async () => {
      const other = chatwootMigrations({ tablePrefix: "mig_", migrationsTableName: "mig_history" });
      expect(other.tableName).toBe("mig_history");
      await db.migrate.latest({ migrationSource: other, tableName: other.tableName });
      const [done, pending] = (await db.migrate.list({
        migrationSource: other,
        tableName: other.tableName,
      })) as [unknown[], unknown[]];
      expect([done.length, pending.length]).toEqual([(await other.getMigrations([])).length, 0]);
      expect(await db.schema.hasTable("mig_outbox_chats")).toBe(true);
      expect(await db.schema.hasTable("mig_history")).toBe(true);
      await migrate(db, { tablePrefix: "mig_", migrationsTableName: "mig_history" }); // idempotent

      // The prefixes are separate: what one store writes, the other does not see.
      const store = createKnexStore(db, { tablePrefix: "mig_" });
      const now = new Date(1_900_000_000_000);
      const { id } = await store.outbox.enqueue(
        { integrationId: "int_m", direction: "inbound", chatKey: "c", dedupeKey: "d", payload: { ok: true } },
        now,
      );
      expect(await store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 1_000, now })).toMatchObject([
        { id, payload: { ok: true } },
      ]);
      expect(await db("mig_outbox").where({ id }).first()).toMatchObject({
        status: "claimed",
        claimed_by: "w",
      });
      expect(await db("chatwoot_outbox").where({ id }).first()).toBeUndefined();

      await db.migrate.rollback({ migrationSource: other, tableName: other.tableName }, true);
      for (const table of [
        "integrations",
        "chat_mappings",
        "message_mappings",
        "outbox",
        "outbox_chats",
        "leases",
      ]) {
        expect(await db.schema.hasTable(`mig_${table}`)).toBe(false);
      }
      expect(await db.schema.hasTable("chatwoot_integrations")).toBe(true);
      expect(await db.schema.hasTable("cw2_integrations")).toBe(true);
    });

    it("keep on the outbox the indexes its reads use, and roll back one step at a time", async () => {
      const source = chatwootMigrations({ tablePrefix: "idx_", migrationsTableName: "idx_history" });
      const options = { migrationSource: source, tableName: source.tableName };
      // Up to 0004 (later migrations are checked on their own).
      for (let step = 0; step < 4; step++) await db.migrate.up(options);
      const indexes = async () =>
        (await indexesOf("idx_outbox"))
          .map((name) => name.replace(/^idx_outbox_/, ""))
          .filter((name) => !/^(sqlite_autoindex_|pkey$|PRIMARY$)/.test(name))
          .sort();
      const mysql = db.client.dialect === "mysql" || db.client.dialect === "mysql2";
      const full = ["chat_idx", "claim_idx", "dedupe_uq", "due_idx", "id_uq"];
      // SQLite and PostgreSQL: the open-items index replaces the chat, due and claim indexes (writes touch fewer).
      expect(await indexes()).toEqual(mysql ? full : ["dedupe_uq", "id_uq", "open_idx"]);
      await db.migrate.down(options); // 0004: integrations only
      expect(await indexes()).toEqual(mysql ? full : ["dedupe_uq", "id_uq", "open_idx"]);
      await db.migrate.down(options);
      expect(await indexes()).toEqual(mysql ? full : [...full, "open_idx"].sort());
      await db.migrate.down(options);
      expect(await indexes()).toEqual(full);
      await db.migrate.rollback(options, true);
      expect(await db.schema.hasTable("idx_outbox")).toBe(false);
    });

    it("0008 indexes the newest mappings per direction and the dead letters, and rolls back", async () => {
      const source = chatwootMigrations({ tablePrefix: "m8_", migrationsTableName: "m8_history" });
      const options = { migrationSource: source, tableName: source.tableName };
      await db.migrate.latest(options);
      expect(await indexesOf("m8_outbox")).toContain("m8_outbox_dead_idx");
      expect(await indexesOf("m8_message_mappings")).toContain("m8_message_mappings_recent_idx");
      await db.migrate.down({ ...options, name: "0008_status_indexes" });
      expect(await indexesOf("m8_outbox")).not.toContain("m8_outbox_dead_idx");
      expect(await indexesOf("m8_message_mappings")).not.toContain("m8_message_mappings_recent_idx");
      await db.migrate.latest(options);
      expect(await indexesOf("m8_outbox")).toContain("m8_outbox_dead_idx");
      await db.migrate.rollback(options, true);
      expect(await db.schema.hasTable("m8_outbox")).toBe(false);
    });

    it("claims lock chat keys with FOR UPDATE SKIP LOCKED (PostgreSQL, MySQL: the due chats, then their heads) or are one write transaction on SQLite", async () => {
      const statements: string[] = [];
      const bindings: Knex.RawBinding[][] = [];
      const onQuery = (query: { sql: string; bindings?: Knex.RawBinding[] }) => {
        statements.push(query.sql.toLowerCase());
        bindings.push(query.bindings ?? []);
      };
      const store = createKnexStore(db);
      const now = new Date(1_900_000_000_000);
      await store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 1_000, now }); // the first also sweeps
      await store.outbox.enqueue(
        { integrationId: "int_lock", direction: "inbound", chatKey: "c", dedupeKey: "d", payload: 1 },
        now,
      );
      db.on("query", onQuery);
      try {
        await store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 1_000, now });
      } finally {
        db.removeListener("query", onQuery);
      }
      if (db.client.dialect === "sqlite3") {
        // One write transaction (nothing runs in between): the due chats with their heads, the claim, the heads
        // written back.
        expect(statements).toEqual([
          "begin immediate",
          expect.stringMatching(
            /^select c\.integration_id, .* from `chatwoot_outbox_chats` as c left join `chatwoot_outbox` as o .* where c\.head_due <= \? order by c\.head_due limit \?$/,
          ),
          expect.stringMatching(
            /^with chosen\(seq\) as \(.*\) update `chatwoot_outbox` not indexed set .* returning \*$/,
          ),
          expect.stringMatching(
            /^update `chatwoot_outbox_chats` as c set head_seq = v\.s, head_due = v\.d from/,
          ),
          "commit",
        ]);
        // The due chats along their due index, each head one descent of the open-items index: neither reads the
        // chats without work nor a chat's items one by one.
        const plan = (await db.raw(`explain query plan ${statements[1]}`, bindings[1]!)) as Array<{
          detail: string;
        }>;
        expect(plan.map((row) => row.detail)).toEqual(
          expect.arrayContaining([
            "SEARCH c USING INDEX chatwoot_outbox_chats_due_idx (head_due<?)",
            "SEARCH p USING COVERING INDEX chatwoot_outbox_open_idx (integration_id=? AND chat_key=? AND seq>?)",
          ]),
        );
      } else if (db.client.dialect === "postgresql") {
        // One READ COMMITTED transaction: the due chats locked, skipping those another claimer holds, then (in a
        // snapshot taken after the locks) their heads claimed and written back.
        expect(statements).toEqual([
          "begin isolation level read committed",
          expect.stringMatching(
            /^select integration_id, chat_key, head_seq from "chatwoot_outbox_chats" where head_due <= \$1 order by head_due limit \$2 for update skip locked$/,
          ),
          expect.stringMatching(
            /^with l as .* claimed as \(update "chatwoot_outbox" set .*, heads as \(update "chatwoot_outbox_chats" .* select \* from claimed$/,
          ),
          "commit",
        ]);
      } else {
        const chatLocks = statements.filter((sql) => sql.includes("chatwoot_outbox_chats"));
        expect(chatLocks.some((sql) => sql.includes("for update skip locked"))).toBe(true);
      }
    });

    it("0004 adds the nullable signing_secret and chatwoot_version to rows activated before it, and rolls back", async () => {
      const source = chatwootMigrations({ tablePrefix: "m4_", migrationsTableName: "m4_history" });
      const options = { migrationSource: source, tableName: source.tableName };
      // Up to 0004 (later migrations are checked on their own).
      for (let step = 0; step < 4; step++) await db.migrate.up(options);
      await db.migrate.down(options);
      expect(await db.schema.hasColumn("m4_integrations", "signing_secret")).toBe(false);
      expect(await db.schema.hasColumn("m4_integrations", "chatwoot_version")).toBe(false);
      // A row written by the schema before 0004 (an integration activated by an earlier release).
      await db("m4_integrations").insert({
        id: "int_before0004",
        instance: "suporte",
        status: "active",
        version: 3,
        base_url: "https://chatwoot.example.test",
        account_id: 1,
        api_token: "cw1:k1:sealed",
        webhook_secret: null,
        inbox_id: 7,
        inbox_name: "WhatsApp",
        chatwoot_user_id: 2,
        delivery_mode: "webhook",
        sign_messages: false,
        ignore_groups: false,
        start_as_pending: false,
        reopen_resolved: false,
        last_error: "",
        provisioning_until: null,
        created_at: 1,
        updated_at: 2,
      });
      await db.migrate.latest(options);
      const store = createKnexStore(db, { tablePrefix: "m4_" });
      expect(await store.integrations.getById("int_before0004")).toMatchObject({
        version: 3,
        signingSecret: null,
        chatwootVersion: null,
      });
      const updated = await store.integrations.update("int_before0004", 3, {
        signingSecret: "cw1:k1:signing",
        chatwootVersion: "4.13.0",
      });
      expect(updated).toMatchObject({
        version: 4,
        signingSecret: "cw1:k1:signing",
        chatwootVersion: "4.13.0",
      });
      await expect(
        store.integrations.update("int_before0004", 4, { chatwootVersion: "4".repeat(65) }),
      ).rejects.toThrow(RangeError);
      await db.migrate.down(options);
      expect(await db("m4_integrations").where({ id: "int_before0004" }).first()).toMatchObject({
        version: 4,
      });
      await db.migrate.rollback(options, true);
      expect(await db.schema.hasTable("m4_integrations")).toBe(false);
    });

    it("0010 gives the chats with unfinished items a due head: items enqueued before it are claimed after it, in order; it rolls back", async () => {
      const source = chatwootMigrations({ tablePrefix: "h10_", migrationsTableName: "h10_history" });
      const options = { migrationSource: source, tableName: source.tableName };
      const names = (await source.getMigrations([])).map((migration) => source.getMigrationName(migration));
      const before = names.indexOf("0010_outbox_chat_heads");
      for (let step = 0; step < before; step++) await db.migrate.up(options);
      const dialect = db.client.dialect as string;
      const sqlite = dialect === "sqlite3";
      // Rows written by a release before 0010: its enqueues made the chat rows (PostgreSQL, MySQL) and the items.
      const now = 1_900_000_000_000;
      const row = (seq: number, chat: string, status: string, extra: Record<string, unknown> = {}) => ({
        seq,
        id: `id_${seq}`,
        integration_id: "int_h",
        direction: "inbound",
        chat_key: chat,
        dedupe_key: `d${seq}`,
        payload: JSON.stringify(seq),
        status,
        attempts: 0,
        available_at: now - 10_000,
        claimed_by: null,
        claim_until: null,
        last_error: "",
        created_at: now - 10_000,
        ...extra,
      });
      if (!sqlite)
        await db("h10_outbox_chats").insert(
          ["busy", "expired", "finished"].map((chat) => ({ integration_id: "int_h", chat_key: chat })),
        );
      await db("h10_outbox").insert([
        row(1, "busy", "done"),
        row(2, "busy", "pending"),
        row(3, "expired", "claimed", { claimed_by: "gone", claim_until: now - 1 }),
        row(4, "busy", "pending"),
        row(5, "finished", "done"),
        row(6, "expired", "pending"),
      ]);
      await db.migrate.up(options);
      const heads = await db("h10_outbox_chats")
        .orderBy("chat_key")
        .select("chat_key", "head_seq", "head_due");
      // The chats with unfinished items are due now; SQLite's, which had no rows, got one.
      expect(heads.map((head) => [head.chat_key, Number(head.head_seq), head.head_due])).toEqual([
        ["busy", 0, expect.anything()],
        ["expired", 0, expect.anything()],
        ...(sqlite ? [] : [["finished", 0, null]]),
      ]);
      expect(heads.slice(0, 2).map((head) => Number(head.head_due))).toEqual([0, 0]);
      const store = createKnexStore(db, { tablePrefix: "h10_" });
      const claim = () =>
        store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 60_000, now: new Date(now) });
      const first = await claim();
      expect(first.map((item) => [item.id, item.attempts])).toEqual([
        ["id_2", 0],
        ["id_3", 1],
      ]);
      expect(await claim()).toEqual([]);
      for (const item of first) expect(await store.outbox.complete(item.id, "w")).toBe(true);
      expect((await claim()).map((item) => item.id)).toEqual(["id_4", "id_6"]);
      await db.migrate.down(options);
      expect(await db.schema.hasColumn("h10_outbox_chats", "head_due")).toBe(false);
      expect(await db.schema.hasColumn("h10_outbox_chats", "head_seq")).toBe(false);
      if (dialect === "mysql" || dialect === "mysql2")
        expect(await indexesOf("h10_outbox")).toEqual(
          expect.arrayContaining(["h10_outbox_chat_idx", "h10_outbox_due_idx", "h10_outbox_claim_idx"]),
        );
      await db.migrate.rollback(options, true);
      expect(await db.schema.hasTable("h10_outbox")).toBe(false);
    });

    it("claims find, at the next sweep, the items a release before 0010 enqueues meanwhile (a rolling upgrade)", async () => {
      const source = chatwootMigrations({ tablePrefix: "sw_", migrationsTableName: "sw_history" });
      const options = { migrationSource: source, tableName: source.tableName };
      await db.migrate.latest(options);
      const store = createKnexStore(db, { tablePrefix: "sw_" });
      const start = 1_900_000_000_000;
      const claimAt = (at: number) =>
        store.outbox.claim({ owner: "w", limit: 5, claimTtlMs: 60_000, now: new Date(at) });
      await store.outbox.enqueue(
        { integrationId: "int_s", direction: "inbound", chatKey: "new", dedupeKey: "n", payload: 1 },
        new Date(start),
      );
      const [fresh] = await claimAt(start);
      expect(fresh?.dedupeKey).toBe("n");
      expect(await store.outbox.complete(fresh!.id, "w")).toBe(true);
      // An earlier release's enqueue: the chat row without a due head (PostgreSQL, MySQL; none on SQLite), then the
      // item.
      if (db.client.dialect !== "sqlite3")
        await db("sw_outbox_chats").insert({ integration_id: "int_s", chat_key: "old" });
      await db("sw_outbox").insert({
        id: "old_1",
        integration_id: "int_s",
        direction: "inbound",
        chat_key: "old",
        dedupe_key: "o",
        payload: "1",
        status: "pending",
        attempts: 0,
        available_at: start,
        claimed_by: null,
        claim_until: null,
        last_error: "",
        created_at: start,
      });
      expect((await claimAt(start + 1_000)).map((item) => item.dedupeKey)).toEqual([]);
      expect((await claimAt(start + 59_999)).map((item) => item.dedupeKey)).toEqual([]);
      expect((await claimAt(start + 60_000)).map((item) => item.dedupeKey)).toEqual(["o"]);
      await db.migrate.rollback(options, true);
    });

    it("refuses an unusable table prefix", () => {
      expect(() => createKnexStore(db, { tablePrefix: "bad-prefix" })).toThrow(/tablePrefix/);
      expect(() => chatwootMigrations({ tablePrefix: "x".repeat(40) })).toThrow(/tablePrefix/);
    });
  });
}
