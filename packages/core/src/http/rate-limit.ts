import { createHash } from "node:crypto";
import ipaddr from "ipaddr.js";
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";

export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Unix seconds when the window resets. */
  resetAt: number;
  /** Seconds to wait before retrying (0 when allowed). */
  retryAfter: number;
}

/** The per-caller-token quota (class `Global`). */
export interface RateLimiter {
  consume(token: string): Promise<RateLimitDecision>;
}

export interface RateLimiterOptions {
  /** Requests per window. */
  points: number;
  /** Window in seconds. */
  durationSeconds: number;
  /**
   * A rate-limiter-flexible limiter built on a shared store (Redis, PostgreSQL/knex) for clusters; it must be
   * configured with the same points and duration. Without it: an in-process memory limiter.
   */
  limiter?: RateLimiterAbstract;
  /** When the shared store is down: `open` lets requests through, `closed` refuses them. */
  onStoreError: "open" | "closed";
  /** Told about store failures (never with the token). */
  onError?: (error: unknown) => void;
  now?: () => number;
}

/**
 * A refusal (the quota is used up) as opposed to a store failure. rate-limiter-flexible rejects with a
 * `RateLimiterRes`; the host may have built its limiter with another installed copy of the library, whose class
 * is not ours, so its shape counts too (a store failure is an `Error`).
 */
function isRefusal(error: unknown): error is RateLimiterRes {
  if (error instanceof RateLimiterRes) return true;
  if (typeof error !== "object" || error === null || error instanceof Error) return false;
  const res = error as Partial<Record<keyof RateLimiterRes, unknown>>;
  return typeof res.msBeforeNext === "number" && typeof res.remainingPoints === "number";
}

/** Tokens are never used as keys in plain text: a shared store would persist them. */
const keyOf = (token: string) => createHash("sha256").update(token, "utf8").digest("base64url").slice(0, 32);

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { points, durationSeconds: duration } = options;
  const limiter = options.limiter ?? new RateLimiterMemory({ points, duration });
  const now = options.now ?? Date.now;
  const decide = (res: RateLimiterRes, allowed: boolean): RateLimitDecision => {
    const resetAt = Math.ceil((now() + res.msBeforeNext) / 1000);
    return {
      allowed,
      limit: points,
      remaining: Math.max(0, res.remainingPoints),
      resetAt,
      retryAfter: allowed ? 0 : Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
    };
  };
  return {
    async consume(token) {
      try {
        return decide(await limiter.consume(keyOf(token)), true);
      } catch (error) {
        if (isRefusal(error)) return decide(error, false);
        options.onError?.(error);
        const allowed = options.onStoreError !== "closed";
        const resetAt = Math.ceil(now() / 1000) + duration;
        return { allowed, limit: points, remaining: 0, resetAt, retryAfter: allowed ? 0 : duration };
      }
    },
  };
}

/**
 * Failed caller authentication per client address (issue 15): a missing or unknown caller token is a failed
 * attempt; an address past `points` failures within `durationSeconds` is refused (429) before the host's token
 * directory is asked again, until its window ends.
 */
export interface FailedAuthLimiter {
  /** Seconds the address must wait before trying again, or null when it may try now. */
  blocked(address: string | undefined): Promise<number | null>;
  /** Counts one failed attempt of the address. */
  fail(address: string | undefined): Promise<void>;
}

export interface FailedAuthLimiterOptions {
  /** Failed attempts allowed per window and client address. */
  points: number;
  /** Window in seconds. */
  durationSeconds: number;
  /**
   * A rate-limiter-flexible limiter on a shared store (Redis, SQL) for clusters, configured with the same points and
   * duration. Without it: an in-process memory limiter.
   */
  limiter?: RateLimiterAbstract;
  /** Told about store failures; the check then lets the request through (the token is still checked). */
  onError?: (error: unknown) => void;
}

/**
 * The key of a client address: IPv4 (also written as IPv4-mapped IPv6) as itself, IPv6 by its /64 (one host usually
 * holds a whole /64, so counting single IPv6 addresses would let it rotate through them); anything else, including
 * no address, as itself (a host adapter that passes no address shares one count for all its clients).
 */
export function clientKey(address: string | undefined): string {
  if (!address) return "unknown";
  if (!ipaddr.isValid(address)) return address.slice(0, 100);
  const parsed = ipaddr.process(address);
  if (parsed.kind() === "ipv4") return parsed.toString();
  const parts = (parsed as ipaddr.IPv6).parts.slice(0, 4);
  return `${parts.map((part) => part.toString(16)).join(":")}::/64`;
}

export function createFailedAuthLimiter(options: FailedAuthLimiterOptions): FailedAuthLimiter {
  const { points } = options;
  const limiter =
    options.limiter ??
    new RateLimiterMemory({ points, duration: options.durationSeconds, keyPrefix: "chatwoot-failed-auth" });
  return {
    async blocked(address) {
      try {
        const res = await limiter.get(clientKey(address));
        if (!res || res.consumedPoints < points) return null;
        return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      } catch (error) {
        options.onError?.(error);
        return null;
      }
    },
    async fail(address) {
      try {
        await limiter.penalty(clientKey(address), 1);
      } catch (error) {
        options.onError?.(error);
      }
    },
  };
}
