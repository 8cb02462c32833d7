// Test support (not built): a database of its own for a file of outbox statement checks, the statements the store
// sends recorded (outbox-store-pg.test.ts, outbox-store-mariadb.test.ts).
import { createTestDatabase, type DatabaseKind } from "@ryze/chatwoot-testkit/databases";
import type { Knex } from "knex";
import { afterAll, beforeEach } from "vitest";
import { createKnexStore, migrate } from "./index.js";

/** A statement the store sent: its text (lower case) and its values. */
export interface SentStatement {
  sql: string;
  bindings: unknown[];
}

export const now = new Date(1_900_000_000_000);

/** An inbound outbox item of `integrationId` (default `fallback`), its payload naming its dedupe key. */
export const itemOf =
  (fallback: string) =>
  (dedupeKey: string, chatKey = "chat", integrationId = fallback) => ({
    integrationId,
    direction: "inbound" as const,
    chatKey,
    dedupeKey,
    payload: { dedupeKey },
  });

/**
 * Creates the database `name` on `kind`'s server (null, warned, when the server is unreachable), migrates it, and
 * registers the file's hooks: outbox and chat rows emptied before each test, the database dropped after the file.
 * `counted(call)` answers the call's result and the statements it sent.
 */
export async function outboxStatementsDatabase(kind: DatabaseKind, name: string) {
  const database = await createTestDatabase(kind, name);
  if (!database) return null;
  const db: Knex = database.connect({ poolMax: 4 });
  await migrate(db);
  const sent: SentStatement[] = [];
  db.on("query", (query: { sql: string; bindings?: unknown[] }) =>
    sent.push({ sql: query.sql.toLowerCase(), bindings: query.bindings ?? [] }),
  );
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });
  beforeEach(async () => {
    await db("chatwoot_outbox").delete();
    await db("chatwoot_outbox_chats").delete();
  });
  const counted = async <T>(call: () => Promise<T>) => {
    sent.length = 0;
    const result = await call();
    return { result, sql: [...sent] };
  };
  return { database, db, store: createKnexStore(db), counted };
}
