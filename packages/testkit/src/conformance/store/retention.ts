import type { StoragePort } from "@ryze/chatwoot-core";
import { expect } from "vitest";
import { at, unique } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

const TTL = 30_000;
const DAY = 86_400_000;

/** Enqueues one item on its own chat key at `now`; `finish` claims it and completes it or gives up on it. */
async function item(
  store: StoragePort,
  integrationId: string,
  now: Date,
  finish: "done" | "dead" | "pending",
): Promise<{ id: string; dedupeKey: string }> {
  const dedupeKey = `wa:${unique()}`;
  const { id } = await store.outbox.enqueue(
    { integrationId, direction: "inbound", chatKey: `chat-${unique()}`, dedupeKey, payload: {} },
    now,
  );
  if (finish !== "pending") {
    const claimed = await store.outbox.claim({ owner: "w", limit: 100, claimTtlMs: TTL, now });
    for (const other of claimed)
      if (other.id !== id)
        await store.outbox.fail(other.id, "w", { retryAt: now, error: "x", attempted: false });
    expect(claimed.map((entry) => entry.id)).toContain(id);
    if (finish === "done") expect(await store.outbox.complete(id, "w")).toBe(true);
    else expect(await store.outbox.markDead(id, "w", "gave up")).toBe(true);
  }
  return { id, dedupeKey };
}

/** Retention of finished outbox items, and the whole outbox's figures for the metrics. */
export const retentionChecks: StoreCheckGroup = {
  title: "retention and outbox totals",
  checks: {
    "prune deletes old finished items oldest first in batches, never unfinished ones": async ({ store }) => {
      const integrationId = `int_${unique()}`;
      const oldDone = [];
      for (let day = 0; day < 3; day++) oldDone.push(await item(store, integrationId, at(day * DAY), "done"));
      const recentDone = await item(store, integrationId, at(9 * DAY), "done");
      const oldDead = await item(store, integrationId, at(1 * DAY), "dead");
      const youngDead = await item(store, integrationId, at(5 * DAY), "dead");
      const oldPending = await item(store, integrationId, at(0), "pending");
      const options = { doneBefore: at(8 * DAY), deadBefore: at(2 * DAY) };

      // Two at a time: the oldest done items go first.
      expect(await store.outbox.prune({ ...options, limit: 2 })).toBe(2);
      expect(await store.outbox.find(integrationId, oldDone[0]!.dedupeKey)).toBeNull();
      expect(await store.outbox.find(integrationId, oldDone[1]!.dedupeKey)).toBeNull();
      expect(await store.outbox.find(integrationId, oldDone[2]!.dedupeKey)).not.toBeNull();
      expect(await store.outbox.prune({ ...options, limit: 2 })).toBe(2);
      expect(await store.outbox.prune({ ...options, limit: 2 })).toBe(0);
      expect(await store.outbox.prune({ ...options, limit: 0 })).toBe(0);

      expect(await store.outbox.find(integrationId, oldDead.dedupeKey)).toBeNull();
      expect(await store.outbox.find(integrationId, recentDone.dedupeKey)).toMatchObject({ status: "done" });
      expect(await store.outbox.find(integrationId, youngDead.dedupeKey)).toMatchObject({ status: "dead" });
      expect(await store.outbox.find(integrationId, oldPending.dedupeKey)).toMatchObject({
        status: "pending",
      });
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 1, claimed: 0, done: 1, dead: 1 });
      // A pruned item's dedupe key is free again.
      const again = await store.outbox.enqueue(
        {
          integrationId,
          direction: "inbound",
          chatKey: "again",
          dedupeKey: oldDone[0]!.dedupeKey,
          payload: {},
        },
        at(10 * DAY),
      );
      expect(again.duplicate).toBe(false);
    },

    "totals count every integration's unfinished items and dead letters and date the oldest due one": async ({
      store,
    }) => {
      const before = await store.outbox.totals(at(0));
      const a = `int_${unique()}`;
      const b = `int_${unique()}`;
      await item(store, a, at(20), "pending");
      await item(store, b, at(10), "pending");
      await item(store, a, at(5), "done");
      await item(store, b, at(30), "dead");
      await store.outbox.enqueue(
        {
          integrationId: a,
          direction: "outbound",
          chatKey: "f",
          dedupeKey: `cw:${unique()}`,
          payload: {},
          availableAt: at(10_000),
        },
        at(1),
      );
      const totals = await store.outbox.totals(at(100));
      expect(totals.depth - before.depth).toBe(3);
      expect(totals.dead - before.dead).toBe(1);
      if (before.oldestDueAt === null) {
        expect(totals.oldestDueAt).toEqual(at(10));
        expect((await store.outbox.totals(at(10_000))).oldestDueAt).toEqual(at(1));
      }
    },
  },
};
