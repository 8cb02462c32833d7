import { createRetention } from "@ryze/chatwoot-core/testing";
import { createTestDatabase } from "@ryze/chatwoot-testkit/databases";
import knexFactory, { type Knex } from "knex";
import { describe, expect, it } from "vitest";
import { chatwootMigrations, createKnexStore, migrate } from "./index.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Traffic at 10 messages a second, an hour at a time: each simulated hour inserts its 36,000 finished items in one
 * statement (1 in 100 a dead letter), spread over the hour, then one retention round runs at the end of that hour on the
 * controllable clock. Retention is shortened (done items 1 hour, dead letters 6 hours) so that a week is many retention
 * periods long; the bound it must keep is what those periods hold at that rate, plus one hour of lag.
 */
async function simulate(db: Knex, hours: number) {
  await migrate(db, { tablePrefix: "ret_" });
  const store = createKnexStore(db, { tablePrefix: "ret_" });
  let now = Date.UTC(2030, 0, 1);
  const clock = { now: () => new Date(now) };
  const retentionOf = (owner: string) =>
    createRetention({
      outbox: store.outbox,
      leases: store.leases,
      clock,
      logger: silent,
      owner,
      doneMs: HOUR,
      deadMs: 6 * HOUR,
      batchSize: 5_000,
      maxBatches: 20,
      intervalMs: HOUR,
    });
  const retention = retentionOf("process-a");
  // A second process of the cluster: it never prunes while the first holds the job.
  const other = retentionOf("process-b");
  const count = async () =>
    Number(((await db("ret_outbox").count({ n: "*" })) as Array<{ n: number | string }>)[0]!.n);
  let largest = 0;
  let deleted = 0;
  for (let hour = 0; hour < hours; hour++) {
    await insertHour(db, hour, now);
    now += HOUR;
    largest = Math.max(largest, await count());
    deleted += (await retention.runOnce()) ?? 0;
    expect(await other.runOnce()).toBeNull();
  }
  const final = await count();
  const dead = Number(
    (
      (await db("ret_outbox").where({ status: "dead" }).count({ n: "*" })) as Array<{ n: number | string }>
    )[0]!.n,
  );
  await retention.stop();
  return { inserted: hours * PER_HOUR, largest, final, dead, deleted };
}

const PER_HOUR = 36_000;

/** One hour's items (10 a second, each 100 ms after the previous one), in one statement. */
async function insertHour(db: Knex, hour: number, start: number): Promise<void> {
  const client = String(db.client.config.client);
  const first = hour * PER_HOUR;
  const columns = `id, integration_id, direction, chat_key, dedupe_key, payload, status, attempts, available_at,
    claimed_by, claim_until, last_error, created_at`;
  const values = `'o' || (? + i), 'int_week', 'inbound', 'in:' || (i % 50), 'wa:' || (? + i), '{}',
    case when i % 100 = 0 then 'dead' else 'done' end, 1, ? + i * 100, null, null, '', ? + i * 100`;
  const bindings = [first, first, start, start];
  if (client === "pg") {
    await db.raw(
      `insert into ret_outbox (${columns}) select ${values.replaceAll("? + i", "?::bigint + i")} from generate_series(0, ${PER_HOUR - 1}) as i`,
      bindings,
    );
    return;
  }
  if (client === "mysql2") {
    // MariaDB: its sequence engine gives the numbers; `||` is `or` there, so concat().
    await db.raw(
      `insert into ret_outbox (${columns}) select concat('o', ? + seq), 'int_week', 'inbound', concat('in:', seq % 50),
         concat('wa:', ? + seq), '{}', case when seq % 100 = 0 then 'dead' else 'done' end, 1, ? + seq * 100, null, null,
         '', ? + seq * 100 from seq_0_to_${PER_HOUR - 1}`,
      bindings,
    );
    return;
  }
  await db.raw(
    `with recursive n(i) as (select 0 union all select i + 1 from n where i < ${PER_HOUR - 1})
     insert into ret_outbox (${columns}) select ${values} from n`,
    bindings,
  );
}

// Done items of the last two hours (the retention hour and the hour of lag between two rounds), dead letters of the
// last seven, at 10 a second.
const BOUND = 2 * 35_640 + 7 * 360;
// What must be kept: done items of the last hour, dead letters of the last six hours.
const KEPT = 35_640 + 6 * 360;

describe("outbox retention", () => {
  it("keeps the outbox under a fixed number of rows through a simulated week at 10 messages/s (SQLite)", async () => {
    const db = knexFactory({
      client: "better-sqlite3",
      connection: { filename: ":memory:" },
      useNullAsDefault: true,
    });
    try {
      const week = await simulate(db, 7 * 24);
      console.log("retention, a simulated week on SQLite:", week);
      expect(week.inserted).toBe(6_048_000);
      expect(week.largest).toBeLessThanOrEqual(BOUND);
      expect(week.final).toBeLessThanOrEqual(BOUND);
      expect(week.final).toBeGreaterThanOrEqual(KEPT);
      expect(week.dead).toBe(6 * 360);
      expect(week.deleted).toBe(week.inserted - week.final);
    } finally {
      await db.destroy();
    }
  }, 600_000);

  it("finds each batch through the retention index of migration 0006, which rolls back (SQLite)", async () => {
    const db = knexFactory({
      client: "better-sqlite3",
      connection: { filename: ":memory:" },
      useNullAsDefault: true,
    });
    try {
      await migrate(db, { tablePrefix: "ix_" });
      const statements: Array<{ sql: string; bindings: readonly unknown[] }> = [];
      const onQuery = (query: { sql: string; bindings?: readonly unknown[] }) =>
        statements.push({ sql: query.sql, bindings: query.bindings ?? [] });
      db.on("query", onQuery);
      await createKnexStore(db, { tablePrefix: "ix_" }).outbox.prune({
        doneBefore: new Date(HOUR),
        deadBefore: new Date(HOUR),
        limit: 10,
      });
      db.removeListener("query", onQuery);
      const picks = statements.filter((statement) => statement.sql.startsWith("select"));
      expect(picks).toHaveLength(2);
      for (const pick of picks) {
        const plan = (await db.raw(
          `explain query plan ${pick.sql}`,
          pick.bindings as Knex.RawBinding[],
        )) as Array<{
          detail: string;
        }>;
        // One descent to the oldest finished items of a status, then along the index: no scan, no sort.
        expect(plan.map((row) => row.detail)).toEqual([
          expect.stringMatching(
            /^SEARCH ix_outbox USING (COVERING )?INDEX ix_outbox_retention_idx \(status=\? AND created_at<\?\)$/,
          ),
        ]);
      }
      const source = chatwootMigrations({ tablePrefix: "ix_" });
      const options = { migrationSource: source, tableName: source.tableName };
      const hasIndex = async () =>
        (
          (await db.raw(
            "select name from sqlite_master where type = 'index' and name = 'ix_outbox_retention_idx'",
          )) as unknown[]
        ).length === 1;
      expect(await hasIndex()).toBe(true);
      await db.migrate.down({ ...options, name: "0006_outbox_retention_index" });
      expect(await hasIndex()).toBe(false);
      await db.migrate.latest(options);
      expect(await hasIndex()).toBe(true);
    } finally {
      await db.destroy();
    }
  });

  for (const kind of ["postgres", "mariadb"] as const) {
    it(`keeps the outbox under the same bound through 8 simulated hours at 10 messages/s (${kind})`, async (context) => {
      const database = await createTestDatabase(kind, "cw_retention");
      if (!database) return context.skip();
      const db = database.connect({ poolMax: 2 });
      try {
        // Past both retention periods (1 and 6 hours); the week itself runs on SQLite, which needs no server.
        const day = await simulate(db, 8);
        console.log(`retention, 8 simulated hours on ${kind}:`, day);
        expect(day.dead).toBe(6 * 360);
        expect(day.largest).toBeLessThanOrEqual(BOUND);
        expect(day.final).toBeGreaterThanOrEqual(KEPT);
        expect(day.deleted).toBe(day.inserted - day.final);
      } finally {
        await db.destroy();
        await database.drop();
      }
    }, 600_000);
  }
});
