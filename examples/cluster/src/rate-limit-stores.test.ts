import { randomBytes } from "node:crypto";
import { createRateLimiter, type RateLimiter } from "@ryze/chatwoot-core/testing";
import { createRateLimitStore, openDatabase, type RateLimitStore, readConfig } from "@ryze/example-shared";
import { Redis } from "ioredis";
import type { Knex } from "knex";
import { pino } from "pino";
import { RateLimiterRedis } from "rate-limiter-flexible";
import { afterAll, describe, expect, it } from "vitest";
import { createClusterDatabase } from "./harness.js";

// The shared rate-limit stores of RATE_LIMIT_STORE, each used by two "processes" (two clients, two limiters).
// Redis from REDIS_URL (default redis://127.0.0.1:6379); skipped loudly when unreachable, unless CI_REQUIRE_DB=1.
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const logger = pino({ level: "silent" });
const POINTS = 10;

async function redisReachable(): Promise<boolean> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch (error) {
    if (process.env.CI_REQUIRE_DB === "1") throw error;
    console.warn(
      `\n⚠️  SKIPPING the Redis rate-limit tests: ${REDIS_URL} is unreachable (${String(error)}).\n`,
    );
    return false;
  } finally {
    probe.disconnect();
  }
}

const [redis, postgres, mariadb] = await Promise.all([
  redisReachable(),
  createClusterDatabase("postgres"),
  createClusterDatabase("mariadb"),
]);
const stores: RateLimitStore[] = [];
const databases: Knex[] = [];

afterAll(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const knex of databases.splice(0)) await knex.destroy();
  await postgres?.drop();
  await mariadb?.drop();
});

/** One "process": its own client to the store, its own limiter, as createExampleRuntime builds them. */
async function processLimiter(env: Record<string, string>): Promise<RateLimiter> {
  const config = readConfig(env);
  const knex = openDatabase(config.databaseUrl);
  databases.push(knex);
  const store = await createRateLimitStore(config, knex, { points: POINTS, durationSeconds: 60, logger });
  stores.push(store);
  expect(store.limiter).toBeDefined();
  return createRateLimiter({
    points: POINTS,
    durationSeconds: 60,
    onStoreError: "open",
    limiter: store.limiter!,
  });
}

/** 30 requests with one fresh token, alternating between the two processes: exactly POINTS go through. */
async function expectSharedQuota(processes: RateLimiter[]) {
  const token = randomBytes(16).toString("base64url");
  const decisions = await Promise.all(
    Array.from({ length: 3 * POINTS }, (_, n) => processes[n % processes.length]!.consume(token)),
  );
  expect(decisions.filter((decision) => decision.allowed)).toHaveLength(POINTS);
  const refused = decisions.filter((decision) => !decision.allowed);
  expect(refused.every((decision) => decision.retryAfter > 0 && decision.remaining === 0)).toBe(true);
  return token;
}

describe("RATE_LIMIT_STORE and RATE_LIMIT_FAIL", () => {
  it("defaults to memory, or to redis when REDIS_URL is set, and fails open unless told otherwise", () => {
    expect(readConfig({})).toMatchObject({ rateLimitStore: "memory", rateLimitFail: "open" });
    expect(readConfig({ REDIS_URL: "redis://127.0.0.1:6379" })).toMatchObject({ rateLimitStore: "redis" });
    expect(
      readConfig({
        REDIS_URL: "redis://127.0.0.1:6379",
        RATE_LIMIT_STORE: "memory",
        RATE_LIMIT_FAIL: "closed",
      }),
    ).toMatchObject({ rateLimitStore: "memory", rateLimitFail: "closed" });
    expect(
      readConfig({ DATABASE_URL: "postgres://db/app", RATE_LIMIT_STORE: "database" }).rateLimitStore,
    ).toBe("database");
  });

  it("refuses what cannot work: redis without REDIS_URL, database on SQLite, unknown values", () => {
    expect(() => readConfig({ RATE_LIMIT_STORE: "redis" })).toThrow(
      "invalid environment: RATE_LIMIT_STORE: redis needs REDIS_URL",
    );
    expect(() =>
      readConfig({ DATABASE_URL: "sqlite:./data/x.sqlite", RATE_LIMIT_STORE: "database" }),
    ).toThrow(
      /RATE_LIMIT_STORE: database needs PostgreSQL or MySQL\/MariaDB; SQLite serves one process only/,
    );
    expect(() => readConfig({ RATE_LIMIT_STORE: "memcached" })).toThrow(/RATE_LIMIT_STORE/);
    expect(() => readConfig({ RATE_LIMIT_FAIL: "maybe" })).toThrow(/RATE_LIMIT_FAIL/);
  });
});

describe.skipIf(!redis)("the Redis store", () => {
  it("lets exactly `points` through in total for two processes", async () => {
    const env = { REDIS_URL, RATE_LIMIT_STORE: "redis" };
    await expectSharedQuota([await processLimiter(env), await processLimiter(env)]);
  });
});

describe("a Redis store that is down (127.0.0.1:1, no retries, no offline queue)", () => {
  const down = new Redis({
    host: "127.0.0.1",
    port: 1,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  down.on("error", () => {});
  const limiter = new RateLimiterRedis({ storeClient: down, points: POINTS, duration: 60 });
  afterAll(() => down.disconnect());

  it("lets requests through when failing open, and reports the failure", async () => {
    const errors: unknown[] = [];
    const open = createRateLimiter({
      points: POINTS,
      durationSeconds: 60,
      onStoreError: "open",
      limiter,
      onError: (error) => errors.push(error),
    });
    const decisions = await Promise.all(Array.from({ length: 2 * POINTS }, () => open.consume("caller")));
    expect(decisions.every((decision) => decision.allowed)).toBe(true);
    expect(errors).toHaveLength(2 * POINTS);
  });

  it("refuses every request when failing closed", async () => {
    const closed = createRateLimiter({
      points: POINTS,
      durationSeconds: 60,
      limiter,
      onStoreError: "closed",
    });
    const decisions = await Promise.all(Array.from({ length: 3 }, () => closed.consume("caller")));
    for (const decision of decisions) expect(decision).toMatchObject({ allowed: false, retryAfter: 60 });
  });
});

describe.skipIf(!postgres)("the PostgreSQL store (RATE_LIMIT_STORE=database)", () => {
  it("lets exactly `points` through in total for two processes, keyed by a hash of the token", async () => {
    const env = { DATABASE_URL: postgres!.url, RATE_LIMIT_STORE: "database" };
    // Both processes create the table at once: one CREATE TABLE IF NOT EXISTS loses the race and retries.
    const processes = await Promise.all([processLimiter(env), processLimiter(env)]);
    const token = await expectSharedQuota(processes);
    const rows = await postgres!.knex("chatwoot_rate_limits").select("key", "points");
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(token);
  });
});

describe.skipIf(!mariadb)("the MariaDB store (RATE_LIMIT_STORE=database)", () => {
  it("lets exactly `points` through in total for two processes, in the app's own database", async () => {
    const env = { DATABASE_URL: mariadb!.url, RATE_LIMIT_STORE: "database" };
    const processes = await Promise.all([processLimiter(env), processLimiter(env)]);
    const token = await expectSharedQuota(processes);
    const rows = await mariadb!.knex("chatwoot_rate_limits").select("key", "points");
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(token);
  });
});
