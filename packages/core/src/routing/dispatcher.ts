import { setMaxListeners } from "node:events";
import { errorMessage } from "../errors/index.js";
import { deadline } from "../net/deadline.js";
import type { Clock, Logger } from "../observability/index.js";
import type { OutboxDirection, OutboxItem, OutboxStore } from "../store/ports.js";

/** How one outbox item ended this time. */
export type Outcome =
  | { kind: "done" }
  /** Try again later; `afterMs` overrides the backoff (e.g. a paused integration). */
  | { kind: "retry"; error: string; afterMs?: number }
  /** Will never succeed; `error` explains why. */
  | { kind: "permanent"; error: string }
  /**
   * Not tried (its integration is paused, or the item must wait for something): back to the outbox for `afterMs`,
   * without counting an attempt, and never given up for it. Work is kept, not dropped, while it waits.
   */
  | { kind: "defer"; reason: string; afterMs: number };

export interface RetryPolicy {
  /** Give up after this many attempts (outbound: 3). */
  maxAttempts?: number;
  /** Give up when the item is older than this (inbound: 24 h). */
  windowMs?: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface DispatcherOptions {
  outbox: OutboxStore;
  clock: Clock;
  logger: Logger;
  process(item: OutboxItem, signal: AbortSignal): Promise<Outcome>;
  /** Told when an item is given up (dead letter). */
  onDead(item: OutboxItem, error: string): Promise<void>;
  retry: Record<OutboxDirection, RetryPolicy>;
  /**
   * Items processed at once (distinct chats), shared fairly between integrations: see {@link fairShare} and
   * `docs/scaling.md` ("Fair delivery").
   */
  concurrency: number;
  /**
   * Longest time one item may take. Past it the item's signal is aborted, its slot is freed (even when the work
   * ignores the signal) and it is retried later: a transient failure, never a permanent one.
   */
  itemTimeoutMs: number;
  /** A crashed process's claims return after this. */
  claimTtlMs: number;
  /** How often an idle dispatcher looks for work enqueued by other processes. */
  pollIntervalMs: number;
  /** This process, in the outbox claims. */
  owner: string;
}

/**
 * The fair share of each of `integrations` integrations with work in flight: `max(1, ⌊concurrency ÷ integrations⌋)`
 * items at once. An integration at its share or above gets new items only when no other integration has one
 * waiting; alone, it may use every slot.
 */
export function fairShare(concurrency: number, integrations: number): number {
  return Math.max(1, Math.floor(concurrency / Math.max(1, integrations)));
}

/**
 * How long an item whose signal was aborted (its deadline, a lost claim, shutdown) may still take to settle before
 * its slot is freed anyway; a settled outcome is still recorded (a reply completed just then is not sent again).
 */
const ABANDON_GRACE_MS = 1_000;

/** Exponential backoff with jitter: between half and all of `base * 2^attempt`, capped. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Delivers outbox items: claims them from the shared outbox (one in flight per chat key, oldest first), runs
 * them concurrently across chats, and completes, retries with backoff, or dead-letters each one. Every process
 * runs one; the store's claims keep them from stepping on each other.
 *
 * Fair delivery ({@link fairShare}): a claim first leaves out the integrations holding the share they would have
 * with one more integration at work, then those holding their share now; what the others leave goes to anyone, so
 * an integration alone may use every slot. When no batch of slots is free, waiting work of the others borrows the
 * slots held beyond the first of those shares (at most twice `concurrency` items run at once, briefly), and the
 * integrations above their share get nothing new until they are back within it. Each item has a deadline
 * (`itemTimeoutMs`): past it the slot is freed, whatever the work does, and the item is retried later.
 */
export class OutboxDispatcher {
  readonly owner: string;
  private readonly options: DispatcherOptions;
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Items in flight per integration. */
  private readonly held = new Map<string, number>();
  /**
   * Until then (`performance.now()`), claims do not look for the work of other integrations first: the last look
   * found none. Cleared when an integration below its share enqueues work here or finishes an item.
   */
  private othersIdleUntil = 0;
  /** The work in flight, by item id: aborted when its claim is lost. */
  private readonly controllers = new Map<string, { abort(reason: unknown): void }>();
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly abort = new AbortController();
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;

  constructor(options: DispatcherOptions) {
    this.options = options;
    this.owner = options.owner;
    // Each item in flight listens for the stop (its deadline's parent), at most twice `concurrency` at once: past 10
    // listeners Node would print a "possible memory leak" warning into the host's logs under ordinary load.
    setMaxListeners(2 * options.concurrency, this.abort.signal);
  }

  /** Whether the claim loop runs: started, not stopped, and not ended by an unexpected error (health). */
  get isRunning(): boolean {
    return this.running && !this.loopEnded;
  }
  private loopEnded = false;

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopEnded = false;
    this.loop = this.run().finally(() => {
      this.loopEnded = true;
    });
    // Keep the claims of items being worked on alive, so a slow attempt is never taken over while it runs.
    const { claimTtlMs } = this.options;
    this.heartbeat = setInterval(() => void this.extendClaims(claimTtlMs), claimTtlMs / 3);
    this.heartbeat.unref();
  }

  private async extendClaims(claimTtlMs: number): Promise<void> {
    const until = new Date(this.options.clock.now().getTime() + claimTtlMs);
    await Promise.all(
      [...this.controllers.entries()].map(async ([id, controller]) => {
        const held = await this.options.outbox.extend(id, this.owner, until).catch(() => true);
        if (!held) controller.abort(new Error("outbox claim lost"));
      }),
    );
  }

  /** Looks for work now (after a local enqueue: `integrationId` says whose, for the fair share). */
  wake(integrationId?: string): void {
    if (
      integrationId !== undefined &&
      (this.held.get(integrationId) ?? 0) < fairShare(this.options.concurrency, this.held.size + 1)
    ) {
      this.othersIdleUntil = 0;
    }
    this.wakeUp?.();
  }

  /**
   * Stops claiming; waits for in-flight items to finish (or, after `graceMs`, aborts them: they return to the outbox
   * once their claims expire). Work that ignores its signal is left behind a second later.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    await this.loop; // no claim after this one
    const finished = Promise.all(this.inFlight.values()).then(() => true);
    const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref());
    if (!(await Promise.race([finished, timedOut]))) this.abort.abort();
    await Promise.all(this.inFlight.values());
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private async run(): Promise<void> {
    const { concurrency, pollIntervalMs } = this.options;
    while (this.running) {
      const claimed = await this.claimFairly();
      if (!this.running) {
        await this.handBack(claimed);
        break;
      }
      for (const item of claimed) this.begin(item);
      if (claimed.length > 0 && this.inFlight.size < concurrency) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollIntervalMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = null;
    }
  }

  /** What to claim now, the fair share applied (see the class comment). */
  private async claimFairly(): Promise<OutboxItem[]> {
    const { concurrency } = this.options;
    const running = this.inFlight.size;
    const free = concurrency - running;
    const active = this.held.size;
    // The share each integration at work would have with one more at work: those holding it or more give way.
    const share = fairShare(concurrency, active + 1);
    const above = this.holding(share);
    // A claim is a transaction: with work in flight, wait until a batch of slots is free instead of claiming
    // one item per completion.
    const batch = running === 0 ? 1 : Math.max(1, Math.ceil(concurrency / 4));
    if (free >= batch) {
      const claimed: OutboxItem[] = [];
      if (above.length > 0 && !this.othersIdle()) {
        // The others' work first: of integrations below that share, then of those below their share now; what
        // they leave goes to anyone.
        const levels = [above];
        const full = this.holding(fairShare(concurrency, active));
        if (full.length > 0 && full.length < above.length) levels.push(full);
        for (const exclude of levels) {
          claimed.push(...(await this.claim(free - claimed.length, exclude)));
          if (claimed.length === free) return claimed;
        }
        this.markOthersIdle();
      }
      return [...claimed, ...(await this.claim(free - claimed.length))];
    }
    // No batch of slots is free. Work of the others that is waiting borrows the slots held beyond that share.
    if (above.length === 0 || this.othersIdle()) return [];
    const beyond = above.reduce((sum, id) => sum + this.held.get(id)! - share, 0);
    const borrowed = Math.max(0, running - concurrency);
    const limit = Math.min(Math.max(0, free) + beyond - borrowed, share, 2 * concurrency - running);
    if (limit <= 0) return [];
    const claimed = await this.claim(limit, above);
    if (claimed.length < limit) this.markOthersIdle();
    return claimed;
  }

  /** Items claimed as the dispatcher stopped: back to the outbox untried, for any process to take at once. */
  private async handBack(items: OutboxItem[]): Promise<void> {
    const now = this.options.clock.now();
    await Promise.all(
      items.map((item) =>
        this.options.outbox
          .fail(item.id, this.owner, {
            retryAt: now,
            error: "not started: the dispatcher stopped",
            attempted: false,
          })
          .catch(() => false),
      ),
    );
  }

  /** The integrations with `share` items or more in flight. */
  private holding(share: number): string[] {
    return [...this.held].filter(([, count]) => count >= share).map(([id]) => id);
  }

  private othersIdle(): boolean {
    return performance.now() < this.othersIdleUntil;
  }

  private markOthersIdle(): void {
    this.othersIdleUntil = performance.now() + this.options.pollIntervalMs;
  }

  private async claim(limit: number, excludeIntegrations: string[] = []): Promise<OutboxItem[]> {
    try {
      return await this.options.outbox.claim({
        owner: this.owner,
        limit,
        claimTtlMs: this.options.claimTtlMs,
        now: this.options.clock.now(),
        ...(excludeIntegrations.length > 0 ? { excludeIntegrations } : {}),
      });
    } catch (error) {
      this.options.logger.error({ err: errorMessage(error) }, "chatwoot: outbox claim failed");
      return [];
    }
  }

  private begin(item: OutboxItem): void {
    const { integrationId } = item;
    this.held.set(integrationId, (this.held.get(integrationId) ?? 0) + 1);
    const task = this.handle(item).finally(() => {
      this.inFlight.delete(item.id);
      const left = this.held.get(integrationId)! - 1;
      if (left > 0) this.held.set(integrationId, left);
      else this.held.delete(integrationId);
      // The next item of its chat may be due now: below the share, that is work of others to look for first.
      if (left < fairShare(this.options.concurrency, this.held.size + 1)) this.othersIdleUntil = 0;
      this.wake();
    });
    this.inFlight.set(item.id, task);
  }

  private async handle(item: OutboxItem): Promise<void> {
    const { outbox, logger, itemTimeoutMs } = this.options;
    // One signal for the work: the item's deadline, the bridge stopping, or the claim lost (`extendClaims`).
    const timeout = `timed out after ${itemTimeoutMs / 1000}s`;
    const limit = deadline(itemTimeoutMs, this.abort.signal, () => new Error(timeout));
    let lost = false;
    this.controllers.set(item.id, {
      abort(reason) {
        lost = true;
        limit.abort(reason);
      },
    });
    const { signal } = limit;
    const work = Promise.resolve()
      .then(() => this.options.process(item, signal))
      .catch((error: unknown): Outcome => ({ kind: "retry", error: errorMessage(error) }));
    let outcome: Outcome | null;
    try {
      outcome = await settledOrAbandoned(work, signal, ABANDON_GRACE_MS);
    } finally {
      limit.done();
      this.controllers.delete(item.id);
    }
    if (lost) return; // another process holds the item now
    if (limit.timedOut && outcome?.kind !== "done") {
      // Whatever the aborted work answered (or not, if it ignored its signal): a transient failure.
      logger.warn(
        { item: item.id, direction: item.direction, abandoned: outcome === null },
        `chatwoot: outbox item ${timeout}`,
      );
      outcome = { kind: "retry", error: timeout };
    }
    if (outcome === null) return; // shutting down: the claim expires and another process takes it
    try {
      if (outcome.kind === "done") {
        await outbox.complete(item.id, this.owner);
        return;
      }
      if (this.abort.signal.aborted) return; // shutting down: the claim expires and another process takes it
      const now = this.options.clock.now();
      if (outcome.kind === "defer") {
        await outbox.fail(item.id, this.owner, {
          retryAt: new Date(now.getTime() + outcome.afterMs),
          error: outcome.reason,
          attempted: false,
        });
        return;
      }
      const policy = this.options.retry[item.direction];
      const attempts = item.attempts + 1;
      const exhausted =
        outcome.kind === "permanent" ||
        (policy.maxAttempts !== undefined && attempts >= policy.maxAttempts) ||
        (policy.windowMs !== undefined && now.getTime() - item.createdAt.getTime() >= policy.windowMs);
      if (exhausted) {
        await outbox.markDead(item.id, this.owner, outcome.error);
        logger.warn(
          { item: item.id, direction: item.direction, err: outcome.error },
          "chatwoot: dead letter",
        );
        await this.options.onDead(item, outcome.error);
        return;
      }
      const delay =
        outcome.kind === "retry" && outcome.afterMs !== undefined
          ? outcome.afterMs
          : backoffDelay(policy, item.attempts);
      await outbox.fail(item.id, this.owner, {
        retryAt: new Date(now.getTime() + delay),
        error: outcome.error,
      });
    } catch (error) {
      logger.error({ item: item.id, err: errorMessage(error) }, "chatwoot: could not record outbox outcome");
    }
  }
}

/**
 * The work's outcome; or, when `signal` is aborted first, whatever it settles with within `graceMs`, else null (the
 * work is left running on its own: its slot is freed, its outcome ignored).
 */
function settledOrAbandoned<T>(work: Promise<T>, signal: AbortSignal, graceMs: number): Promise<T | null> {
  return new Promise((resolve) => {
    let grace: NodeJS.Timeout | undefined;
    const onAbort = () => {
      grace = setTimeout(() => resolve(null), graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    void work.then((value) => {
      signal.removeEventListener("abort", onAbort);
      clearTimeout(grace);
      resolve(value);
    });
  });
}
