import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { dirname, resolve } from "node:path";
import {
  type ChatwootBridge,
  type ChatwootBridgeOptions,
  createChatwootBridge,
  createStaticDirectory,
  type InstanceDirectory,
  type Logger,
  parseKey,
} from "@ryze/chatwoot-core";
import {
  createKnexStore,
  migrate,
  startWalCheckpoints,
  type TunableConnection,
  tuneSqliteConnection,
} from "@ryze/chatwoot-knex";
import { createDevWhatsApp, createSimulatedWhatsAppGateway, type DevWhatsApp } from "@ryze/chatwoot-testkit";
import { Redis } from "ioredis";
import knexFactory, { type Knex } from "knex";
import { pino } from "pino";
import {
  type RateLimiterAbstract,
  RateLimiterMySQL,
  RateLimiterPostgres,
  RateLimiterRedis,
} from "rate-limiter-flexible";
import { type ExampleConfig, readConfig } from "./config.js";

/** A key's id is its fingerprint, so rotating keys needs no extra configuration. */
export function keyId(key: string): string {
  return createHash("sha256").update(parseKey(key)).digest("base64url").slice(0, 8);
}

/** The file of a `sqlite:<path>` DATABASE_URL, else null. */
export function sqliteFile(url: string): string | null {
  return url.startsWith("sqlite:") ? resolve(url.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "")) : null;
}

/** Opens the database named by DATABASE_URL: `postgres://`, `mysql://` or `sqlite:<path>`. */
export function openDatabase(url: string): Knex {
  if (/^postgres(ql)?:\/\//.test(url))
    return knexFactory({ client: "pg", connection: url, pool: { min: 0, max: 20 } });
  if (/^(mysql|mariadb):\/\//.test(url)) {
    return knexFactory({
      client: "mysql2",
      connection: url.replace(/^mariadb:/, "mysql:"),
      pool: { min: 0, max: 20 },
    });
  }
  const filename = sqliteFile(url);
  if (filename !== null) {
    mkdirSync(dirname(filename), { recursive: true });
    return knexFactory({
      client: "better-sqlite3",
      connection: { filename },
      useNullAsDefault: true,
      // WAL with synchronous=NORMAL, prepared statements kept; checkpoints run in a worker (createExampleRuntime).
      pool: {
        afterCreate(connection: TunableConnection, done: (error: Error | null, connection: unknown) => void) {
          done(null, tuneSqliteConnection(connection));
        },
      },
    });
  }
  throw new Error(
    'invalid environment: DATABASE_URL: must start with "postgres://", "mysql://" or "sqlite:"',
  );
}

/** The key from CHATWOOT_ENCRYPTION_KEY, or one generated into the data folder on first start. */
export function loadKey(config: ExampleConfig, dataDir: string, logger: Logger): string {
  if (config.encryptionKey) return config.encryptionKey;
  const file = resolve(dataDir, "encryption.key");
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    mkdirSync(dataDir, { recursive: true });
    const key = randomBytes(32).toString("base64");
    writeFileSync(file, `${key}\n`, { mode: 0o600, flag: "wx" });
    logger.warn(
      { file },
      "CHATWOOT_ENCRYPTION_KEY is not set: generated a new key into the data folder (back it up)",
    );
    return key;
  }
}

/** The shared store of the per-token rate limit chosen by RATE_LIMIT_STORE; no limiter means in-process memory. */
export interface RateLimitStore {
  limiter: RateLimiterAbstract | undefined;
  close(): Promise<void>;
}

/** rate-limiter-flexible creates its SQL table itself and reports through a callback: wait for it. */
async function created<T>(build: (ready: (error?: Error) => void) => T): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let limiter: T | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        limiter = build((error) => (error ? reject(error) : resolve()));
      });
      return limiter!;
    } catch (error) {
      // Processes starting together race on CREATE TABLE IF NOT EXISTS; the second try sees the table.
      if (attempt >= 2) throw error;
    }
  }
}

/**
 * The limiter behind RATE_LIMIT_STORE: `redis` (REDIS_URL, through ioredis), `database` (the app's PostgreSQL or
 * MySQL/MariaDB through its knex, table `chatwoot_rate_limits`), or `memory` (none: the core's default). Every
 * process of a cluster must count in the same store, with the same points and duration.
 */
export async function createRateLimitStore(
  config: ExampleConfig,
  knex: Knex,
  options: { points: number; durationSeconds: number; logger: Logger },
): Promise<RateLimitStore> {
  const { points, durationSeconds: duration, logger } = options;
  if (config.rateLimitStore === "memory") return { limiter: undefined, close: async () => {} };
  if (config.rateLimitStore === "redis") {
    // No offline queue: while Redis is down a request fails at once (and RATE_LIMIT_FAIL decides), never waits.
    const redis = new Redis(config.redisUrl!, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    let down = false;
    redis.on("error", (error: Error) => {
      if (!down) logger.warn({ err: error.message }, "rate limit: Redis unreachable");
      down = true;
    });
    redis.on("ready", () => {
      if (down) logger.info({}, "rate limit: Redis reachable again");
      down = false;
    });
    const ready = new Promise<void>((resolve) => {
      redis.once("ready", () => resolve());
      setTimeout(resolve, 5_000).unref();
    });
    await ready;
    const limiter = new RateLimiterRedis({
      storeClient: redis,
      rejectIfRedisNotReady: true,
      keyPrefix: "chatwoot:rate-limit",
      points,
      duration,
    });
    return {
      limiter,
      async close() {
        await redis.quit().catch(() => redis.disconnect());
      },
    };
  }
  const common = {
    storeClient: knex,
    storeType: "knex",
    tableName: "chatwoot_rate_limits",
    points,
    duration,
  };
  if (/^postgres(ql)?:\/\//.test(config.databaseUrl)) {
    const limiter = await created((ready) => new RateLimiterPostgres(common, ready));
    return { limiter, close: async () => {} };
  }
  if (/^(mysql|mariadb):\/\//.test(config.databaseUrl)) {
    // rate-limiter-flexible names the database in every statement (and creates it if missing): use ours.
    const [rows] = (await knex.raw("select database() as name")) as [Array<{ name: string | null }>];
    const dbName = rows[0]?.name;
    if (!dbName)
      throw new Error(
        "invalid environment: DATABASE_URL: must name a database for RATE_LIMIT_STORE=database",
      );
    const limiter = await created((ready) => new RateLimiterMySQL({ ...common, dbName }, ready));
    return { limiter, close: async () => {} };
  }
  throw new Error("invalid environment: RATE_LIMIT_STORE: database needs PostgreSQL or MySQL/MariaDB");
}

export interface ExampleRuntime {
  config: ExampleConfig;
  bridge: ChatwootBridge;
  directory: InstanceDirectory;
  devWhatsApp: DevWhatsApp;
  knex: Knex;
  logger: Logger;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  logger?: Logger;
  dataDir?: string;
  /** Extra options for the bridge (tests shorten timings). */
  bridge?: Partial<ChatwootBridgeOptions>;
}

/** Everything an example app needs, independent of the web framework. */
export async function createExampleRuntime(
  config: ExampleConfig,
  options: RuntimeOptions = {},
): Promise<ExampleRuntime> {
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      redact: {
        paths: ["*.apiToken", "*.token", "*.chatwootApiToken", "headers.token", "headers.authorization"],
        censor: "[redacted]",
      },
    });
  const dataDir = resolve(options.dataDir ?? "data");
  const key = loadKey(config, dataDir, logger);
  const knex = openDatabase(config.databaseUrl);
  await migrate(knex);
  // SQLite: WAL checkpoints off the event loop (a checkpoint inside a commit stalls the process).
  const file = sqliteFile(config.databaseUrl);
  const checkpoints =
    file === null
      ? null
      : await startWalCheckpoints(file, {
          onError: (error) => logger.warn({ err: error.message }, "sqlite: WAL checkpoint failed"),
        });
  const directory = createStaticDirectory({
    accounts: [{ id: "default", token: config.accountToken, instances: config.instances }],
  });
  // No real WhatsApp here: the simulated gateway records what would be sent (GET /dev/whatsapp/:instance/sent).
  const gateway = createSimulatedWhatsAppGateway();
  const rateLimit = { points: 100, durationSeconds: 60, ...options.bridge?.rateLimit };
  const rateLimitStore = await createRateLimitStore(config, knex, {
    points: rateLimit.points,
    durationSeconds: rateLimit.durationSeconds,
    logger,
  });
  const bridge = createChatwootBridge({
    gateway,
    store: createKnexStore(knex),
    directory,
    encryption: {
      current: { id: keyId(key), key },
      previous: config.previousKeys,
    },
    enabled: config.enabled,
    delivery: config.delivery,
    ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}),
    network: config.network,
    logger,
    ...options.bridge,
    rateLimit: {
      onStoreError: config.rateLimitFail,
      ...(rateLimitStore.limiter ? { limiter: rateLimitStore.limiter } : {}),
      ...rateLimit,
    },
  });
  const devWhatsApp = createDevWhatsApp({
    guard: bridge.guard,
    gateway,
    ingest: (instance, event) => bridge.ingest(instance, event),
  });
  await bridge.start();
  return {
    config,
    bridge,
    directory,
    devWhatsApp,
    knex,
    logger,
    async close() {
      await bridge.stop();
      await rateLimitStore.close();
      await checkpoints?.close();
      await knex.destroy();
    },
  };
}

/** Prints generated caller tokens once (they are secrets: only on the console at start, never in logs). */
export function announceTokens(config: ExampleConfig, out: (line: string) => void = console.log): void {
  if (config.generated.accountToken) out(`RYZE_ACCOUNT_TOKEN (generated): ${config.accountToken}`);
  for (const name of config.generated.instances) {
    const instance = config.instances.find((entry) => entry.name === name);
    if (instance) out(`instance token for "${name}" (generated): ${instance.token}`);
  }
}

/**
 * The `main` of an example app: reads the environment, builds the app, lets `listen` serve it, announces the
 * URL (and any generated caller tokens), and closes everything on SIGINT/SIGTERM.
 */
export async function runExample<T extends ExampleRuntime>(
  name: string,
  build: (config: ExampleConfig) => Promise<T>,
  listen: (example: T, config: ExampleConfig) => Promise<{ url: string; close(): Promise<void> }>,
): Promise<void> {
  const config = readConfig();
  const example = await build(config);
  const server = await listen(example, config);
  example.logger.info({ url: server.url }, `example (${name}) listening`);
  announceTokens(config);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void server
        .close()
        .then(() => example.close())
        .then(() => process.exit(0));
    });
  }
}

/** `listen` for apps that serve through node:http (Express, Koa). */
export function listenOnNode(
  example: { app: { listen(port: number, host: string, ready: () => void): Server } },
  config: ExampleConfig,
): Promise<{ url: string; close(): Promise<void> }> {
  return new Promise((resolve) => {
    const server = example.app.listen(config.port, config.host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : config.port;
      resolve({
        url: `http://${config.host}:${port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
