import type { StoragePort } from "@ryze/chatwoot-core";
import type { OutboxItem } from "@ryze/chatwoot-core/store";
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

/**
 * The check must fail on the assertion written for the defect (its label), not on anything else: a TypeError or a
 * timeout in the broken store, or another assertion, would not prove that the check catches the defect.
 */
async function expectCaught(run: Promise<void>, label: string): Promise<void> {
  const error = await run.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error, `the check passed; it must fail on "${label}"`).not.toBeNull();
  expect(error, String(error)).toBeInstanceOf(Error);
  expect((error as Error).name, `not an assertion failure: ${String(error)}`).toBe("AssertionError");
  expect((error as Error).message).toContain(`${label}: `);
}

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
    await expectCaught(concurrent(context), "exactly one concurrent update at one version wins");
    const stale = check(
      compareAndSetChecks,
      "a stale expected version is refused and leaves the row unchanged",
    );
    await expectCaught(stale(context), "an update at a stale version is refused");
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
    await expectCaught(
      check(
        outboxChecks,
        "a second enqueue with the same dedupe key is absorbed and writes nothing",
      )(context),
      "a second enqueue with the same dedupe key is absorbed",
    );
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
    await expectCaught(
      check(
        outboxChecks,
        "per chat key only the oldest unfinished item is claimed; the rest follow in order",
      )(context),
      "a claim takes only the oldest item of each chat key",
    );
    await expectCaught(
      check(outboxChecks, "a chat key never has two live claims, whatever the limit")(context),
      "one live claim per chat key",
    );
    await expectCaught(
      check(
        outboxConcurrencyChecks,
        "N claimers over 200 items in 20 chat keys: none claimed twice, FIFO and one in flight per chat",
      )(context),
      "never claimed twice, FIFO, one in flight per chat key",
    );
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
    await expectCaught(
      check(leaseChecks, "renew extends a lease held at the given epoch and refuses a lost one")(context),
      "a renewal at another epoch is refused",
    );
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
    await expectCaught(
      check(
        leaseChecks,
        "another owner is refused while the lease is live and takes over at expiry with epoch + 1",
      )(context),
      "a takeover at expiry raises the epoch",
    );
  });
});
