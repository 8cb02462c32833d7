/** What the benchmarks share: databases, the bridge as a host wires it, WhatsApp events. */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ChatwootBridge,
  type ChatwootBridgeOptions,
  createChatwootBridge,
  createStaticDirectory,
  type StoragePort,
} from "@ryze/chatwoot-core";
import {
  createKnexStore,
  migrate,
  startWalCheckpoints,
  type TunableConnection,
  tuneSqliteConnection,
} from "@ryze/chatwoot-knex";
import { textEvent as whatsappText } from "@ryze/chatwoot-testkit";
import { createTestDatabase } from "@ryze/chatwoot-testkit/databases";
import knexFactory, { type Knex } from "knex";
import type { Child } from "./rpc.js";
import type { SimHostMethods } from "./sim-host.js";

/**
 * - `sqlite`: a knex/better-sqlite3 file opened as the README and the example apps open it (rollback journal,
 *   `synchronous=FULL`: every commit waits for the disk);
 * - `sqlite-wal`: the same file tuned as a user would for a write-heavy service (`journal_mode=WAL`,
 *   `synchronous=NORMAL`);
 * - `postgres`: 127.0.0.1:5432, user postgres, database test, a schema of its own, pool of 10 (as the
 *   example apps);
 * - `mariadb`: 127.0.0.1:3306 through mysql2, a database of its own, pool of 10.
 */
export type Backend = "sqlite" | "sqlite-wal" | "postgres" | "mariadb";

export const BACKEND_LABEL: Record<Backend, string> = {
  sqlite: "SQLite (default journal)",
  "sqlite-wal": "SQLite (WAL, synchronous=NORMAL)",
  postgres: "PostgreSQL 127.0.0.1",
  mariadb: "MariaDB 127.0.0.1",
};

export interface OpenedStore {
  backend: Backend;
  knex: Knex;
  store: StoragePort;
  close(): Promise<void>;
}

/** Opens a fresh, migrated store; `{ unreachable }` (with the reason) when the database server cannot be reached. */
export async function openStore(backend: Backend): Promise<OpenedStore | { unreachable: string }> {
  if (backend === "postgres" || backend === "mariadb") {
    const database = await createTestDatabase(backend, "cw_bench");
    if (!database)
      return {
        unreachable: `${backend === "postgres" ? "PostgreSQL at 127.0.0.1:5432" : "MariaDB at 127.0.0.1:3306"} is unreachable`,
      };
    const knex = database.connect({ poolMax: 10 });
    await migrate(knex);
    return {
      backend,
      knex,
      store: createKnexStore(knex),
      async close() {
        await knex.destroy();
        await database.drop().catch(() => undefined);
      },
    };
  }
  const directory = mkdtempSync(join(tmpdir(), "chatwoot-bench-"));
  const file = join(directory, "store.sqlite");
  const knex = knexFactory({
    client: "better-sqlite3",
    connection: { filename: file },
    useNullAsDefault: true,
    ...(backend === "sqlite-wal"
      ? {
          pool: {
            afterCreate(connection: TunableConnection, done: (error: Error | null, c: unknown) => void) {
              done(null, tuneSqliteConnection(connection));
            },
          },
        }
      : {}),
  });
  await migrate(knex);
  // As the example apps do: WAL checkpoints in a worker thread, off the event loop.
  const checkpoints = backend === "sqlite-wal" ? await startWalCheckpoints(file) : null;
  return {
    backend,
    knex,
    store: createKnexStore(knex),
    async close() {
      await checkpoints?.close();
      await knex.destroy();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

export const ENCRYPTION = { current: { id: "bench1", key: randomBytes(32).toString("base64") } };
export const ACCOUNT_TOKEN = "bench-account-token";

/** A static directory with the given instances, all in one account (token `bench-account-token`). */
export function benchDirectory(instances: string[]) {
  return createStaticDirectory({
    accounts: [
      {
        id: "bench",
        token: ACCOUNT_TOKEN,
        instances: instances.map((name) => ({ name, token: `token-${name}` })),
      },
    ],
  });
}

/** The bridge as a host creates it; `options` overrides (dispatcher tuning, gateway, ...). */
export function benchBridge(
  store: StoragePort,
  instances: string[],
  options: Partial<ChatwootBridgeOptions> = {},
): ChatwootBridge {
  return createChatwootBridge({
    store,
    directory: benchDirectory(instances),
    encryption: ENCRYPTION,
    ...options,
  });
}

/** The body of `activate()` / `POST /set/:instance`. */
export function activationBody(
  baseUrl: string,
  target: { accountId: number; accessToken: string },
  inboxName: string,
) {
  return {
    chatwootBaseUrl: baseUrl,
    chatwootAccountId: target.accountId,
    chatwootApiToken: target.accessToken,
    inboxName,
  };
}

/** The JID of customer `n` (a Brazilian mobile number, as WhatsApp writes it). */
export function customerJid(n: number): string {
  return `55119${String(n).padStart(8, "0")}@s.whatsapp.net`;
}

/** A `message.exchange` envelope with a text from customer `n` (the shape `ingest` takes). */
export function textEvent(id: string, customer: number, text: string) {
  const phone = customerJid(customer).split("@")[0]!;
  return whatsappText({ id, phone, text, name: `Customer ${customer}` });
}

let idSequence = 0;
const idPrefix = randomBytes(3).toString("hex").toUpperCase();
/** A unique WhatsApp-looking message id. */
export function messageId(): string {
  return `3EB0${idPrefix}${(idSequence++).toString(16).toUpperCase().padStart(8, "0")}`;
}

/**
 * A fresh simulator session and an bridge on `store`, started and activated for `instance`. `close`
 * stops the bridge, then the store, then the session.
 */
export async function startActivated(
  sim: Child<SimHostMethods>,
  opened: OpenedStore,
  instance: string,
  label: string,
  dispatcher: { concurrency: number; pollIntervalMs: number },
) {
  const { handle, url } = await sim.call("start", {});
  const bridge = benchBridge(opened.store, [instance], { dispatcher });
  const close = async () => {
    await bridge.stop();
    await opened.close();
    await sim.call("stop", handle);
  };
  try {
    const admin = await sim.call("createAccountWithAdmin", handle, label);
    await bridge.start();
    const activated = await bridge.activate(
      instance,
      activationBody(url, admin, `Bench ${label.toLowerCase()}`),
    );
    if (activated.status !== "active") throw new Error(`activation failed: ${activated.error}`);
    return { handle, url, admin, bridge, integrationId: activated.bridgeIntegrationId, close };
  } catch (error) {
    await close();
    throw error;
  }
}
