import { errorMessage } from "../errors/index.js";
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
  /** Items processed at once (distinct chats). */
  concurrency: number;
  /** A crashed process's claims return after this. */
  claimTtlMs: number;
  /** How often an idle dispatcher looks for work enqueued by other processes. */
  pollIntervalMs: number;
  /** This process, in the outbox claims. */
  owner: string;
}

/** Exponential backoff with jitter: between half and all of `base * 2^attempt`, capped. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Delivers outbox items: claims them from the shared outbox (one in flight per chat key, oldest first), runs
 * them concurrently across chats, and completes, retries with backoff, or dead-letters each one. Every process
 * runs one; the store's claims keep them from stepping on each other.
 */
export class OutboxDispatcher {
  readonly owner: string;
  private readonly options: DispatcherOptions;
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Per in-flight item: aborted when its claim is lost, or on shutdown. */
  private readonly controllers = new Map<string, AbortController>();
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly abort = new AbortController();
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;

  constructor(options: DispatcherOptions) {
    this.options = options;
    this.owner = options.owner;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
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

  /** Looks for work now (after a local enqueue). */
  wake(): void {
    this.wakeUp?.();
  }

  /** Stops claiming; waits for in-flight items to finish (or, after `graceMs`, aborts them: they return to the outbox). */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    const finished = Promise.all(this.inFlight.values()).then(() => true);
    const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref());
    if (!(await Promise.race([finished, timedOut]))) this.abort.abort();
    await this.loop;
    await Promise.all(this.inFlight.values());
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private async run(): Promise<void> {
    const { concurrency, pollIntervalMs } = this.options;
    while (this.running) {
      let claimed: OutboxItem[] = [];
      const free = concurrency - this.inFlight.size;
      // A claim is a transaction: with work in flight, wait until a batch of slots is free instead of claiming
      // one item per completion.
      const batch = this.inFlight.size === 0 ? 1 : Math.max(1, Math.ceil(concurrency / 4));
      if (free >= batch) {
        try {
          claimed = await this.options.outbox.claim({
            owner: this.owner,
            limit: free,
            claimTtlMs: this.options.claimTtlMs,
            now: this.options.clock.now(),
          });
        } catch (error) {
          this.options.logger.error({ err: errorMessage(error) }, "chatwoot: outbox claim failed");
        }
      }
      for (const item of claimed) {
        const task = this.handle(item).finally(() => {
          this.inFlight.delete(item.id);
          this.wake();
        });
        this.inFlight.set(item.id, task);
      }
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

  private async handle(item: OutboxItem): Promise<void> {
    const { outbox, logger } = this.options;
    let outcome: Outcome;
    const controller = new AbortController();
    this.controllers.set(item.id, controller);
    const signal = AbortSignal.any([this.abort.signal, controller.signal]);
    try {
      outcome = await this.options.process(item, signal);
    } catch (error) {
      outcome = { kind: "retry", error: errorMessage(error) };
    } finally {
      this.controllers.delete(item.id);
    }
    if (controller.signal.aborted) return; // another process holds the item now
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
