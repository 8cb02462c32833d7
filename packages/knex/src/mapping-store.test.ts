import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import knexFactory from "knex";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { createKnexStore, migrate } from "./index.js";

// The knex mapping store on SQLite: what the reads and writes every routed WhatsApp message makes cost in statements
// (calls made together share one: the identity lookup and the history record, `docs/storage.md`). The store
// conformance suite covers the contract itself on every database.

const directory = mkdtempSync(join(tmpdir(), "chatwoot-knex-mappings-"));
const db = knexFactory({
  client: "better-sqlite3",
  connection: { filename: join(directory, "mappings.db") },
  useNullAsDefault: true,
});
await migrate(db);
const store = createKnexStore(db);
const statements: string[] = [];
db.on("query", (query: { sql: string }) => statements.push(query.sql.toLowerCase()));

afterAll(async () => {
  await db.destroy();
  rmSync(directory, { recursive: true, force: true });
});

beforeEach(async () => {
  await db("chatwoot_identity_links").delete();
  await db("chatwoot_chat_history").delete();
  statements.length = 0;
});

async function counted<T>(call: () => Promise<T>): Promise<{ result: T; kinds: string[] }> {
  statements.length = 0;
  const result = await call();
  return { result, kinds: statements.map((sql) => sql.split(" ")[0]!) };
}

const at = (ms: number) => new Date(1_900_000_000_000 + ms);

describe("knex mappings: statements on the inbound path", () => {
  it("identity lookups made together are one select, each answered as if alone", async () => {
    await store.mappings.linkIdentity({
      integrationId: "int_m",
      lid: "1@lid",
      jid: "5511@s.whatsapp.net",
      createdAt: at(0),
    });
    // One phone JID linked to two LIDs: the most recent link answers.
    await store.mappings.linkIdentity({
      integrationId: "int_m",
      lid: "2@lid",
      jid: "5522@s.whatsapp.net",
      createdAt: at(1),
    });
    await store.mappings.linkIdentity({
      integrationId: "int_m",
      lid: "3@lid",
      jid: "5522@s.whatsapp.net",
      createdAt: at(2),
    });
    // A JID that is also stored as a LID answers its LID row first.
    await store.mappings.linkIdentity({
      integrationId: "int_m",
      lid: "4@lid",
      jid: "1@lid",
      createdAt: at(3),
    });
    await store.mappings.linkIdentity({
      integrationId: "int_n",
      lid: "9@lid",
      jid: "5511@s.whatsapp.net",
      createdAt: at(9),
    });
    const { result, kinds } = await counted(() =>
      Promise.all([
        store.mappings.resolveIdentity("int_m", "1@lid"),
        store.mappings.resolveIdentity("int_m", "5511@s.whatsapp.net"),
        store.mappings.resolveIdentity("int_m", "5522@s.whatsapp.net"),
        store.mappings.resolveIdentity("int_m", "7@lid"),
        store.mappings.resolveIdentity("int_n", "5511@s.whatsapp.net"),
      ]),
    );
    expect(result.map((link) => link && [link.integrationId, link.lid, link.jid])).toEqual([
      ["int_m", "1@lid", "5511@s.whatsapp.net"],
      ["int_m", "1@lid", "5511@s.whatsapp.net"],
      ["int_m", "3@lid", "5522@s.whatsapp.net"],
      null,
      ["int_n", "9@lid", "5511@s.whatsapp.net"],
    ]);
    // One statement for the batch, whatever the integrations asked about (the prepared path binds the pairs).
    expect(kinds).toEqual(["select"]);
    expect(
      (await counted(() => store.mappings.resolveIdentity("int_m", "5511@s.whatsapp.net"))).kinds,
    ).toEqual(["select"]);
  });

  it("history records written together are one upsert, adding up as if written one by one", async () => {
    await store.mappings.recordHistory("int_m", "a@s.whatsapp.net", { routedAt: at(50), queued: 2 });
    const { kinds } = await counted(() =>
      Promise.all([
        store.mappings.recordHistory("int_m", "a@s.whatsapp.net", { routedAt: at(10), imported: 1 }),
        store.mappings.recordHistory("int_m", "a@s.whatsapp.net", { routedAt: at(70), conversationId: 5 }),
        store.mappings.recordHistory("int_m", "a@s.whatsapp.net", { skipped: 1, imported: 1 }),
        store.mappings.recordHistory("int_m", "b@s.whatsapp.net", { routedAt: at(20) }),
        store.mappings.recordHistory("int_n", "a@s.whatsapp.net", { queued: 1, conversationId: 8 }),
      ]),
    );
    expect(kinds).toEqual(["insert"]);
    expect(await store.mappings.getHistory("int_m", "a@s.whatsapp.net")).toEqual({
      lastRoutedAt: at(70),
      conversationId: 5,
    });
    expect(await store.mappings.getHistory("int_m", "b@s.whatsapp.net")).toEqual({
      lastRoutedAt: at(20),
      conversationId: null,
    });
    expect(await store.mappings.getHistory("int_n", "a@s.whatsapp.net")).toEqual({
      lastRoutedAt: null,
      conversationId: 8,
    });
    expect(await store.mappings.historyProgress("int_m")).toEqual({ queued: 2, imported: 2, skipped: 1 });
    expect(await store.mappings.historyProgress("int_n")).toEqual({ queued: 1, imported: 0, skipped: 0 });
  });

  it("a bad chat JID fails its own history record only", async () => {
    const results = await Promise.allSettled([
      store.mappings.recordHistory("int_m", "c@s.whatsapp.net", { imported: 1 }),
      store.mappings.recordHistory("int_m", "x".repeat(192), { imported: 1 }),
    ]);
    expect(results[0].status).toBe("fulfilled");
    expect(results[1]).toMatchObject({
      status: "rejected",
      reason: { message: "chatJid is longer than 191 characters (192)" },
    });
    expect(await store.mappings.historyProgress("int_m")).toEqual({ queued: 0, imported: 1, skipped: 0 });
  });
});
