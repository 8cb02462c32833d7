import type { OutboxItem, StoragePort } from "@ryze/chatwoot-core";
import { createMemoryStore, type MemoryStore } from "@ryze/chatwoot-core/testing";
import { describe, expect, it } from "vitest";
import {
  compareAndSetChecks,
  leaseChecks,
  memoryStoreRaw,
  outboxChecks,
  outboxConcurrencyChecks,
  type StoreCheck,
  type StoreCheckContext,
} from "./index.js";

/** A memory store with one defect patched in, plus the context the checks run with. */
function brokenContext(breakStore: (store: MemoryStore) => Partial<StoragePort>): StoreCheckContext {
  const store = createMemoryStore();
  return { store: { ...store, ...breakStore(store) }, raw: memoryStoreRaw(store.raw), concurrency: 8 };
}

const check = (group: { checks: Readonly<Record<string, StoreCheck>> }, title: string): StoreCheck => {
  const found = group.checks[title];
  if (!found) throw new Error(`no conformance check named "${title}"`);
  return found;
};

// Proves the suite can fail: each defect below must be caught by the check written for it.
describe("storage conformance suite catches broken stores", () => {
  it("an update that ignores the version guard fails the compare-and-set checks", async () => {
    const context = brokenContext((store) => ({
      integrations: {
        ...store.integrations,
        // Defect: last writer wins; the expected version is ignored.
        async update(id, _expectedVersion, patch) {
          for (;;) {
            const current = await store.integrations.getById(id);
            if (!current) return null;
            const updated = await store.integrations.update(id, current.version, patch);
            if (updated) return updated;
          }
        },
      },
    }));
    const concurrent = check(
      compareAndSetChecks,
      "exactly one of N concurrent updates at the same version wins; the losers get null",
    );
    await expect(concurrent(context)).rejects.toThrow();
    const stale = check(
      compareAndSetChecks,
      "a stale expected version is refused and leaves the row unchanged",
    );
    await expect(stale(context)).rejects.toThrow();
  });

  it("the same checks pass on the intact memory store", async () => {
    const context = brokenContext(() => ({}));
    for (const check of Object.values(compareAndSetChecks.checks)) await check(context);
  });

  it("an enqueue that forgets dedupe keys fails the dedupe check", async () => {
    const context = brokenContext((store) => ({
      outbox: {
        ...store.outbox,
        enqueue: (input, now) =>
          store.outbox.enqueue({ ...input, dedupeKey: `${input.dedupeKey}:${Math.random()}` }, now),
      },
    }));
    await expect(
      check(
        outboxChecks,
        "a second enqueue with the same dedupe key is absorbed and writes nothing",
      )(context),
    ).rejects.toThrow();
  });

  it("a claim that ignores chat keys fails the FIFO and concurrency checks", async () => {
    const context = brokenContext((store) => ({
      outbox: {
        ...store.outbox,
        // Defect: claims every available pending item, whatever else its chat key has in flight.
        async claim({ owner, limit, claimTtlMs, now }) {
          const items: OutboxItem[] = [];
          for (const record of store.raw.outbox.values()) {
            if (items.length >= limit) break;
            if (record.status !== "pending" || record.availableAt > now) continue;
            const claimUntil = new Date(now.getTime() + claimTtlMs);
            Object.assign(record, { status: "claimed", claimedBy: owner, claimUntil });
            const { seq: _seq, payload, ...item } = record;
            items.push({ ...item, payload: JSON.parse(payload) as unknown });
          }
          return items;
        },
      },
    }));
    await expect(
      check(
        outboxChecks,
        "per chat key only the oldest unfinished item is claimed; the rest follow in order",
      )(context),
    ).rejects.toThrow();
    await expect(
      check(outboxChecks, "a chat key never has two live claims, whatever the limit")(context),
    ).rejects.toThrow();
    await expect(
      check(
        outboxConcurrencyChecks,
        "N claimers over 200 items in 20 chat keys: none claimed twice, FIFO and one in flight per chat",
      )(context),
    ).rejects.toThrow();
  });

  it("a renewal that ignores the fencing epoch fails the lease checks", async () => {
    const context = brokenContext((store) => ({
      leases: {
        ...store.leases,
        async renew(owner, held, ttlMs, now) {
          // Renews whatever the owner holds, at whatever epoch: a lost-and-retaken lease would be kept.
          const current = await Promise.all(held.map(({ name }) => store.leases.get(name)));
          const epochs = held.map(({ name }, i) => ({ name, epoch: current[i]?.epoch ?? 0 }));
          return store.leases.renew(owner, epochs, ttlMs, now);
        },
      },
    }));
    await expect(
      check(leaseChecks, "renew extends a lease held at the given epoch and refuses a lost one")(context),
    ).rejects.toThrow();
  });

  it("a lease takeover that keeps the old epoch fails the lease checks", async () => {
    const context = brokenContext((store) => ({
      leases: {
        ...store.leases,
        async acquire(name, owner, ttlMs, now) {
          const lease = await store.leases.acquire(name, owner, ttlMs, now);
          return lease && { ...lease, epoch: 1 };
        },
      },
    }));
    await expect(
      check(
        leaseChecks,
        "another owner is refused while the lease is live and takes over at expiry with epoch + 1",
      )(context),
    ).rejects.toThrow();
  });
});
