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
      expect(taken, "a takeover at expiry raises the epoch").toEqual({
        name,
        owner: "p2",
        epoch: 2,
        expiresAt: at(2 * TTL),
      });
      expect(await store.leases.get(name)).toEqual(taken);
      const back = await store.leases.acquire(name, "p1", TTL, at(3 * TTL));
      expect(back).toMatchObject({ owner: "p1", epoch: 3 });
    },

    "renew extends a lease held at the given epoch and refuses a lost one": async ({ store }) => {
      const name = leaseName();
      const renew = (owner: string, epoch: number, now: number, lease = name) =>
        store.leases.renew(owner, [{ name: lease, epoch }], TTL, at(now));
      await store.leases.acquire(name, "p1", TTL, at(0));
      expect(await renew("p1", 1, 9_000)).toEqual([{ name, owner: "p1", epoch: 1, expiresAt: at(19_000) }]);
      expect(await renew("p1", 2, 9_000), "a renewal at another epoch is refused").toEqual([]);
      expect(await renew("p2", 1, 9_000), "a renewal by another owner is refused").toEqual([]);
      expect(await renew("p1", 1, 9_000, "missing")).toEqual([]);
      expect(await store.leases.get(name)).toMatchObject({ owner: "p1", epoch: 1, expiresAt: at(19_000) });
      await store.leases.acquire(name, "p2", TTL, at(19_000));
      expect(await renew("p1", 1, 19_001)).toEqual([]);
      expect(await store.leases.get(name)).toMatchObject({ owner: "p2", epoch: 2, expiresAt: at(29_000) });
    },

    "renew takes many leases in one call and returns exactly the ones still held": async ({ store }) => {
      const names = Array.from({ length: 6 }, () => leaseName());
      for (const name of names) await store.leases.acquire(name, "p1", TTL, at(0));
      // names[1] taken over after expiry, names[2] released, names[3] re-acquired by p1 at epoch 3.
      await store.leases.acquire(names[1]!, "p2", TTL, at(TTL));
      await store.leases.release(names[2]!, "p1");
      await store.leases.acquire(names[3]!, "p2", TTL, at(TTL));
      await store.leases.release(names[3]!, "p2");
      await store.leases.acquire(names[3]!, "p1", TTL, at(TTL));
      const held = names.map((name, i) => ({ name, epoch: i === 3 ? 3 : 1 }));
      const renewed = await store.leases.renew(
        "p1",
        [...held, { name: leaseName(), epoch: 1 }],
        TTL,
        at(TTL + 1),
      );
      const expiresAt = at(2 * TTL + 1);
      expect(renewed.sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual(
        [names[0]!, names[3]!, names[4]!, names[5]!]
          .map((name) => ({ name, owner: "p1", epoch: name === names[3] ? 3 : 1, expiresAt }))
          .sort((a, b) => (a.name < b.name ? -1 : 1)),
      );
      // What was not ours is untouched.
      expect(await store.leases.get(names[1]!)).toMatchObject({
        owner: "p2",
        epoch: 2,
        expiresAt: at(2 * TTL),
      });
      expect(await store.leases.get(names[2]!)).toBeNull();
      expect(await store.leases.renew("p1", [], TTL, at(0))).toEqual([]);
    },

    "renewing many leases in one call covers more than one statement's worth": async ({ store }) => {
      const names = Array.from({ length: 1_200 }, () => leaseName());
      await inParallel(8, async (worker) => {
        for (let i = worker; i < names.length; i += 8)
          await store.leases.acquire(names[i]!, "p1", TTL, at(0));
      });
      const renewed = await store.leases.renew(
        "p1",
        names.map((name) => ({ name, epoch: 1 })),
        TTL,
        at(1_000),
      );
      expect(new Set(renewed.map((lease) => lease.name))).toEqual(new Set(names));
      expect(renewed.every((lease) => lease.expiresAt.getTime() === at(TTL + 1_000).getTime())).toBe(true);
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
      expect(await store.leases.renew("p1", [{ name, epoch: 1 }], TTL, at(1))).toEqual([]);
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
