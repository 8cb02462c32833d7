import { errorMessage } from "../errors/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { LeaseStore, OutboxStore } from "../store/ports.js";

export interface RetentionOptions {
  outbox: OutboxStore;
  leases: LeaseStore;
  clock: Clock;
  logger: Logger;
  /** This process, in the lease. */
  owner: string;
  /** Done items are deleted this long after they were enqueued. */
  doneMs: number;
  /** Dead letters are deleted this long after they were enqueued. */
  deadMs: number;
  /** Items deleted per statement. */
  batchSize: number;
  /** Batches per round at most; the rest waits for the next round. */
  maxBatches: number;
  /** How often a round runs. */
  intervalMs: number;
  /** Told how many items each batch deleted (metrics). */
  onPruned?: (count: number) => void;
}

/** The lease that lets one process of a cluster prune at a time. */
export const RETENTION_LEASE = "job:outbox-retention";

/**
 * Outbox retention: every `intervalMs`, the process holding the retention lease deletes finished items older than
 * their retention, `batchSize` at a time (short statements, no long lock), at most `maxBatches` per round.
 */
export function createRetention(options: RetentionOptions) {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<number | null> | null = null;

  /**
   * One round: null when another process holds the lease (it prunes), else how many items were deleted. The lease
   * outlives a round, so the holder keeps the job while it runs.
   */
  async function runOnce(): Promise<number | null> {
    const now = options.clock.now();
    const lease = await options.leases.acquire(RETENTION_LEASE, options.owner, options.intervalMs * 3, now);
    if (!lease) return null;
    const doneBefore = new Date(now.getTime() - options.doneMs);
    const deadBefore = new Date(now.getTime() - options.deadMs);
    let total = 0;
    for (let batch = 0; batch < options.maxBatches; batch++) {
      const deleted = await options.outbox.prune({ doneBefore, deadBefore, limit: options.batchSize });
      total += deleted;
      if (deleted > 0) options.onPruned?.(deleted);
      if (deleted < options.batchSize) break;
      // Let other work of the process (and of the database) in between two batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (total > 0) options.logger.info({ deleted: total }, "chatwoot: pruned finished outbox items");
    return total;
  }

  const tick = () => {
    if (running) return;
    running = runOnce()
      .catch((error) => {
        options.logger.warn({ err: errorMessage(error) }, "chatwoot: outbox retention failed");
        return null;
      })
      .finally(() => {
        running = null;
      });
  };

  return {
    runOnce,
    start(): void {
      if (timer) return;
      timer = setInterval(tick, options.intervalMs);
      timer.unref();
      tick();
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = null;
      await running;
      await options.leases.release(RETENTION_LEASE, options.owner).catch(() => false);
    },
  };
}
