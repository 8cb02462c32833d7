import { expect } from "vitest";
import { at, inParallel, unique } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

const TTL = 10_000;
const leaseName = () => `realtime:int_${unique()}`;

/** Leases with fencing epochs: renew by the holder, takeover only after expiry, epoch +1 on every new owner. */
export const leaseChecks: StoreCheckGroup = {
  title: "leases",
  checks: {
    "list returns the held leases of a prefix only, exactly, in name order": async ({ store }) => {
      const base = `list_${unique()}`;
      await store.leases.acquire(`${base}:b`, "p1", TTL, at(0));
      await store.leases.acquire(`${base}:a`, "p2", TTL, at(0));
      await store.leases.acquire(`${base}:c`, "p1", TTL, at(0));
      await store.leases.release(`${base}:c`, "p1");
      await store.leases.acquire(`${base.toUpperCase()}:x`, "p3", TTL, at(0));
      await store.leases.acquire(`${base}_wild`, "p3", TTL, at(0));
      await store.leases.acquire(`${base}%:z`, "p3", TTL, at(0));
      const listed = await store.leases.list(`${base}:`);
      expect(listed.map((lease) => [lease.name, lease.owner])).toEqual([
        [`${base}:a`, "p2"],
        [`${base}:b`, "p1"],
      ]);
      // Expired leases are listed too: the caller compares expiresAt with its clock.
      expect(listed[0]).toEqual({ name: `${base}:a`, owner: "p2", epoch: 1, expiresAt: at(TTL) });
    },

    "a free lease is acquired at epoch 1 and reads back": async ({ store }) => {
      const name = leaseName();
      expect(await store.leases.get(name)).toBeNull();
      const lease = await store.leases.acquire(name, "p1", TTL, at(0));
      expect(lease).toEqual({ name, owner: "p1", epoch: 1, expiresAt: at(TTL) });
      expect(await store.leases.get(name)).toEqual(lease);
    },

    "the holder re-acquiring renews it at the same epoch": async ({ store }) => {
      const name = leaseName();
      await store.leases.acquire(name, "p1", TTL, at(0));
      expect(await store.leases.acquire(name, "p1", TTL, at(5_000))).toEqual({
        name,
        owner: "p1",
        epoch: 1,
        expiresAt: at(15_000),
      });
      expect(await store.leases.acquire(name, "p1", TTL, at(5_000))).toEqual({
        name,
        owner: "p1",
        epoch: 1,
        expiresAt: at(15_000),
      });
    },

    "another owner is refused while the lease is live and takes over at expiry with epoch + 1": async ({
      store,
    }) => {
      const name = leaseName();
      await store.leases.acquire(name, "p1", TTL, at(0));
      expect(await store.leases.acquire(name, "p2", TTL, at(TTL - 1))).toBeNull();
      expect(await store.leases.get(name)).toMatchObject({ owner: "p1", epoch: 1 });
      const taken = await store.leases.acquire(name, "p2", TTL, at(TTL));
      expect(taken).toEqual({ name, owner: "p2", epoch: 2, expiresAt: at(2 * TTL) });
      expect(await store.leases.get(name)).toEqual(taken);
      const back = await store.leases.acquire(name, "p1", TTL, at(3 * TTL));
      expect(back).toMatchObject({ owner: "p1", epoch: 3 });
    },

    "renew extends a lease held at the given epoch and refuses a lost one": async ({ store }) => {
      const name = leaseName();
      await store.leases.acquire(name, "p1", TTL, at(0));
      expect(await store.leases.renew(name, "p1", 1, TTL, at(9_000))).toEqual({
        name,
        owner: "p1",
        epoch: 1,
        expiresAt: at(19_000),
      });
      expect(await store.leases.renew(name, "p1", 2, TTL, at(9_000))).toBeNull();
      expect(await store.leases.renew(name, "p2", 1, TTL, at(9_000))).toBeNull();
      expect(await store.leases.renew("missing", "p1", 1, TTL, at(9_000))).toBeNull();
      await store.leases.acquire(name, "p2", TTL, at(19_000));
      expect(await store.leases.renew(name, "p1", 1, TTL, at(19_001))).toBeNull();
      expect(await store.leases.get(name)).toMatchObject({ owner: "p2", epoch: 2 });
    },

    "release frees the lease for its holder only; the epoch keeps increasing afterwards": async ({
      store,
    }) => {
      const name = leaseName();
      await store.leases.acquire(name, "p1", TTL, at(0));
      expect(await store.leases.release(name, "p2")).toBe(false);
      expect(await store.leases.release("missing", "p1")).toBe(false);
      expect(await store.leases.release(name, "p1")).toBe(true);
      expect(await store.leases.release(name, "p1")).toBe(false);
      expect(await store.leases.get(name)).toBeNull();
      expect(await store.leases.renew(name, "p1", 1, TTL, at(1))).toBeNull();
      const next = await store.leases.acquire(name, "p2", TTL, at(1));
      expect(next).toEqual({ name, owner: "p2", epoch: 2, expiresAt: at(1 + TTL) });
      await store.leases.release(name, "p2");
      expect((await store.leases.acquire(name, "p2", TTL, at(2)))?.epoch).toBe(3);
    },

    "exactly one of N concurrent acquirers gets a free lease": async ({ store, concurrency }) => {
      const name = leaseName();
      const results = await inParallel(concurrency, (i) => store.leases.acquire(name, `p${i}`, TTL, at(0)));
      const winners = results.filter((r) => r !== null);
      expect(winners).toHaveLength(1);
      expect(winners[0]?.epoch).toBe(1);
      expect(await store.leases.get(name)).toEqual(winners[0]);
    },

    "exactly one of N concurrent acquirers takes over an expired lease, at epoch + 1": async ({
      store,
      concurrency,
    }) => {
      const name = leaseName();
      await store.leases.acquire(name, "dead-process", TTL, at(0));
      const results = await inParallel(concurrency, (i) =>
        store.leases.acquire(name, `p${i}`, TTL, at(TTL + 5)),
      );
      const winners = results.filter((r) => r !== null);
      expect(winners).toHaveLength(1);
      expect(winners[0]).toMatchObject({ epoch: 2, expiresAt: at(2 * TTL + 5) });
      expect(await store.leases.get(name)).toEqual(winners[0]);
    },
  },
};
