import type { StoragePort } from "@ryze/chatwoot-core";
import { expect } from "vitest";
import { at, unique } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

const TTL = 30_000;
const newIntegration = () => `int_${unique()}`;

async function put(store: StoragePort, integrationId: string, chatKey: string, now: Date, n = 1) {
  const { id } = await store.outbox.enqueue(
    { integrationId, direction: "inbound", chatKey, dedupeKey: `wa:${unique()}`, payload: { n } },
    now,
  );
  return id;
}

/** Enqueues one item on its own chat key at `now`, claims it and gives up on it. */
async function deadLetter(
  store: StoragePort,
  integrationId: string,
  now: Date,
  chatKey = `chat-${unique()}`,
) {
  const id = await put(store, integrationId, chatKey, now);
  const claimed = await store.outbox.claim({ owner: "w", limit: 100, claimTtlMs: TTL, now });
  expect(claimed.map((item) => item.id)).toContain(id);
  for (const item of claimed)
    if (item.id !== id) await store.outbox.fail(item.id, "w", { retryAt: now, error: "x" });
  expect(await store.outbox.markDead(id, "w", `gave up on ${id}`)).toBe(true);
  return id;
}

/** Dead letters an operator sees and replays (status route, dead-letter routes), and the status summary. */
export const deadLetterChecks: StoreCheckGroup = {
  title: "dead letters and status",
  checks: {
    "dead letters are listed newest first, paged with before, per integration": async ({ store }) => {
      const integrationId = newIntegration();
      const other = newIntegration();
      const dead: string[] = [];
      for (let index = 0; index < 5; index++)
        dead.push(await deadLetter(store, integrationId, at(index * 10)));
      await deadLetter(store, other, at(100));
      await put(store, integrationId, "busy", at(200)); // pending: not a dead letter

      const first = await store.outbox.deadLetters(integrationId, { limit: 2 });
      expect(first.map((item) => item.id)).toEqual([dead[4], dead[3]]);
      expect(first[0]).toMatchObject({
        integrationId,
        status: "dead",
        lastError: `gave up on ${dead[4]}`,
        attempts: 0,
        createdAt: at(40),
      });
      const second = await store.outbox.deadLetters(integrationId, { limit: 2, before: dead[3] });
      expect(second.map((item) => item.id)).toEqual([dead[2], dead[1]]);
      const last = await store.outbox.deadLetters(integrationId, { limit: 10, before: dead[1] });
      expect(last.map((item) => item.id)).toEqual([dead[0]]);
      expect(await store.outbox.deadLetters(integrationId, { limit: 10, before: "no-such-item" })).toEqual(
        [],
      );
      expect(await store.outbox.deadLetters(integrationId, { limit: 0 })).toEqual([]);
      expect((await store.outbox.deadLetters(other, { limit: 10 })).length).toBe(1);
    },

    "a retried dead letter is due again once, with its id, payload and attempts": async ({ store }) => {
      const integrationId = newIntegration();
      const id = await put(store, integrationId, "chat-r", at(0));
      for (const attempt of [1, 2]) {
        const [claimed] = await store.outbox.claim({
          owner: "w",
          limit: 1,
          claimTtlMs: TTL,
          now: at(attempt),
        });
        expect(claimed?.id).toBe(id);
        if (attempt === 1) await store.outbox.fail(id, "w", { retryAt: at(1), error: "timeout" });
        else await store.outbox.markDead(id, "w", "gave up");
      }
      expect(await store.outbox.retryDead(integrationId, id, at(5_000))).toBe("retried");
      expect(await store.outbox.retryDead(integrationId, id, at(5_001))).toBe("not_dead");
      expect(await store.outbox.retryDead(newIntegration(), id, at(5_001))).toBe("not_found");
      expect(await store.outbox.retryDead(integrationId, "no-such-item", at(5_001))).toBe("not_found");
      expect(await store.outbox.deadLetters(integrationId, { limit: 10 })).toEqual([]);
      expect(await store.outbox.claim({ owner: "v", limit: 10, claimTtlMs: TTL, now: at(4_999) })).toEqual(
        [],
      );
      const [item, ...rest] = await store.outbox.claim({
        owner: "v",
        limit: 10,
        claimTtlMs: TTL,
        now: at(5_000),
      });
      expect(rest).toEqual([]);
      expect(item).toMatchObject({ id, integrationId, chatKey: "chat-r", payload: { n: 1 }, attempts: 1 });
      expect(item!.createdAt).toEqual(at(0));
      expect(await store.outbox.complete(id, "v")).toBe(true);
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 0, claimed: 0, done: 1, dead: 0 });
    },

    "a retried dead letter queues behind its chat's waiting items and never beside a live claim": async ({
      store,
    }) => {
      const integrationId = newIntegration();
      const dead = await deadLetter(store, integrationId, at(0), "chat-q");
      const newer = await put(store, integrationId, "chat-q", at(10), 2);
      const [claimed] = await store.outbox.claim({ owner: "a", limit: 10, claimTtlMs: TTL, now: at(20) });
      expect(claimed?.id).toBe(newer);
      const waiting = await put(store, integrationId, "chat-q", at(25), 3);
      expect(await store.outbox.retryDead(integrationId, dead, at(30))).toBe("retried");
      // The chat has a live claim: nothing else of it may be claimed, the retried item included.
      expect(await store.outbox.claim({ owner: "b", limit: 10, claimTtlMs: TTL, now: at(40) })).toEqual([]);
      expect(await store.outbox.complete(newer, "a")).toBe(true);
      // The item that was already waiting goes first, then the retried one.
      const next = await store.outbox.claim({ owner: "b", limit: 10, claimTtlMs: TTL, now: at(50) });
      expect(next.map((item) => item.id)).toEqual([waiting]);
      expect(await store.outbox.complete(waiting, "b")).toBe(true);
      const last = await store.outbox.claim({ owner: "b", limit: 10, claimTtlMs: TTL, now: at(60) });
      expect(last.map((item) => item.id)).toEqual([dead]);
    },

    "the summary counts depth and dead letters and dates the oldest due item": async ({ store }) => {
      const integrationId = newIntegration();
      expect(await store.outbox.summary(integrationId, at(0))).toEqual({
        depth: 0,
        dead: 0,
        oldestDueAt: null,
      });
      await deadLetter(store, integrationId, at(0));
      await put(store, integrationId, "later", at(10));
      await store.outbox.enqueue(
        {
          integrationId,
          direction: "outbound",
          chatKey: "future",
          dedupeKey: `cw:${unique()}`,
          payload: {},
          availableAt: at(10_000),
        },
        at(5),
      );
      await put(store, newIntegration(), "elsewhere", at(1));
      expect(await store.outbox.summary(integrationId, at(100))).toEqual({
        depth: 2,
        dead: 1,
        oldestDueAt: at(10),
      });
      expect(await store.outbox.summary(integrationId, at(10_000))).toEqual({
        depth: 2,
        dead: 1,
        oldestDueAt: at(5),
      });
    },

    "the last message each way is the newest mapping of that direction": async ({ store }) => {
      const integrationId = newIntegration();
      expect(await store.mappings.lastMessages(integrationId)).toEqual({ inbound: null, outbound: null });
      const mapping = (waMessageId: string, direction: "inbound" | "outbound", ms: number) => ({
        integrationId,
        waMessageId,
        part: 0,
        chatwootMessageId: ms,
        conversationId: 1,
        direction,
        createdAt: at(ms),
      });
      await store.mappings.putMessage(mapping("A", "inbound", 300));
      await store.mappings.putMessage(mapping("B", "inbound", 100));
      await store.mappings.putMessage(mapping("C", "outbound", 200));
      await store.mappings.putMessage({ ...mapping("D", "outbound", 900), integrationId: newIntegration() });
      expect(await store.mappings.lastMessages(integrationId)).toEqual({
        inbound: at(300),
        outbound: at(200),
      });
    },
  },
};
