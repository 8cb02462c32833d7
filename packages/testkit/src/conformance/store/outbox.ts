import type { StoragePort } from "@ryze/chatwoot-core";
import type { EnqueueInput, OutboxItem } from "@ryze/chatwoot-core/store";
import { expect } from "vitest";
import { at, inParallel, unique } from "./fixtures.js";
import type { StoreCheckGroup } from "./types.js";

const TTL = 30_000;

/** Enqueues `input` (with defaults) at `now`, expecting a fresh item. */
async function put(
  store: StoragePort,
  input: Partial<EnqueueInput> & { integrationId: string },
  now = at(0),
) {
  const result = await store.outbox.enqueue(
    {
      direction: "inbound",
      chatKey: "chat-a",
      dedupeKey: `wa:${unique()}`,
      payload: { kind: "message", n: 1 },
      ...input,
    },
    now,
  );
  expect(result.duplicate).toBe(false);
  return result.id;
}

const claim = (store: StoragePort, owner: string, now: Date, limit = 50, claimTtlMs = TTL) =>
  store.outbox.claim({ owner, limit, claimTtlMs, now });

const ids = (items: OutboxItem[]) => items.map((item) => item.id);
const newIntegration = () => `int_${unique()}`;

/** The durable outbox: dedupe, FIFO per chat key, one live claim per chat key, retries, dead letters. */
export const outboxChecks: StoreCheckGroup = {
  title: "outbox",
  checks: {
    "an enqueued item is claimed with every field intact": async ({ store }) => {
      const integrationId = newIntegration();
      const payload = {
        kind: "message",
        text: 'olá 👋 "quoted" \\ back',
        list: [1, null, { deep: true }],
        n: 1.5,
      };
      const id = await put(
        store,
        { integrationId, direction: "outbound", chatKey: "5511@s.whatsapp.net", dedupeKey: "cw:42", payload },
        at(100),
      );
      const [item, ...rest] = await claim(store, "worker-1", at(100), 10, 5_000);
      expect(rest).toEqual([]);
      expect(item).toEqual({
        id,
        integrationId,
        direction: "outbound",
        chatKey: "5511@s.whatsapp.net",
        dedupeKey: "cw:42",
        payload,
        status: "claimed",
        attempts: 0,
        availableAt: at(100),
        claimedBy: "worker-1",
        claimUntil: at(5_100),
        lastError: "",
        createdAt: at(100),
      });
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 0, claimed: 1, done: 0, dead: 0 });
    },

    "a second enqueue with the same dedupe key is absorbed and writes nothing": async ({ store }) => {
      const integrationId = newIntegration();
      const first = await store.outbox.enqueue(
        { integrationId, direction: "inbound", chatKey: "c", dedupeKey: "wa:1", payload: { v: 1 } },
        at(0),
      );
      const again = await store.outbox.enqueue(
        { integrationId, direction: "outbound", chatKey: "other", dedupeKey: "wa:1", payload: { v: 2 } },
        at(1),
      );
      expect(first.duplicate).toBe(false);
      expect(again, "a second enqueue with the same dedupe key is absorbed").toEqual({
        id: first.id,
        duplicate: true,
      });
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 1, claimed: 0, done: 0, dead: 0 });
      const [item] = await claim(store, "w", at(2));
      expect(item).toMatchObject({ id: first.id, chatKey: "c", payload: { v: 1 } });
      // Still a duplicate once done: dedupe keys are remembered, not only while unfinished.
      await store.outbox.complete(first.id, "w");
      expect(
        (
          await store.outbox.enqueue(
            { integrationId, direction: "inbound", chatKey: "c", dedupeKey: "wa:1", payload: 1 },
            at(3),
          )
        ).duplicate,
      ).toBe(true);
      const elsewhere = await store.outbox.enqueue(
        {
          integrationId: newIntegration(),
          direction: "inbound",
          chatKey: "c",
          dedupeKey: "wa:1",
          payload: 1,
        },
        at(4),
      );
      expect(elsewhere.duplicate).toBe(false);
    },

    "exactly one of N concurrent enqueues with one dedupe key is written": async ({ store, concurrency }) => {
      const integrationId = newIntegration();
      const results = await inParallel(concurrency, (i) =>
        store.outbox.enqueue(
          { integrationId, direction: "inbound", chatKey: `c${i % 2}`, dedupeKey: "same", payload: { i } },
          at(i),
        ),
      );
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(new Set(results.map((r) => r.id)).size).toBe(1);
      expect((await store.outbox.count(integrationId)).pending).toBe(1);
    },

    "an item is not claimable before its availableAt": async ({ store }) => {
      const integrationId = newIntegration();
      const id = await put(store, { integrationId, availableAt: at(10_000) }, at(0));
      expect(await claim(store, "w", at(9_999))).toEqual([]);
      expect(ids(await claim(store, "w", at(10_000)))).toEqual([id]);
    },

    "per chat key only the oldest unfinished item is claimed; the rest follow in order": async ({
      store,
    }) => {
      const integrationId = newIntegration();
      const a = [];
      for (let i = 0; i < 4; i++) a.push(await put(store, { integrationId, chatKey: "A" }, at(i)));
      const b1 = await put(store, { integrationId, chatKey: "B" }, at(10));
      expect(
        ids(await claim(store, "w", at(99))),
        "a claim takes only the oldest item of each chat key",
      ).toEqual([a[0], b1]);
      await store.outbox.complete(a[0]!, "w");
      await store.outbox.complete(b1, "w");
      const order: string[] = [];
      for (let round = 0; round < 10; round++) {
        const items = await claim(store, "w", at(100 + round));
        if (items.length === 0) break;
        expect(items).toHaveLength(1);
        order.push(items[0]!.id);
        expect(await store.outbox.complete(items[0]!.id, "w")).toBe(true);
      }
      expect(order).toEqual(a.slice(1));
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 0, claimed: 0, done: 5, dead: 0 });
    },

    "a chat key never has two live claims, whatever the limit": async ({ store }) => {
      const integrationId = newIntegration();
      const first = await put(store, { integrationId, chatKey: "A" }, at(0));
      await put(store, { integrationId, chatKey: "A" }, at(1));
      const other = await put(store, { integrationId, chatKey: "B" }, at(2));
      expect(ids(await claim(store, "w1", at(10))).sort(), "one live claim per chat key").toEqual(
        [first, other].sort(),
      );
      expect(await claim(store, "w2", at(11))).toEqual([]);
      expect(await claim(store, "w1", at(12))).toEqual([]);
    },

    "one claim finds the heads of every chat of every integration, whatever their order": async ({
      store,
    }) => {
      // Chat keys and integrations enqueued out of their sort order, several items per chat, a finished head.
      const [x, y, z] = [newIntegration(), newIntegration(), newIntegration()];
      const xd = await put(store, { integrationId: x, chatKey: "D" }, at(0));
      const ya = await put(store, { integrationId: y, chatKey: "A" }, at(1));
      await put(store, { integrationId: x, chatKey: "D" }, at(2));
      const xb = await put(store, { integrationId: x, chatKey: "B" }, at(3));
      const zDone = await put(store, { integrationId: z, chatKey: "A" }, at(4));
      const zNext = await put(store, { integrationId: z, chatKey: "A" }, at(5));
      await put(store, { integrationId: y, chatKey: "A" }, at(6));
      const yc = await put(store, { integrationId: y, chatKey: "C" }, at(7));
      expect(ids(await claim(store, "w", at(10), 1))).toEqual([xd]);
      expect(ids(await claim(store, "w", at(10), 2))).toEqual([ya, xb]);
      expect(await store.outbox.complete(xb, "w")).toBe(true);
      expect(ids(await claim(store, "w", at(10)))).toEqual([zDone, yc]);
      expect(await store.outbox.complete(zDone, "w")).toBe(true);
      expect(ids(await claim(store, "w", at(11)))).toEqual([zNext]);
      expect(await claim(store, "w", at(12))).toEqual([]);
    },

    "claim leaves the items of excluded integrations alone": async ({ store }) => {
      const [noisy, other, third] = [newIntegration(), newIntegration(), newIntegration()];
      const noisyItems = [];
      for (let i = 0; i < 4; i++)
        noisyItems.push(await put(store, { integrationId: noisy, chatKey: `chat-${i}` }, at(i)));
      const otherItem = await put(store, { integrationId: other, chatKey: "chat-0" }, at(10));
      const thirdItem = await put(store, { integrationId: third, chatKey: "chat-0" }, at(11));
      const excluding = (excludeIntegrations: string[], limit = 2) =>
        store.outbox.claim({ owner: "w", limit, claimTtlMs: TTL, now: at(20), excludeIntegrations });
      // The oldest items are the noisy integration's; excluded, the others' come first, oldest first.
      expect(ids(await excluding([noisy], 1))).toEqual([otherItem]);
      expect(ids(await excluding([noisy, third]))).toEqual([]);
      expect(ids(await excluding([noisy]))).toEqual([thirdItem]);
      // An empty list excludes nothing.
      expect(ids(await excluding([], 10))).toEqual(noisyItems);
    },

    "claim honours the limit and serves the oldest chats first": async ({ store }) => {
      const integrationId = newIntegration();
      const heads = [];
      for (let i = 0; i < 5; i++)
        heads.push(await put(store, { integrationId, chatKey: `chat-${i}` }, at(i)));
      expect(await claim(store, "w", at(10), 0)).toEqual([]);
      expect(ids(await claim(store, "w", at(10), 2))).toEqual(heads.slice(0, 2));
      expect(ids(await claim(store, "w", at(10), 2))).toEqual(heads.slice(2, 4));
      expect(ids(await claim(store, "w", at(10), 2))).toEqual(heads.slice(4));
    },

    "one claim takes over expired claims (attempts + 1) and claims fresh heads (attempts kept), oldest first":
      async ({ store }) => {
        const integrationId = newIntegration();
        const crashed = await put(store, { integrationId, chatKey: "A" }, at(0));
        await put(store, { integrationId, chatKey: "A" }, at(1));
        expect(ids(await claim(store, "w1", at(10), 10, 1_000))).toEqual([crashed]);
        const failed = await put(store, { integrationId, chatKey: "B" }, at(20));
        expect(ids(await claim(store, "w1", at(30), 10, 1_000))).toEqual([failed]);
        expect(await store.outbox.fail(failed, "w1", { retryAt: at(40), error: "later" })).toBe(true);
        const fresh = await put(store, { integrationId, chatKey: "C" }, at(50));
        // At 2 000: A's claim (until 1 010) expired, B is due again, C was never claimed.
        const taken = await claim(store, "w2", at(2_000), 10, 1_000);
        expect(taken.map(({ id, attempts, claimedBy }) => ({ id, attempts, claimedBy }))).toEqual([
          { id: crashed, attempts: 1, claimedBy: "w2" },
          { id: failed, attempts: 1, claimedBy: "w2" },
          { id: fresh, attempts: 0, claimedBy: "w2" },
        ]);
        expect(
          taken.every(
            (item) => item.status === "claimed" && item.claimUntil?.getTime() === at(3_000).getTime(),
          ),
        ).toBe(true);
        expect(await claim(store, "w1", at(2_001), 10, 1_000)).toEqual([]);
      },

    "complete, fail and markDead need the current owner of a live claim": async ({ store }) => {
      const integrationId = newIntegration();
      const id = await put(store, { integrationId }, at(0));
      expect(await store.outbox.complete(id, "w1")).toBe(false);
      expect(await store.outbox.fail(id, "w1", { retryAt: at(1), error: "x" })).toBe(false);
      expect(await store.outbox.markDead(id, "w1", "x")).toBe(false);
      await claim(store, "w1", at(1));
      expect(await store.outbox.complete(id, "w2")).toBe(false);
      expect(await store.outbox.fail(id, "w2", { retryAt: at(1), error: "x" })).toBe(false);
      expect(await store.outbox.markDead(id, "w2", "x")).toBe(false);
      expect(await store.outbox.complete("missing", "w1")).toBe(false);
      expect(await store.outbox.complete(id, "w1")).toBe(true);
      expect(await store.outbox.complete(id, "w1")).toBe(false);
      expect(await store.outbox.fail(id, "w1", { retryAt: at(1), error: "x" })).toBe(false);
      expect(await store.outbox.markDead(id, "w1", "x")).toBe(false);
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 0, claimed: 0, done: 1, dead: 0 });
    },

    "fail returns the item to pending with attempts + 1 and holds its chat until retryAt": async ({
      store,
    }) => {
      const integrationId = newIntegration();
      const first = await put(store, { integrationId, chatKey: "A" }, at(0));
      const second = await put(store, { integrationId, chatKey: "A" }, at(1));
      await claim(store, "w1", at(10));
      expect(
        await store.outbox.fail(first, "w1", { retryAt: at(5_000), error: "HTTP 503 from Chatwoot" }),
      ).toBe(true);
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 2, claimed: 0, done: 0, dead: 0 });
      expect(await claim(store, "w2", at(4_999))).toEqual([]);
      const [retried] = await claim(store, "w2", at(5_000));
      expect(retried).toMatchObject({
        id: first,
        attempts: 1,
        lastError: "HTTP 503 from Chatwoot",
        availableAt: at(5_000),
        claimedBy: "w2",
        claimUntil: at(5_000 + TTL),
      });
      await store.outbox.fail(first, "w2", { retryAt: at(6_000), error: "again" });
      const [third] = await claim(store, "w3", at(6_000));
      expect(third).toMatchObject({ id: first, attempts: 2, lastError: "again" });
      await store.outbox.complete(first, "w3");
      expect(ids(await claim(store, "w3", at(6_001)))).toEqual([second]);
    },

    "fail with attempted: false puts an item back untried: attempts kept, chat held until retryAt": async ({
      store,
    }) => {
      const integrationId = newIntegration();
      const first = await put(store, { integrationId, chatKey: "A" }, at(0));
      const second = await put(store, { integrationId, chatKey: "A" }, at(1));
      await claim(store, "w1", at(10));
      await store.outbox.fail(first, "w1", { retryAt: at(100), error: "HTTP 503 from Chatwoot" });
      for (let round = 0; round < 3; round++) {
        const [again] = await claim(store, "w1", at(1_000 * (round + 1)));
        expect(again).toMatchObject({ id: first, attempts: 1 });
        expect(
          await store.outbox.fail(first, "w1", {
            retryAt: at(1_000 * (round + 1) + 500),
            error: "integration is paused",
            attempted: false,
          }),
        ).toBe(true);
        expect(await claim(store, "w2", at(1_000 * (round + 1) + 499))).toEqual([]);
      }
      const [last] = await claim(store, "w2", at(9_000));
      expect(last).toMatchObject({ id: first, attempts: 1, lastError: "integration is paused" });
      await store.outbox.complete(first, "w2");
      expect(ids(await claim(store, "w2", at(9_001)))).toEqual([second]);
    },

    "extend keeps a claim alive past its first deadline, for its holder only": async ({ store }) => {
      const integrationId = newIntegration();
      const first = await put(store, { integrationId, chatKey: "A" }, at(0));
      await claim(store, "w1", at(1_000), 10, 2_000);
      expect(await store.outbox.extend(first, "w2", at(10_000))).toBe(false);
      expect(await store.outbox.extend(first, "w1", at(10_000))).toBe(true);
      // Past the first deadline (3 000) the item is still held.
      expect(await claim(store, "w2", at(5_000), 10, 2_000)).toEqual([]);
      const [taken] = await claim(store, "w2", at(10_000), 10, 2_000);
      expect(taken).toMatchObject({ id: first, claimedBy: "w2", attempts: 1 });
      expect(await store.outbox.extend(first, "w1", at(20_000))).toBe(false);
      expect(await store.outbox.complete(first, "w2")).toBe(true);
      expect(await store.outbox.extend(first, "w2", at(20_000))).toBe(false);
    },

    "markDead gives up on an item and it no longer blocks its chat key": async ({ store }) => {
      const integrationId = newIntegration();
      const first = await put(store, { integrationId, chatKey: "A" }, at(0));
      const second = await put(store, { integrationId, chatKey: "A" }, at(1));
      await claim(store, "w1", at(10));
      expect(await store.outbox.markDead(first, "w1", "permanent: 422")).toBe(true);
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 1, claimed: 0, done: 0, dead: 1 });
      expect(ids(await claim(store, "w1", at(11)))).toEqual([second]);
      expect(await store.outbox.complete(first, "w1")).toBe(false);
    },

    "an item whose claim deadline passed is claimable again (one more attempt) and the old owner loses it":
      async ({ store }) => {
        const integrationId = newIntegration();
        const first = await put(store, { integrationId, chatKey: "A" }, at(0));
        await put(store, { integrationId, chatKey: "A" }, at(1));
        await claim(store, "w1", at(1_000), 10, 2_000);
        expect(await claim(store, "w2", at(2_999))).toEqual([]);
        const [reclaimed, ...rest] = await claim(store, "w2", at(3_000), 10, 2_000);
        expect(rest).toEqual([]);
        // The lost claim counts as an attempt whose outcome is unknown.
        expect(reclaimed).toMatchObject({ id: first, claimedBy: "w2", claimUntil: at(5_000), attempts: 1 });
        expect(await store.outbox.complete(first, "w1")).toBe(false);
        expect(await store.outbox.fail(first, "w1", { retryAt: at(0), error: "late" })).toBe(false);
        expect(await store.outbox.complete(first, "w2")).toBe(true);
      },

    "find returns the item stored under a dedupe key in every status, per integration": async ({ store }) => {
      const integrationId = newIntegration();
      const other = newIntegration();
      expect(await store.outbox.find(integrationId, "cw:1")).toBeNull();
      const id = await put(store, { integrationId, chatKey: "A", dedupeKey: "cw:1" }, at(0));
      await put(store, { integrationId: other, chatKey: "A", dedupeKey: "cw:2" }, at(0));
      expect(await store.outbox.find(integrationId, "cw:1")).toMatchObject({
        id,
        integrationId,
        dedupeKey: "cw:1",
        status: "pending",
        attempts: 0,
      });
      expect(await store.outbox.find(integrationId, "cw:2")).toBeNull();
      expect(await store.outbox.find(other, "cw:1")).toBeNull();
      await claim(store, "w", at(10));
      await store.outbox.markDead(id, "w", "gave up");
      expect(await store.outbox.find(integrationId, "cw:1")).toMatchObject({
        id,
        status: "dead",
        lastError: "gave up",
      });
    },

    "cancelAll removes the unfinished items of one integration (optionally one direction)": async ({
      store,
    }) => {
      const integrationId = newIntegration();
      const other = newIntegration();
      const done = await put(store, { integrationId, chatKey: "A", direction: "inbound" }, at(0));
      const dead = await put(store, { integrationId, chatKey: "B", direction: "outbound" }, at(1));
      await put(store, { integrationId, chatKey: "C", direction: "outbound" }, at(2));
      await claim(store, "w", at(10));
      await store.outbox.complete(done, "w");
      await store.outbox.markDead(dead, "w", "gone");
      await put(store, { integrationId, chatKey: "A", direction: "inbound" }, at(3));
      await put(store, { integrationId, chatKey: "D", direction: "outbound" }, at(4));
      await put(
        store,
        { integrationId: other, chatKey: "A", direction: "outbound", dedupeKey: "kept" },
        at(5),
      );
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 2, claimed: 1, done: 1, dead: 1 });

      expect(await store.outbox.cancelAll(integrationId, "outbound")).toBe(2);
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 1, claimed: 0, done: 1, dead: 1 });
      expect(await store.outbox.cancelAll(integrationId)).toBe(1);
      expect(await store.outbox.cancelAll(integrationId)).toBe(0);
      expect(await store.outbox.count(integrationId)).toEqual({ pending: 0, claimed: 0, done: 1, dead: 1 });
      expect(await store.outbox.count(other)).toEqual({ pending: 1, claimed: 0, done: 0, dead: 0 });
    },

    "after cancelAll the items left in a chat, and new ones, are claimable at once, though a claim was cancelled":
      async ({ store }) => {
        const integrationId = newIntegration();
        await put(store, { integrationId, chatKey: "A", direction: "inbound" }, at(0));
        expect(await claim(store, "w", at(1))).toHaveLength(1); // claimed for TTL: the chat is busy
        const outbound = await put(store, { integrationId, chatKey: "A", direction: "outbound" }, at(2));
        expect(await claim(store, "w", at(3))).toEqual([]);
        // The claimed inbound item goes: the outbound one behind it is the chat's head now.
        expect(await store.outbox.cancelAll(integrationId, "inbound")).toBe(1);
        expect(ids(await claim(store, "w", at(4)))).toEqual([outbound]);
        // Everything goes while that one is claimed: the chat's next item is not held back by the cancelled claim.
        expect(await store.outbox.cancelAll(integrationId)).toBe(1);
        const next = await put(store, { integrationId, chatKey: "A", direction: "inbound" }, at(5));
        expect(ids(await claim(store, "w", at(6)))).toEqual([next]);
      },

    "a cancelled item's dedupe key can be enqueued again": async ({ store }) => {
      const integrationId = newIntegration();
      await put(store, { integrationId, dedupeKey: "wa:again" }, at(0));
      await store.outbox.cancelAll(integrationId);
      await put(store, { integrationId, dedupeKey: "wa:again" }, at(1));
      expect((await store.outbox.count(integrationId)).pending).toBe(1);
    },

    "count reports every status, zero for an unknown integration": async ({ store }) => {
      expect(await store.outbox.count(newIntegration())).toEqual({
        pending: 0,
        claimed: 0,
        done: 0,
        dead: 0,
      });
    },
  },
};
