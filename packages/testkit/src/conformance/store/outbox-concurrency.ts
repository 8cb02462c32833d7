import type { StoragePort } from "@ryze/chatwoot-core";
import type { OutboxItem } from "@ryze/chatwoot-core/store";
import { expect } from "vitest";
import { at, inParallel, unique } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

const TTL = 600_000;

/** Lets other callers run (no timers: one turn of the event loop). */
const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Tally {
  /** Every claimed id, in claim order, over all claimers. */
  claimed: string[];
  /** Completion order per chat key. */
  completedByChat: Map<string, string[]>;
  violations: string[];
}

/**
 * Runs `claimers` workers that claim, check and complete until `expected` items are done (or one fails).
 * A chat key is marked in flight from its claim until just before its completion, so a second live claim on it
 * is seen as a violation, never a false alarm.
 */
async function drain(
  store: StoragePort,
  claimers: number,
  expected: number,
  tally: Tally,
  now: Date,
  producing: () => boolean = () => false,
): Promise<void> {
  const inFlight = new Map<string, string>();
  let done = 0;
  let emptySinceProgress = 0;
  let failure: unknown;
  await inParallel(claimers, async (worker) => {
    const owner = `worker-${worker}`;
    try {
      while (done < expected && failure === undefined) {
        const items: OutboxItem[] = await store.outbox.claim({ owner, limit: 3, claimTtlMs: TTL, now });
        if (items.length === 0) {
          // Nothing claimable right now: others hold the remaining chat heads, or producers are still writing.
          if (!producing() && ++emptySinceProgress > 20_000) {
            throw new Error(`outbox drain stalled at ${done}/${expected} items`);
          }
          await yieldTurn();
          continue;
        }
        emptySinceProgress = 0;
        for (const item of items) {
          tally.claimed.push(item.id);
          const holder = inFlight.get(item.chatKey);
          if (holder !== undefined)
            tally.violations.push(`${item.chatKey}: ${item.id} claimed while ${holder} in flight`);
          inFlight.set(item.chatKey, item.id);
        }
        for (const item of items) {
          inFlight.delete(item.chatKey);
          const completed = tally.completedByChat.get(item.chatKey) ?? [];
          completed.push(item.id);
          tally.completedByChat.set(item.chatKey, completed);
          if (!(await store.outbox.complete(item.id, owner)))
            throw new Error(`${owner} could not complete ${item.id}`);
          done++;
        }
      }
    } catch (error) {
      failure ??= error;
    }
  });
  if (failure !== undefined) throw failure;
}

const newTally = (): Tally => ({ claimed: [], completedByChat: new Map(), violations: [] });

/** The outbox under real parallelism: no item twice, FIFO per chat key, one item in flight per chat key. */
export const outboxConcurrencyChecks: StoreCheckGroup = {
  title: "outbox under concurrency",
  checks: {
    "N claimers over 200 items in 20 chat keys: none claimed twice, FIFO and one in flight per chat": async (
      context,
    ) => {
      const { store, concurrency } = context;
      const integrationId = `int_${unique()}`;
      const expectedByChat = new Map<string, string[]>();
      for (let i = 0; i < 200; i++) {
        const chatKey = `chat-${String(i % 20).padStart(2, "0")}`;
        const { id } = await store.outbox.enqueue(
          { integrationId, direction: "inbound", chatKey, dedupeKey: `wa:${i}`, payload: { i } },
          at(i),
        );
        expectedByChat.set(chatKey, [...(expectedByChat.get(chatKey) ?? []), id]);
      }
      const tally = newTally();
      await drain(store, concurrency, 200, tally, at(1_000));
      expect(tally.violations, "never claimed twice, FIFO, one in flight per chat key").toEqual([]);
      expect(tally.claimed).toHaveLength(200);
      expect(new Set(tally.claimed).size).toBe(200);
      expect(tally.completedByChat).toEqual(expectedByChat);
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 0, claimed: 0, done: 200, dead: 0 });
    },

    "producers enqueueing while claimers drain: each producer's order per chat key is kept": async (
      context,
    ) => {
      const { store, concurrency } = context;
      const integrationId = `int_${unique()}`;
      const producers = Math.max(2, Math.floor(concurrency / 2));
      const perProducer = 40;
      const sequence = new Map<string, { producer: number; n: number }>();
      let producing = producers;
      const tally = newTally();
      await Promise.all([
        inParallel(producers, async (producer) => {
          for (let n = 0; n < perProducer; n++) {
            const { id, duplicate } = await store.outbox.enqueue(
              {
                integrationId,
                direction: "outbound",
                chatKey: `chat-${n % 5}`,
                dedupeKey: `p${producer}:${n}`,
                payload: { producer, n },
              },
              at(n),
            );
            expect(duplicate).toBe(false);
            sequence.set(id, { producer, n });
          }
          producing--;
        }),
        drain(
          store,
          Math.max(2, concurrency - producers),
          producers * perProducer,
          tally,
          at(10_000),
          () => producing > 0,
        ),
      ]);
      expect(tally.violations).toEqual([]);
      expect(new Set(tally.claimed).size).toBe(producers * perProducer);
      for (const completed of tally.completedByChat.values()) {
        for (let producer = 0; producer < producers; producer++) {
          const ns = completed
            .map((id) => sequence.get(id))
            .filter((s) => s?.producer === producer)
            .map((s) => s!.n);
          expect(ns).toEqual([...ns].sort((a, b) => a - b));
        }
      }
    },

    "N claimers racing for one expired claim: exactly one gets it": async ({ store, concurrency }) => {
      const integrationId = `int_${unique()}`;
      const { id } = await store.outbox.enqueue(
        { integrationId, direction: "inbound", chatKey: "A", dedupeKey: "x", payload: null },
        at(0),
      );
      await store.outbox.enqueue(
        { integrationId, direction: "inbound", chatKey: "A", dedupeKey: "y", payload: null },
        at(0),
      );
      await store.outbox.claim({ owner: "crashed", limit: 1, claimTtlMs: 1_000, now: at(0) });
      const results = await inParallel(concurrency, (i) =>
        store.outbox.claim({ owner: `survivor-${i}`, limit: 5, claimTtlMs: 1_000, now: at(1_000) }),
      );
      const won = results.flat();
      expect(won.map((item) => item.id)).toEqual([id]);
      expect(await store.outbox.complete(id, won[0]!.claimedBy!)).toBe(true);
    },
  },
};
