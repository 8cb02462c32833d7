import { afterEach, describe, expect, it } from "vitest";
import { silentLogger, systemClock } from "../observability/index.js";
import { createMemoryStore, type MemoryStore } from "../store/memory.js";
import type { OutboxItem } from "../store/ports.js";
import { type DispatcherOptions, fairShare, OutboxDispatcher, type Outcome } from "./dispatcher.js";

/** Waits until `check` holds (polling), or fails naming `what`. */
async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Running {
  item: OutboxItem;
  signal: AbortSignal;
  finish(outcome?: Outcome): void;
}

/**
 * A dispatcher over a memory store whose `process` holds every item until the test finishes it (or, with
 * `process`, does what it says). `running` lists the items being processed, `started` every start.
 */
function setup(options: Partial<DispatcherOptions> & { process?: DispatcherOptions["process"] } = {}) {
  const store: MemoryStore = createMemoryStore();
  const running = new Map<string, Running>();
  const started: OutboxItem[] = [];
  const dead: string[] = [];
  const dispatcher = new OutboxDispatcher({
    outbox: store.outbox,
    clock: systemClock,
    logger: silentLogger,
    process:
      options.process ??
      ((item, signal) => {
        started.push(item);
        return new Promise<Outcome>((resolve) => {
          running.set(item.id, {
            item,
            signal,
            finish(outcome = { kind: "done" }) {
              running.delete(item.id);
              resolve(outcome);
            },
          });
        });
      }),
    onDead: async (item) => void dead.push(item.id),
    retry: {
      inbound: { windowMs: 86_400_000, baseDelayMs: 10, maxDelayMs: 20 },
      outbound: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
    },
    concurrency: 4,
    itemTimeoutMs: 60_000,
    claimTtlMs: 30_000,
    pollIntervalMs: 10,
    owner: "test",
    ...options,
  });
  let n = 0;
  const enqueue = async (integrationId: string, chatKey: string) =>
    (
      await store.outbox.enqueue(
        { integrationId, direction: "outbound", chatKey, dedupeKey: `k${n++}`, payload: { n } },
        systemClock.now(),
      )
    ).id;
  const holding = () => {
    const counts: Record<string, number> = {};
    for (const { item } of running.values())
      counts[item.integrationId] = (counts[item.integrationId] ?? 0) + 1;
    return counts;
  };
  const finishAll = (integrationId: string) => {
    for (const entry of [...running.values()]) if (entry.item.integrationId === integrationId) entry.finish();
  };
  const record = (id: string) => store.raw.outbox.get(id)!;
  stops.push(() => {
    for (const entry of [...running.values()]) entry.finish();
    return dispatcher.stop(100);
  });
  return { store, dispatcher, running, started, dead, enqueue, holding, finishAll, record };
}

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
});

describe("fairShare", () => {
  it("splits the slots between the integrations at work, at least one each", () => {
    expect(fairShare(16, 0)).toBe(16);
    expect(fairShare(16, 1)).toBe(16);
    expect(fairShare(16, 2)).toBe(8);
    expect(fairShare(16, 3)).toBe(5);
    expect(fairShare(16, 40)).toBe(1);
  });
});

describe("fair delivery", () => {
  it("lets an integration alone use every slot", async () => {
    const t = setup();
    for (let chat = 0; chat < 6; chat++) await t.enqueue("noisy", `chat-${chat}`);
    t.dispatcher.start();
    await until(() => t.running.size === 4, "4 items in flight");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(t.holding()).toEqual({ noisy: 4 });
  });

  it("starts another integration's work at once while one holds every slot, and keeps its share after", async () => {
    const t = setup();
    for (let chat = 0; chat < 8; chat++) await t.enqueue("a", `chat-${chat}`);
    t.dispatcher.start();
    await until(() => t.running.size === 4, "a holding every slot");
    // Work of b turns up while every slot is a's: it borrows what a holds beyond the share of two (2 of 4).
    for (let chat = 0; chat < 8; chat++) await t.enqueue("b", `chat-${chat}`);
    await until(() => t.holding().b === 2, "b started");
    expect(t.holding()).toEqual({ a: 4, b: 2 });

    // From now on each holds its share (2) while the other has work waiting, whose ever work is older.
    t.finishAll("a");
    await until(() => t.running.size === 4, "the slots refilled");
    expect(t.holding()).toEqual({ a: 2, b: 2 });
    t.finishAll("b");
    await until(() => t.running.size === 4, "the slots refilled");
    expect(t.holding()).toEqual({ a: 2, b: 2 });
    t.finishAll("a");
    await until(() => t.running.size === 4, "the slots refilled");
    expect(t.holding()).toEqual({ a: 2, b: 2 });
    t.finishAll("a");
    // a has nothing left: b, alone now, may use every slot.
    await until(() => t.running.size === 4, "the slots refilled");
    expect(t.holding()).toEqual({ b: 4 });
  });

  it("never runs more than twice the concurrency, however many integrations turn up", async () => {
    const t = setup();
    for (let chat = 0; chat < 4; chat++) await t.enqueue("a", `chat-${chat}`);
    t.dispatcher.start();
    await until(() => t.running.size === 4, "a holding every slot");
    for (let integration = 0; integration < 10; integration++) {
      for (let chat = 0; chat < 4; chat++) await t.enqueue(`other-${integration}`, `chat-${chat}`);
    }
    await until(() => t.running.size === 8, "the others borrowing");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(t.running.size).toBe(8);
    // a got nothing new; the first to turn up got the share of two (2), the next ones one each.
    const counts = t.holding();
    expect(counts).toEqual({ a: 4, "other-0": 2, "other-1": 1, "other-2": 1 });
  });
});

describe("process warnings", () => {
  it("runs more items at once than Node's listener warning allows without a MaxListenersExceededWarning", async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on("warning", onWarning);
    try {
      // The default concurrency (16), then another integration's work borrowing slots: 24 items at once.
      const t = setup({ concurrency: 16 });
      for (let chat = 0; chat < 16; chat++) await t.enqueue("a", `chat-${chat}`);
      t.dispatcher.start();
      await until(() => t.running.size === 16, "16 items in flight");
      for (let chat = 0; chat < 16; chat++) await t.enqueue("b", `chat-${chat}`);
      await until(() => t.holding().b === 8, "b borrowing 8 slots");
      await new Promise((resolve) => setTimeout(resolve, 50)); // warnings are emitted on a later tick
      expect(warnings).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("item deadline", () => {
  it("frees the slot of an item whose work ignores its signal, and retries the item later", async () => {
    const signals: AbortSignal[] = [];
    const processed: string[] = [];
    const t = setup({
      concurrency: 1,
      itemTimeoutMs: 100,
      process: async (item, signal) => {
        processed.push(item.chatKey);
        if (item.chatKey === "stuck" && signals.length === 0) {
          signals.push(signal);
          return new Promise<Outcome>(() => {}); // never settles, never looks at its signal
        }
        return { kind: "done" };
      },
    });
    const stuck = await t.enqueue("a", "stuck");
    const next = await t.enqueue("b", "next");
    t.dispatcher.start();
    await until(() => t.record(next).status === "done", "the next item done, in the freed slot");
    expect(signals[0]!.aborted).toBe(true);
    // Not given up: retried, and done on its second attempt.
    await until(() => t.record(stuck).status === "done", "the stuck item retried");
    expect(t.record(stuck)).toMatchObject({ attempts: 1, lastError: "timed out after 0.1s" });
    expect(processed).toEqual(["stuck", "next", "stuck"]);
    expect(t.dead).toEqual([]);
  });

  it("counts a deadline as a transient failure, whatever the aborted work answered", async () => {
    const t = setup({
      concurrency: 1,
      itemTimeoutMs: 50,
      process: (_item, signal) =>
        new Promise<Outcome>((resolve) =>
          signal.addEventListener("abort", () => resolve({ kind: "permanent", error: "aborted" })),
        ),
    });
    const id = await t.enqueue("a", "chat");
    t.dispatcher.start();
    // Retried up to the policy's 3 attempts, each one a deadline, then given up like any transient failure.
    await until(() => t.record(id).status === "dead", "given up after 3 attempts");
    expect(t.record(id)).toMatchObject({ attempts: 2, lastError: "timed out after 0.05s" });
    expect(t.dead).toEqual([id]);
  });

  it("completes an item whose work finishes just after its deadline", async () => {
    const t = setup({
      concurrency: 1,
      itemTimeoutMs: 50,
      process: (_item, signal) =>
        new Promise<Outcome>((resolve) =>
          signal.addEventListener("abort", () => setTimeout(() => resolve({ kind: "done" }), 20)),
        ),
    });
    const id = await t.enqueue("a", "chat");
    t.dispatcher.start();
    await until(() => t.record(id).status === "done", "done");
    expect(t.record(id).attempts).toBe(0);
  });

  it("stops in bounded time even when the work ignores its signal", async () => {
    let started = false;
    const t = setup({
      process: () => {
        started = true;
        return new Promise<Outcome>(() => {});
      },
    });
    const id = await t.enqueue("a", "chat");
    t.dispatcher.start();
    await until(() => started, "the work started");
    const stopping = Date.now();
    await t.dispatcher.stop(50);
    expect(Date.now() - stopping).toBeLessThan(3_000);
    // Left claimed: another process takes it over once its claim expires.
    expect(t.record(id).status).toBe("claimed");
  });
});
