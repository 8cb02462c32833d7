/**
 * Promise-based waiting on the simulator's logs (requests, broadcasts, webhook deliveries), so
 * tests wait for events instead of sleeping.
 */
export interface Waiters {
  /** Re-checks every pending wait; call after a log changed. */
  notify(): void;
  /**
   * Resolves with `check()`'s first non-`undefined` result (checked now and on every `notify`),
   * or rejects with `describe()` after `timeoutMs`.
   */
  until<T>(check: () => T | undefined, timeoutMs: number, describe: () => string): Promise<T>;
}

export function createWaiters(): Waiters {
  let pending: Array<() => void> = [];
  return {
    notify() {
      for (const waiter of [...pending]) waiter();
    },
    until(check, timeoutMs, describe) {
      return new Promise((resolve, reject) => {
        const finish = () => {
          clearTimeout(timer);
          pending = pending.filter((w) => w !== waiter);
        };
        const waiter = () => {
          const result = check();
          if (result === undefined) return;
          finish();
          resolve(result);
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`chatwoot simulator: ${describe()} after ${timeoutMs} ms`));
        }, timeoutMs);
        pending.push(waiter);
        waiter();
      });
    },
  };
}
