import { RateLimiterMemory, type RateLimiterRes } from "rate-limiter-flexible";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createRateLimiter } from "./rate-limit.js";

/** A shared store that cannot be reached: every call fails like a refused connection. */
class UnreachableStore extends RateLimiterMemory {
  calls = 0;
  override consume(): Promise<RateLimiterRes> {
    this.calls++;
    return Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:1"));
  }
}

describe("createRateLimiter", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("counts per token and starts over when the window ends", async () => {
    vi.useFakeTimers({ now: new Date("2026-04-28T10:00:00Z") });
    const limiter = createRateLimiter({ points: 3, durationSeconds: 60, onStoreError: "open" });
    const first = await Promise.all([1, 2, 3].map(() => limiter.consume("alpha")));
    expect(first.map((decision) => [decision.allowed, decision.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
    ]);
    expect(first[0]).toMatchObject({
      limit: 3,
      retryAfter: 0,
      resetAt: Date.parse("2026-04-28T10:01:00Z") / 1000,
    });

    vi.advanceTimersByTime(20_000);
    const refused = await limiter.consume("alpha");
    expect(refused).toMatchObject({ allowed: false, limit: 3, remaining: 0, retryAfter: 40 });
    expect(refused.resetAt).toBe(Date.parse("2026-04-28T10:01:00Z") / 1000);
    // Another token has its own quota.
    expect(await limiter.consume("beta")).toMatchObject({ allowed: true, remaining: 2 });

    vi.advanceTimersByTime(40_000);
    expect(await limiter.consume("alpha")).toMatchObject({ allowed: true, remaining: 2, retryAfter: 0 });
  });

  it("never uses the token itself as the store key", async () => {
    const store = new RateLimiterMemory({ points: 5, duration: 60 });
    const consume = vi.spyOn(store, "consume");
    await createRateLimiter({ points: 5, durationSeconds: 60, onStoreError: "open", limiter: store }).consume(
      "secret-caller-token",
    );
    const key = String(consume.mock.calls[0]?.[0]);
    expect(key).not.toContain("secret-caller-token");
    expect(key).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it("fails open when told to: requests go through while the shared store is down, and it says so", async () => {
    const store = new UnreachableStore({ points: 2, duration: 60 });
    const errors: unknown[] = [];
    const limiter = createRateLimiter({
      points: 2,
      durationSeconds: 60,
      limiter: store,
      onStoreError: "open",
      onError: (error) => errors.push(error),
    });
    const decisions = await Promise.all([1, 2, 3, 4].map(() => limiter.consume("alpha")));
    expect(decisions.every((decision) => decision.allowed && decision.retryAfter === 0)).toBe(true);
    expect(store.calls).toBe(4);
    expect(errors).toHaveLength(4);
    expect(String(errors[0])).toContain("ECONNREFUSED");
  });

  it("fails closed when told to: every request is refused while the store is down", async () => {
    const store = new UnreachableStore({ points: 2, duration: 60 });
    const errors: unknown[] = [];
    const limiter = createRateLimiter({
      points: 2,
      durationSeconds: 60,
      limiter: store,
      onStoreError: "closed",
      onError: (error) => errors.push(error),
    });
    const decisions = await Promise.all([1, 2, 3].map(() => limiter.consume("alpha")));
    for (const decision of decisions) {
      expect(decision).toMatchObject({ allowed: false, limit: 2, remaining: 0, retryAfter: 60 });
    }
    expect(errors).toHaveLength(3);
  });

  it("takes a refusal from another copy of rate-limiter-flexible as a refusal, not as a store failure", async () => {
    // Another installed copy's RateLimiterRes is not an instance of ours, but has its shape.
    const foreign = { msBeforeNext: 5_000, remainingPoints: 0, consumedPoints: 3, isFirstInDuration: false };
    class OtherCopy extends RateLimiterMemory {
      override consume(): Promise<RateLimiterRes> {
        return Promise.reject(foreign);
      }
    }
    const errors: unknown[] = [];
    const limiter = createRateLimiter({
      points: 3,
      durationSeconds: 60,
      onStoreError: "open",
      limiter: new OtherCopy({ points: 3, duration: 60 }),
      onError: (error) => errors.push(error),
    });
    expect(await limiter.consume("alpha")).toMatchObject({ allowed: false, retryAfter: 5 });
    expect(errors).toEqual([]);
  });

  it("lets exactly `points` through in total when two processes share one store", async () => {
    // Two createRateLimiter instances (two processes) over one store; the same over Redis and SQL stores runs in
    // examples/cluster (rate-limit-stores.test.ts), where a Redis client is installed.
    const store = new RateLimiterMemory({ points: 10, duration: 60 });
    const processes = [
      createRateLimiter({ points: 10, durationSeconds: 60, onStoreError: "open", limiter: store }),
      createRateLimiter({ points: 10, durationSeconds: 60, onStoreError: "open", limiter: store }),
    ];
    const decisions = await Promise.all(
      Array.from({ length: 30 }, (_, n) => processes[n % 2]!.consume("shared-token")),
    );
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(10);
    expect(
      decisions.filter((decision) => !decision.allowed).every((decision) => decision.retryAfter > 0),
    ).toBe(true);
  });
});
