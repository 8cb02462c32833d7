import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChatwootRequestError } from "../chatwoot/index.js";
import type { Integration, IntegrationRepository } from "../integrations/index.js";
import type { Logger } from "../observability/index.js";
import { createMemoryStore } from "../store/memory.js";
import type { Lease, LeaseStore } from "../store/ports.js";
import type { RealtimeHub } from "./hub.js";
import { createRealtimeOwnership } from "./ownership.js";

// Realtime ownership with the memory lease store, a hand-driven clock and interval, and a recording hub: which
// subscriptions a process takes, keeps, hands back and drops, and what it tells (mutation testing: docs/testing.md).

const TTL = 15_000;
const ME = "proc-a";
const START = 1_800_000_000_000;

function integration(id: string, patch: Partial<Integration> = {}): Integration {
  return {
    id,
    instance: `inst-${id}`,
    status: "active",
    version: 1,
    baseUrl: "https://cw.example.com",
    accountId: 7,
    apiToken: "token",
    webhookSecret: null,
    signingSecret: null,
    chatwootVersion: null,
    inboxId: 11,
    inboxName: "WhatsApp",
    chatwootUserId: 3,
    deliveryMode: "realtime",
    signMessages: false,
    ignoreGroups: false,
    startAsPending: false,
    reopenResolved: false,
    lastError: "",
    provisioningUntil: null,
    createdAt: new Date(START),
    updatedAt: new Date(START),
    ...patch,
  };
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise of a round run (the memory store and the doubles never wait on timers or I/O). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function setup(integrations: Integration[]) {
  let now = START;
  const clock = { now: () => new Date(now) };
  const store = createMemoryStore();
  const faults = { renew: false, list: false };
  const calls: string[] = [];
  /** One-shot waits: before the next acquire of a lease name, after the next renewal's statement. */
  const gates = { acquire: new Map<string, Promise<void>>(), renewed: null as Promise<void> | null };
  const leases: LeaseStore = {
    async acquire(name, ...rest) {
      calls.push(`acquire ${name}`);
      const gate = gates.acquire.get(name);
      gates.acquire.delete(name);
      if (gate) await gate;
      return store.leases.acquire(name, ...rest);
    },
    async renew(...args) {
      calls.push("renew");
      if (faults.renew) throw new Error("db down");
      const renewed = await store.leases.renew(...args);
      const gate = gates.renewed;
      gates.renewed = null;
      if (gate) await gate;
      return renewed;
    },
    release: (...args) => store.leases.release(...args),
    get: (...args) => store.leases.get(...args),
    list: (...args) => (faults.list ? Promise.reject(new Error("list down")) : store.leases.list(...args)),
  };

  const rows = new Map(integrations.map((row) => [row.id, row]));
  const updates: Array<{ id: string; patch: Partial<Integration> }> = [];
  let allCalls = 0;
  let gate: Promise<void> | null = null;
  const repository = {
    async *all() {
      allCalls++;
      if (gate) await gate;
      yield* [...rows.values()];
    },
    async getById(id: string) {
      return rows.get(id) ?? null;
    },
    async update(current: Integration, patch: Partial<Integration>) {
      updates.push({ id: current.id, patch });
      const next = { ...current, ...patch, version: current.version + 1 };
      rows.set(current.id, next);
      return next;
    },
  } as unknown as IntegrationRepository;

  const attached: Array<{ id: string; version: number; signal: AbortSignal | undefined }> = [];
  const detached: string[] = [];
  const probed: Array<{ id: string; signal: AbortSignal | undefined }> = [];
  /** When each round asked the hub to check the links it holds (profile, membership, deafness). */
  const verified: number[] = [];
  let verifyFails = false;
  /** What the next attach of an integration does: resolve (default), or wait for / fail with this. */
  const attachPlan = new Map<string, Array<Promise<void> | Error>>();
  const hub = {
    async attach(target: Integration, signal?: AbortSignal) {
      attached.push({ id: target.id, version: target.version, signal });
      const next = attachPlan.get(target.id)?.shift();
      if (next instanceof Error) throw next;
      if (next) await next;
    },
    detach(id: string) {
      detached.push(id);
    },
    async probe(target: Integration, signal?: AbortSignal) {
      probed.push({ id: target.id, signal });
    },
    async verify() {
      verified.push(now);
      if (verifyFails) throw new Error("profile unreadable");
    },
  } as unknown as RealtimeHub;

  const logs: Array<{ level: string; msg: string | undefined; obj: Record<string, unknown> }> = [];
  const record =
    (level: string) =>
    (obj: object, msg?: string): void => {
      logs.push({ level, msg, obj: obj as Record<string, unknown> });
    };
  const logger: Logger = {
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
  };

  const takeovers: Array<{ id: string; since: number }> = [];
  const ownership = createRealtimeOwnership({
    leases,
    integrations: repository,
    hub,
    clock,
    logger,
    owner: ME,
    ttlMs: TTL,
    onTakeover: (target, since) => takeovers.push({ id: target.id, since: since.getTime() }),
  });

  return {
    ownership,
    store,
    faults,
    calls,
    gates,
    rows,
    updates,
    attached,
    detached,
    probed,
    attachPlan,
    verified,
    failVerify() {
      verifyFails = true;
    },
    logs,
    takeovers,
    get allCalls() {
      return allCalls;
    },
    hold() {
      const wait = deferred();
      gate = wait.promise;
      return () => {
        gate = null;
        wait.resolve();
      };
    },
    advance(ms: number) {
      now += ms;
    },
    get now() {
      return now;
    },
    /** The next round: one interval later on the hand-driven timer, then everything it started. */
    async round() {
      vi.advanceTimersByTime(TTL / 3);
      await settle();
      await settle();
    },
    lease: (id: string) => store.leases.get(`realtime:${id}`),
    messages: (level: string) => logs.filter((log) => log.level === level).map((log) => log.msg),
  };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("realtime ownership rounds", () => {
  it("subscribe every serving realtime integration whose lease is free, and nothing else", async () => {
    const t = setup([
      integration("a"),
      integration("b", { status: "error", lastError: "realtime link lost" }),
      integration("c", { status: "paused" }),
      integration("d", { deliveryMode: "webhook" }),
      integration("e", { status: "provisioning", inboxId: null }),
    ]);
    t.ownership.start();
    await settle();

    expect(t.ownership.owned().sort()).toEqual(["a", "b"]);
    expect(t.attached.map((call) => call.id).sort()).toEqual(["a", "b"]);
    expect(await t.lease("a")).toEqual({
      name: "realtime:a",
      owner: ME,
      epoch: 1,
      expiresAt: new Date(START + TTL),
    });
    expect(await t.ownership.holder("b")).toMatchObject({ name: "realtime:b", owner: ME });
    expect(await t.store.leases.get(`member:${ME}`)).toMatchObject({
      owner: ME,
      expiresAt: new Date(START + TTL),
    });
    // The integration in `error` because of its link is healthy again; the other is left alone.
    expect(t.updates).toEqual([{ id: "b", patch: { status: "active", lastError: "" } }]);
    expect(t.takeovers).toEqual([]);
    expect(t.ownership.failure("a")).toBeNull();
    await t.ownership.stop();
  });

  it("take over an expired lease and fetch what was missed since the previous owner's last renewal", async () => {
    const t = setup([integration("a"), integration("b")]);
    await t.store.leases.acquire("realtime:a", "dead", TTL, new Date(START - TTL - 5_000));
    await t.store.leases.acquire("realtime:b", "alive", TTL, new Date(START - 1_000));
    t.ownership.start();
    await settle();

    expect(t.ownership.owned()).toEqual(["a"]);
    expect(await t.lease("a")).toMatchObject({ owner: ME, epoch: 2 });
    expect(t.takeovers).toEqual([{ id: "a", since: START - TTL - 5_000 }]);
    // b is live elsewhere: neither taken nor probed.
    expect(await t.lease("b")).toMatchObject({ owner: "alive", epoch: 1 });
    expect(t.probed).toEqual([]);
    await t.ownership.stop();
  });

  it("take a lease that expires exactly now", async () => {
    const t = setup([integration("a")]);
    await t.store.leases.acquire("realtime:a", "dead", TTL, new Date(START - TTL));
    t.ownership.start();
    await settle();
    expect(t.ownership.owned()).toEqual(["a"]);
    await t.ownership.stop();
  });

  it("take only a fair share: integrations ÷ live processes, rounded up", async () => {
    const t = setup([integration("a"), integration("b"), integration("c")]);
    await t.store.leases.acquire("member:other", "other", TTL, new Date(START));
    // Processes whose membership expired (now or earlier) do not count.
    await t.store.leases.acquire("member:gone", "gone", TTL, new Date(START - TTL));
    await t.store.leases.acquire("member:older", "older", TTL, new Date(START - 2 * TTL));
    t.ownership.start();
    await settle();
    expect(t.ownership.owned()).toHaveLength(2);
    await t.ownership.stop();
  });

  it("hand back what is above the fair share when another process joins, by letting the lease expire", async () => {
    const t = setup([integration("a"), integration("b")]);
    t.ownership.start();
    await settle();
    expect(t.ownership.owned()).toHaveLength(2);

    t.advance(1_000);
    await t.store.leases.acquire("member:other", "other", TTL, new Date(t.now));
    await t.round();
    const [kept] = t.ownership.owned();
    expect(t.ownership.owned()).toHaveLength(1);
    const gone = kept === "a" ? "b" : "a";
    expect(t.detached).toEqual([gone]);
    // Expired at once but still naming us: the next owner takes it now and knows since when to fetch.
    expect(await t.lease(gone)).toEqual({
      name: `realtime:${gone}`,
      owner: ME,
      epoch: 1,
      expiresAt: new Date(t.now),
    });
    expect(await t.lease(kept!)).toMatchObject({ owner: ME, expiresAt: new Date(t.now + TTL) });
    expect(t.logs).toContainEqual({
      level: "info",
      msg: "chatwoot: realtime subscription dropped",
      obj: { integrationId: gone, owner: ME, why: "handed over" },
    });
    await t.ownership.stop();
  });

  it("renew every held lease each round, from the time the round began", async () => {
    const t = setup([integration("a")]);
    t.ownership.start();
    await settle();
    t.advance(TTL / 3);
    await t.round();
    expect(await t.lease("a")).toMatchObject({ epoch: 1, expiresAt: new Date(START + TTL / 3 + TTL) });
    // Renewed, so the watchdog counts from the renewal: two thirds of the TTL later it still holds it.
    t.faults.renew = true;
    t.advance((TTL * 2) / 3);
    await t.round();
    expect(t.ownership.owned()).toEqual(["a"]);
    await t.ownership.stop();
  });

  it("check the links it holds each round (rotated pubsub token, lost membership, deafness), whatever that answers", async () => {
    const t = setup([integration("a")]);
    t.ownership.start();
    await settle();
    const before = t.verified.length;
    t.failVerify();
    t.advance(TTL / 3);
    await t.round();
    t.advance(TTL / 3);
    await t.round();
    // Two rounds, two checks; a failing check neither stops the rounds nor costs the lease.
    expect(t.verified.length - before).toBe(2);
    expect(t.ownership.owned()).toEqual(["a"]);
    expect(await t.lease("a")).toMatchObject({ epoch: 1 });
    await t.ownership.stop();
  });

  it("drop a subscription whose lease another process took", async () => {
    const t = setup([integration("a")]);
    t.ownership.start();
    await settle();
    await t.store.leases.release("realtime:a", ME);
    await t.store.leases.acquire("realtime:a", "other", TTL, new Date(t.now));
    await t.round();
    expect(t.ownership.owned()).toEqual([]);
    expect(t.detached).toEqual(["a"]);
    expect(t.logs).toContainEqual({
      level: "info",
      msg: "chatwoot: realtime subscription dropped",
      obj: { integrationId: "a", owner: ME, why: "lease lost" },
    });
    await t.ownership.stop();
  });

  it("keep subscriptions through a failed renewal until two thirds of the TTL have passed without one", async () => {
    const t = setup([integration("a")]);
    t.ownership.start();
    await settle();
    t.faults.renew = true;

    t.advance((TTL * 2) / 3);
    await t.round();
    expect(t.ownership.owned()).toEqual(["a"]);
    expect(t.logs).toContainEqual({
      level: "warn",
      msg: "chatwoot: realtime lease renewal failed",
      obj: { owner: ME, err: "db down" },
    });

    t.advance(1);
    await t.round();
    expect(t.ownership.owned()).toEqual([]);
    expect(t.detached).toEqual(["a"]);
    expect(t.logs).toContainEqual({
      level: "info",
      msg: "chatwoot: realtime subscription dropped",
      obj: { integrationId: "a", owner: ME, why: "lease not renewed in time" },
    });
    await t.ownership.stop();
  });

  it("subscribe again, under the same lease, an integration re-activated with a new configuration", async () => {
    const t = setup([integration("a")]);
    t.ownership.start();
    await settle();
    t.rows.set("a", integration("a", { version: 2, inboxName: "renamed" }));
    await t.round();
    expect(t.attached.map(({ id, version }) => [id, version])).toEqual([
      ["a", 1],
      ["a", 2],
    ]);
    expect(await t.lease("a")).toMatchObject({ epoch: 1 });
    // Done once: the next round sees the version it subscribed with.
    await t.round();
    expect(t.attached).toHaveLength(2);
    await t.ownership.stop();
  });

  it("log a failed re-subscription and retry it on the next round", async () => {
    const t = setup([integration("a")]);
    t.ownership.start();
    await settle();
    t.rows.set("a", integration("a", { version: 2 }));
    t.attachPlan.set("a", [new Error("cable refused")]);
    await t.round();
    expect(t.logs).toContainEqual({
      level: "warn",
      msg: "chatwoot: re-attach failed",
      obj: { integrationId: "a", err: "cable refused" },
    });
    expect(t.ownership.failure("a")).toBe("cable refused");
    await t.round();
    expect(t.ownership.owned()).toEqual(["a"]);
    expect(t.ownership.failure("a")).toBeNull();
    await t.ownership.stop();
  });

  it("leave a paused integration by letting its lease expire, and free the lease of a deleted one", async () => {
    const t = setup([integration("a"), integration("b")]);
    t.ownership.start();
    await settle();
    t.rows.set("a", integration("a", { status: "paused", version: 2 }));
    t.rows.delete("b");
    await t.round();
    expect(t.ownership.owned()).toEqual([]);
    expect(t.detached.sort()).toEqual(["a", "b"]);
    expect(await t.lease("a")).toMatchObject({ owner: ME, expiresAt: new Date(t.now) });
    expect(await t.lease("b")).toBeNull();
    expect(t.logs).toContainEqual({
      level: "info",
      msg: "chatwoot: realtime subscription dropped",
      obj: { integrationId: "b", owner: ME, why: "released" },
    });
    await t.ownership.stop();
  });

  it("give the lease back at once when a subscription is not confirmed, and say why", async () => {
    const t = setup([integration("a"), integration("b")]);
    t.attachPlan.set("a", [
      new ChatwootRequestError({
        kind: "http",
        method: "GET",
        url: "https://cw.example.com/api/v1/profile",
        status: 401,
        body: '{"error":"Invalid Access Token"}',
      }),
    ]);
    t.attachPlan.set("b", [new Error("subscription rejected")]);
    t.ownership.start();
    await settle();
    await settle();

    expect(t.ownership.owned()).toEqual([]);
    expect(t.ownership.failure("a")).toBe(
      'Chatwoot rejected the API token - verify chatwootApiToken. Detail: https://cw.example.com/api/v1/profile HTTP 401: {"error":"Invalid Access Token"}',
    );
    expect(t.ownership.failure("b")).toBe("subscription rejected");
    expect(await t.lease("b")).toMatchObject({ owner: ME, expiresAt: new Date(START) });
    expect(t.logs).toContainEqual({
      level: "warn",
      msg: "chatwoot: realtime subscription not confirmed",
      obj: { instance: "inst-b", err: "subscription rejected" },
    });

    // The next round tries again and the failure is forgotten once it works.
    await t.round();
    expect(t.ownership.owned().sort()).toEqual(["a", "b"]);
    expect(t.ownership.failure("a")).toBeNull();
    expect(t.ownership.failure("b")).toBeNull();
    await t.ownership.stop();
  });

  it("log a failed round and run the next one", async () => {
    const t = setup([integration("a")]);
    t.faults.list = true;
    t.ownership.start();
    await settle();
    expect(t.logs).toContainEqual({
      level: "error",
      msg: "chatwoot: realtime ownership round failed",
      obj: { owner: ME, err: "list down" },
    });
    expect(t.ownership.owned()).toEqual([]);
    t.faults.list = false;
    await t.round();
    expect(t.ownership.owned()).toEqual(["a"]);
    await t.ownership.stop();
  });

  it("never run two rounds at once", async () => {
    const t = setup([integration("a")]);
    const release = t.hold();
    t.ownership.start();
    await settle();
    vi.advanceTimersByTime(TTL / 3);
    vi.advanceTimersByTime(TTL / 3);
    await settle();
    expect(t.allCalls).toBe(1);
    release();
    await settle();
    expect(t.ownership.owned()).toEqual(["a"]);
    await t.round();
    expect(t.allCalls).toBe(2);
    await t.ownership.stop();
  });
});

describe("realtime ownership start and stop", () => {
  it("start once, with one unreferenced interval of a third of the TTL", async () => {
    const spy = vi.spyOn(globalThis, "setInterval");
    const t = setup([integration("a")]);
    t.ownership.start();
    t.ownership.start();
    await settle();
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.calls[0]![1]).toBe(TTL / 3);
    expect((spy.mock.results[0]!.value as NodeJS.Timeout).hasRef()).toBe(false);
    expect(t.allCalls).toBe(1);
    vi.advanceTimersByTime(TTL / 3 - 1);
    await settle();
    expect(t.allCalls).toBe(1);
    vi.advanceTimersByTime(1);
    await settle();
    expect(t.allCalls).toBe(2);
    await t.ownership.stop();
    spy.mockRestore();
  });

  it("stop waits for the round, hands every subscription over and leaves the membership", async () => {
    const t = setup([integration("a"), integration("b")]);
    const release = t.hold();
    t.ownership.start();
    await settle();
    const stopped = t.ownership.stop();
    release();
    await stopped;
    expect(vi.getTimerCount()).toBe(0);
    expect(t.ownership.owned()).toEqual([]);
    expect(t.detached.sort()).toEqual(["a", "b"]);
    for (const id of ["a", "b"])
      expect(await t.lease(id)).toMatchObject({ owner: ME, expiresAt: new Date(START) });
    expect(await t.store.leases.get(`member:${ME}`)).toBeNull();
    // Stopped: no more rounds.
    vi.advanceTimersByTime(TTL);
    await settle();
    expect(t.allCalls).toBe(1);
    // And it can be started again.
    t.ownership.start();
    await settle();
    expect(t.ownership.owned().sort()).toEqual(["a", "b"]);
    await t.ownership.stop();
  });
});

describe("realtime ownership on activation and deactivation", () => {
  const signal = new AbortController().signal;

  it("activate takes the free lease, subscribes with the caller's signal and needs no backfill", async () => {
    const t = setup([integration("a")]);
    await t.ownership.activate(integration("a"), signal);
    expect(t.ownership.owned()).toEqual(["a"]);
    expect(t.attached).toEqual([{ id: "a", version: 1, signal }]);
    expect(t.takeovers).toEqual([]);
  });

  it("activate after an expired owner backfills from that owner's last renewal", async () => {
    const t = setup([integration("a")]);
    await t.store.leases.acquire("realtime:a", "dead", TTL, new Date(START - 2 * TTL));
    await t.ownership.activate(integration("a"), signal);
    expect(t.takeovers).toEqual([{ id: "a", since: START - 2 * TTL }]);
    expect(await t.lease("a")).toMatchObject({ owner: ME, epoch: 2 });
  });

  it("activate confirms with a probe when another process holds the lease", async () => {
    const t = setup([integration("a")]);
    await t.store.leases.acquire("realtime:a", "other", TTL, new Date(START));
    await t.ownership.activate(integration("a"), signal);
    expect(t.probed).toEqual([{ id: "a", signal }]);
    expect(t.attached).toEqual([]);
    expect(t.ownership.owned()).toEqual([]);
  });

  it("activate of an integration this process owns subscribes again with the new configuration and renews", async () => {
    const t = setup([integration("a")]);
    await t.ownership.activate(integration("a"), signal);
    t.advance(10_000);
    await t.ownership.activate(integration("a", { version: 2 }), signal);
    expect(t.attached.map(({ version }) => version)).toEqual([1, 2]);
    expect(await t.lease("a")).toMatchObject({ epoch: 1, expiresAt: new Date(t.now + TTL) });
    expect(t.takeovers).toEqual([]);
    // Renewed at the activation: the watchdog counts from there.
    t.faults.renew = true;
    t.ownership.start();
    await settle();
    t.advance((TTL * 2) / 3);
    await t.round();
    expect(t.ownership.owned()).toEqual(["a"]);
    t.advance(1);
    await t.round();
    expect(t.ownership.owned()).toEqual([]);
    await t.ownership.stop();
  });

  it("a failed activation rejects with the hub's error", async () => {
    const t = setup([integration("a")]);
    t.attachPlan.set("a", [new Error("not confirmed")]);
    await expect(t.ownership.activate(integration("a"), signal)).rejects.toThrow("not confirmed");
    expect(t.ownership.owned()).toEqual([]);
  });

  it("release leaves at once and frees the lease; releasing what is not owned only frees the lease", async () => {
    const t = setup([integration("a")]);
    await t.ownership.activate(integration("a"), signal);
    await t.ownership.release("a");
    expect(t.ownership.owned()).toEqual([]);
    expect(t.detached).toEqual(["a"]);
    expect(await t.lease("a")).toBeNull();
    await t.ownership.release("a");
    expect(t.detached).toEqual(["a"]);
  });

  it("a subscription released while it was being confirmed is detached, never kept", async () => {
    const t = setup([integration("a")]);
    const first = deferred();
    t.attachPlan.set("a", [first.promise]);
    const activation = t.ownership.activate(integration("a"), signal);
    await settle();
    await t.ownership.release("a");
    // A second activation queues behind the first; released again before its turn.
    const second = t.ownership.activate(integration("a", { version: 2 }), signal);
    await settle();
    expect(t.ownership.owned()).toEqual(["a"]);
    await t.ownership.release("a");
    first.resolve();
    await expect(activation).rejects.toThrow("realtime lease lost while subscribing");
    await expect(second).rejects.toThrow("realtime lease lost before subscribing");
    expect(t.detached).toEqual(["a", "a", "a"]);
    expect(t.attached).toHaveLength(1);
    expect(t.ownership.owned()).toEqual([]);
  });

  it("subscription tasks of one integration run one after the other", async () => {
    const t = setup([integration("a")]);
    const first = deferred();
    t.attachPlan.set("a", [first.promise]);
    const one = t.ownership.activate(integration("a"), signal);
    await settle();
    const two = t.ownership.activate(integration("a", { version: 2 }), signal);
    await settle();
    expect(t.attached).toHaveLength(1);
    first.resolve();
    await one;
    await two;
    expect(t.attached.map(({ version }) => version)).toEqual([1, 2]);
    expect(t.ownership.owned()).toEqual(["a"]);
  });

  it("a round leaves alone an integration whose subscription task is running", async () => {
    const t = setup([integration("a")]);
    const pending = deferred();
    t.attachPlan.set("a", [pending.promise]);
    const activation = t.ownership.activate(integration("a"), signal);
    await settle();
    // Deactivated meanwhile (gone from the store) and re-activated (new version): the round must not touch it.
    t.rows.set("a", integration("a", { version: 5 }));
    t.ownership.start();
    await settle();
    expect(t.attached).toHaveLength(1);
    pending.resolve();
    await activation;
    await settle();
    expect(t.attached).toHaveLength(1);
    expect(t.ownership.owned()).toEqual(["a"]);
    await t.ownership.stop();
  });
});

describe("realtime ownership races", () => {
  const signal = new AbortController().signal;

  it("an integration stays busy until its last queued subscription task is done", async () => {
    const t = setup([integration("a")]);
    const first = deferred();
    const second = deferred();
    t.attachPlan.set("a", [first.promise, second.promise]);
    const one = t.ownership.activate(integration("a"), signal);
    await settle();
    const two = t.ownership.activate(integration("a", { version: 2 }), signal);
    await settle();
    first.resolve();
    await one;
    await settle();
    // The second task is still confirming: a round must not queue a third one for the stored version.
    t.rows.set("a", integration("a", { version: 3 }));
    t.ownership.start();
    await settle();
    expect(t.attached.map(({ version }) => version)).toEqual([1, 2]);
    second.resolve();
    await two;
    await t.ownership.stop();
  });

  it("the confirmation of a deleted integration does not fail the subscription", async () => {
    const t = setup([]);
    await t.ownership.activate(integration("gone", { status: "error" }), signal);
    expect(t.ownership.owned()).toEqual(["gone"]);
    expect(t.updates).toEqual([]);
  });

  it("a failed subscription that was superseded leaves the newer one alone", async () => {
    const t = setup([integration("a")]);
    const first = deferred();
    t.attachPlan.set("a", [first.promise]);
    const one = t.ownership.activate(integration("a"), signal);
    await settle();
    await t.ownership.release("a");
    const two = t.ownership.activate(integration("a", { version: 2 }), signal);
    await settle();
    first.reject(new Error("not confirmed"));
    await expect(one).rejects.toThrow("not confirmed");
    await two;
    expect(t.ownership.owned()).toEqual(["a"]);
    expect(await t.lease("a")).toMatchObject({ owner: ME, epoch: 2, expiresAt: new Date(START + TTL) });
  });

  it("a round renews nothing when it holds nothing", async () => {
    const t = setup([integration("a", { deliveryMode: "webhook" })]);
    t.ownership.start();
    await settle();
    await t.round();
    expect(t.calls.filter((call) => call === "renew")).toEqual([]);
    await t.ownership.stop();
  });

  it("a round goes on after a failed renewal", async () => {
    const t = setup([integration("a")]);
    t.ownership.start();
    await settle();
    t.faults.renew = true;
    t.rows.set("b", integration("b"));
    await t.round();
    expect(t.ownership.owned().sort()).toEqual(["a", "b"]);
    expect(t.messages("error")).toEqual([]);
    await t.ownership.stop();
  });

  it("a subscription left while its lease was being renewed is not touched by the renewal", async () => {
    const t = setup([integration("a")]);
    t.ownership.start();
    await settle();
    const renewed = deferred();
    t.gates.renewed = renewed.promise;
    vi.advanceTimersByTime(TTL / 3);
    await settle();
    await t.ownership.release("a");
    renewed.resolve();
    await settle();
    expect(t.messages("error")).toEqual([]);
    await t.ownership.stop();
  });

  it("a round keeps what an activation took while the round was reading the integrations", async () => {
    const t = setup([integration("a")]);
    const release = t.hold();
    t.ownership.start();
    await settle();
    // Activated meanwhile, its row not in the listing the round is reading.
    await t.ownership.activate(integration("new"), signal);
    release();
    await settle();
    // Kept (and, being the whole fair share of this single process, nothing else taken).
    expect(t.ownership.owned()).toEqual(["new"]);
    expect(t.detached).toEqual([]);
    await t.ownership.stop();
  });

  it("a round hands back a settled subscription, never one still confirming", async () => {
    const t = setup([integration("a"), integration("b")]);
    const pending = deferred();
    t.attachPlan.set("b", [pending.promise]);
    const activation = t.ownership.activate(integration("b"), signal);
    await settle();
    t.ownership.start();
    await settle();
    expect(t.ownership.owned()).toEqual(["b", "a"]);
    await t.store.leases.acquire("member:other", "other", TTL, new Date(t.now));
    await t.round();
    expect(t.ownership.owned()).toEqual(["b"]);
    expect(t.detached).toEqual(["a"]);
    pending.resolve();
    await activation;
    await t.ownership.stop();
  });

  it("a round takes neither twice nor again what an activation took during its own acquire", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5); // keep the free leases in listing order
    const t = setup([integration("a"), integration("b"), integration("c")]);
    const gate = deferred();
    t.gates.acquire.set("realtime:a", gate.promise);
    t.ownership.start();
    await settle();
    // While the round waits for the lease of a, activations take a and b.
    await t.ownership.activate(integration("a"), signal);
    await t.ownership.activate(integration("b"), signal);
    gate.resolve();
    await settle();
    await settle();
    expect(t.ownership.owned().sort()).toEqual(["a", "b", "c"]);
    expect(t.attached.map(({ id }) => id)).toEqual(["a", "b", "c"]);
    expect(t.calls.filter((call) => call.startsWith("acquire realtime:"))).toEqual([
      "acquire realtime:a", // the round's, held at the gate
      "acquire realtime:a", // the activations'
      "acquire realtime:b",
      "acquire realtime:c", // the round skips b, which is owned by now
    ]);
    await t.ownership.stop();
    vi.restoreAllMocks();
  });
});

describe("realtime ownership leases", () => {
  it("are named realtime:<integration id>, next to member:<owner>", async () => {
    const t = setup([integration("int_x")]);
    t.ownership.start();
    await settle();
    const names = (await t.store.leases.list("")).map((lease: Lease) => lease.name);
    expect(names).toEqual(["member:proc-a", "realtime:int_x"]);
    expect(t.ownership.owner).toBe(ME);
    await t.ownership.stop();
  });
});
