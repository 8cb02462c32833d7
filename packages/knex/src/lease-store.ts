import type { Lease, LeaseStore } from "@ryze/chatwoot-core/store";
import type { Knex } from "knex";
import { checkKey, leaseFromRow, type Row } from "./codec.js";
import type { StoreContext } from "./context.js";
import { insertUnlessDuplicate } from "./dialect.js";

/** Re-reads after a lost compare-and-set; a lease changes hands at most once per expiry, so this is plenty. */
const MAX_ROUNDS = 4;
/** Names per renewal statement: far below every dialect's limit on bound parameters. */
const RENEW_CHUNK = 500;

/**
 * Leases are compare-and-set on `(name, epoch)`: every change of owner increments the epoch, so an UPDATE
 * guarded by the epoch it read (and, for a takeover, by "still expired or released") applies only if nobody
 * else changed owner in between.
 */
export function createLeaseStore({ knex, dialect, tables: t }: StoreContext): LeaseStore {
  const read = async (name: string): Promise<Row | undefined> => knex(t.leases).where({ name }).first();

  return {
    async acquire(name, owner, ttlMs, now) {
      checkKey("lease name", name);
      checkKey("lease owner", owner);
      const expiresAt = now.getTime() + ttlMs;
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const current = await read(name);
        if (!current) {
          const row = { name, owner, epoch: 1, expires_at: expiresAt };
          if (await insertUnlessDuplicate(knex, dialect, t.leases, row, ["name"])) return leaseFromRow(row);
          continue;
        }
        const epoch = Number(current.epoch);
        if (current.owner === owner) {
          const renewed = await knex(t.leases)
            .where({ name, owner, epoch })
            .update({ expires_at: expiresAt });
          if (renewed === 1) return leaseFromRow({ name, owner, epoch, expires_at: expiresAt });
          continue;
        }
        const free = current.owner === null || Number(current.expires_at) <= now.getTime();
        if (!free) return null;
        const taken = await knex(t.leases)
          .where({ name, epoch })
          .andWhere((guard) => guard.whereNull("owner").orWhere("expires_at", "<=", now.getTime()))
          .update({ owner, epoch: epoch + 1, expires_at: expiresAt });
        if (taken === 1) return leaseFromRow({ name, owner, epoch: epoch + 1, expires_at: expiresAt });
      }
      return null;
    },

    async renew(owner, held, ttlMs, now) {
      const expiresAt = now.getTime() + ttlMs;
      const renewed: Lease[] = [];
      for (let start = 0; start < held.length; start += RENEW_CHUNK) {
        // One statement per chunk, guarded by (name, epoch) pairs grouped by epoch (few distinct values).
        const byEpoch = new Map<number, string[]>();
        for (const { name, epoch } of held.slice(start, start + RENEW_CHUNK))
          byEpoch.set(epoch, [...(byEpoch.get(epoch) ?? []), name]);
        const guard = (query: Knex.QueryBuilder) =>
          query.where({ owner }).andWhere((pairs) => {
            for (const [epoch, names] of byEpoch)
              pairs.orWhere((pair) => pair.where({ epoch }).whereIn("name", names));
          });
        const count = await guard(knex(t.leases)).update({ expires_at: expiresAt });
        if (count === 0) continue;
        // Nobody can take a lease over between the two statements: it was just extended.
        const rows: Row[] = await guard(knex(t.leases))
          .where({ expires_at: expiresAt })
          .select("name", "epoch");
        for (const row of rows)
          renewed.push(leaseFromRow({ name: row.name, owner, epoch: row.epoch, expires_at: expiresAt }));
      }
      return renewed;
    },

    async release(name, owner) {
      return (await knex(t.leases).where({ name, owner }).update({ owner: null, expires_at: 0 })) > 0;
    },

    async list(prefix) {
      // LIKE with escaped wildcards: the prefix is data, not a pattern.
      const pattern = `${prefix.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
      const rows: Row[] = await knex(t.leases)
        .whereRaw("?? like ? escape ?", ["name", pattern, "\\"])
        .whereNotNull("owner")
        .orderBy("name", "asc");
      // SQLite's LIKE ignores ASCII case: keep exact prefix matches only.
      return rows
        .filter((row) => String(row.name).startsWith(prefix))
        .map((row) => leaseFromRow({ ...row, owner: String(row.owner) }));
    },

    async get(name): Promise<Lease | null> {
      const row = await read(name);
      return row && row.owner !== null && row.owner !== undefined
        ? leaseFromRow({ ...row, owner: String(row.owner) })
        : null;
    },
  };
}
