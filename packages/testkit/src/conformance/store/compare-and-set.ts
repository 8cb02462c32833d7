import { expect } from "vitest";
import { inParallel, integrationFixture } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

/** Guarded writes under real concurrency: exactly one winner, `null`/`false` for every loser. */
export const compareAndSetChecks: StoreCheckGroup = {
  title: "compare-and-set",
  checks: {
    "exactly one of N concurrent updates at the same version wins; the losers get null": async (context) => {
      const { store, concurrency } = context;
      const { row } = integrationFixture({ status: "paused" });
      await store.integrations.insert(row);
      const results = await inParallel(concurrency, (i) =>
        store.integrations.update(row.id, 1, { status: "provisioning", lastError: `writer-${i}` }),
      );
      const winners = results.filter((r) => r !== null);
      expect(winners, "exactly one concurrent update at one version wins").toHaveLength(1);
      expect(winners[0]?.version).toBe(2);
      const stored = await store.integrations.getById(row.id);
      expect(stored?.version).toBe(2);
      expect(stored?.lastError).toBe(winners[0]?.lastError);
    },

    "a stale expected version is refused and leaves the row unchanged": async ({ store }) => {
      const { row } = integrationFixture();
      await store.integrations.insert(row);
      const v2 = await store.integrations.update(row.id, 1, { lastError: "first" });
      expect(v2?.version).toBe(2);
      expect(
        await store.integrations.update(row.id, 1, { lastError: "stale" }),
        "an update at a stale version is refused",
      ).toBeNull();
      expect(
        await store.integrations.update(row.id, 3, { lastError: "future" }),
        "an update at a future version is refused",
      ).toBeNull();
      expect(await store.integrations.getById(row.id)).toEqual(v2);
    },

    "versions chain: each update expects the version the previous one returned": async ({ store }) => {
      const { row } = integrationFixture();
      await store.integrations.insert(row);
      let version = 1;
      for (let i = 0; i < 5; i++) {
        const next = await store.integrations.update(row.id, version, { inboxName: `name-${i}` });
        expect(next?.version).toBe(version + 1);
        version = next!.version;
      }
      expect((await store.integrations.getById(row.id))?.inboxName).toBe("name-4");
    },

    "exactly one of N concurrent inserts for one instance wins (instance is unique)": async ({
      store,
      concurrency,
    }) => {
      const instance = integrationFixture().row.instance;
      const results = await inParallel(concurrency, () =>
        store.integrations.insert(integrationFixture({ instance }).row),
      );
      const winners = results.filter((r) => r !== null);
      expect(winners).toHaveLength(1);
      expect((await store.integrations.get(instance))?.id).toBe(winners[0]?.id);
      expect((await store.integrations.list()).filter((r) => r.instance === instance)).toHaveLength(1);
    },

    "an insert with an existing id is refused": async ({ store }) => {
      const { row } = integrationFixture();
      await store.integrations.insert(row);
      const clash = integrationFixture({ id: row.id }).row;
      expect(await store.integrations.insert(clash)).toBeNull();
      expect(await store.integrations.get(clash.instance)).toBeNull();
      expect(await store.integrations.getById(row.id)).toEqual(row);
    },

    "a guarded delete racing updates at the same version: exactly one of them succeeds": async (context) => {
      const { store, concurrency } = context;
      const { row } = integrationFixture();
      await store.integrations.insert(row);
      const results = await inParallel(concurrency, async (i) =>
        i % 2 === 0
          ? { deleted: await store.integrations.delete(row.id, 1), updated: false }
          : {
              deleted: false,
              updated: (await store.integrations.update(row.id, 1, { lastError: "u" })) !== null,
            },
      );
      const deletes = results.filter((r) => r.deleted).length;
      const updates = results.filter((r) => r.updated).length;
      expect(deletes + updates).toBe(1);
      const stored = await store.integrations.getById(row.id);
      if (deletes === 1) expect(stored).toBeNull();
      else expect(stored?.version).toBe(2);
    },
  },
};
