import type { IntegrationRow, IntegrationStore } from "@ryze/chatwoot-core/store";
import { batched } from "./batch.js";
import { integrationColumns, integrationFromRow, integrationInsertColumns, type Row } from "./codec.js";
import type { StoreContext } from "./context.js";
import { isUniqueViolation } from "./dialect.js";
import { lockChats } from "./outbox-store.js";
import { createPreparedQuery } from "./prepared.js";

export function createIntegrationStore({
  knex,
  dialect,
  tables: t,
  inTransaction,
  preparedStatements,
}: StoreContext): IntegrationStore {
  /**
   * Reads by a unique column; concurrent reads (every routed message reads its integration) share a statement, on
   * PostgreSQL and SQLite a prepared one whose text serves every batch (the keys bound as one value).
   */
  const prepared = preparedStatements && dialect !== "mysql" ? createPreparedQuery(knex) : null;
  const table = knex.client.wrapIdentifier(t.integrations);
  const readBy = (column: "id" | "instance") => {
    const sql =
      dialect === "postgresql"
        ? `select * from ${table} where ${column} = any($1::text[])`
        : `select * from ${table} where ${column} in (select value from json_each(?))`;
    return batched(async (keys: string[]): Promise<(IntegrationRow | null)[]> => {
      const unique = [...new Set(keys)];
      const rows: Row[] = prepared
        ? await prepared(sql, [dialect === "postgresql" ? unique : JSON.stringify(unique)])
        : await knex(t.integrations).whereIn(column, unique);
      const byKey = new Map(rows.map((row) => [String(row[column]), row]));
      return keys.map((key) => {
        const row = byKey.get(key);
        return row ? integrationFromRow(row) : null;
      });
    });
  };
  const byInstance = readBy("instance");
  const byId = readBy("id");

  return {
    async insert(row) {
      const columns = integrationInsertColumns(row);
      try {
        // A single autocommit statement, so catching the violation is safe on PostgreSQL too (two unique keys:
        // id and instance, which one `ON CONFLICT` target could not both cover).
        await knex(t.integrations).insert(columns);
      } catch (error) {
        if (isUniqueViolation(error)) return null;
        throw error;
      }
      return integrationFromRow(columns);
    },

    get: (instance) => byInstance(instance),
    getById: (id) => byId(id),

    async list(options = {}) {
      const query = knex(t.integrations).select("*").orderBy("id", "asc");
      if (options.afterId !== undefined) query.where("id", ">", options.afterId);
      if (options.limit !== undefined) query.limit(Math.max(0, options.limit));
      const rows: Row[] = await query;
      return rows.map(integrationFromRow);
    },

    update(id, expectedVersion, patch) {
      // The UPDATE keeps the row locked until commit, so the read-back returns exactly this writer's result.
      return inTransaction(async (trx) => {
        const changed = await trx(t.integrations)
          .where({ id, version: expectedVersion })
          .update({ ...integrationColumns(patch), version: expectedVersion + 1 });
        if (changed !== 1) return null;
        const row: Row | undefined = await trx(t.integrations).where({ id }).first();
        return row ? integrationFromRow(row) : null;
      });
    },

    delete(id, expectedVersion) {
      return inTransaction(async (trx) => {
        const query = trx(t.integrations).where({ id });
        if (expectedVersion !== undefined) query.andWhere({ version: expectedVersion });
        if ((await query.delete()) === 0) return false;
        // Chat locks first, as claims take them: a claimer is never left waiting on a half-deleted chat.
        await lockChats(trx, dialect, t, { integration_id: id });
        for (const table of [
          t.outbox,
          t.outboxChats,
          t.chatMappings,
          t.messageMappings,
          t.identityLinks,
          t.chatHistory,
        ]) {
          await trx(table).where({ integration_id: id }).delete();
        }
        return true;
      });
    },
  };
}
