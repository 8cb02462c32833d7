import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChatwootSimulator, startChatwootSimulator } from "@ryze/chatwoot-testkit";
import { readConfig } from "@ryze/example-shared";
import knex from "knex";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type FastifyExample } from "./app.js";

// PostgreSQL from PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (default postgres@127.0.0.1:5432/test). The file
// works in its own schema (through `search_path` in DATABASE_URL), dropped afterwards. Skipped (loudly) when the
// server cannot be reached, unless CI_REQUIRE_DB=1.
const schema = `cw_fastify_${randomBytes(5).toString("hex")}`;
const connection = {
  host: process.env.PGHOST ?? "127.0.0.1",
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? "postgres",
  password: process.env.PGPASSWORD ?? "",
  database: process.env.PGDATABASE ?? "test",
};
const credentials = connection.password
  ? `${encodeURIComponent(connection.user)}:${encodeURIComponent(connection.password)}`
  : encodeURIComponent(connection.user);
const databaseUrl = `postgres://${credentials}@${connection.host}:${connection.port}/${connection.database}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;

const NETWORK_ERRORS = new Set(["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "EHOSTUNREACH", "EAI_AGAIN"]);

/** True for "no server there", false for anything the server answered. */
function isUnreachable(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.some(isUnreachable);
  if (!(error instanceof Error)) return false;
  const code = "code" in error ? error.code : undefined;
  return (
    (typeof code === "string" && NETWORK_ERRORS.has(code)) ||
    error.name === "KnexTimeoutError" ||
    // pg's own connect timeout carries no code.
    (code === undefined && /timeout|terminated/i.test(error.message))
  );
}

const admin = knex({
  client: "pg",
  connection: { ...connection, connectionTimeoutMillis: 3_000 },
  pool: { min: 0, max: 1 },
  acquireConnectionTimeout: 5_000,
});

async function createSchema(): Promise<boolean> {
  try {
    await admin.raw("create schema ??", [schema]);
    return true;
  } catch (error) {
    if (!isUnreachable(error) || process.env.CI_REQUIRE_DB === "1") throw error;
    console.warn(
      `\n⚠️  SKIPPING the Fastify example test: PostgreSQL at ${connection.host}:${connection.port} is unreachable (${String(error)}).\n`,
    );
    return false;
  }
}

const available = await createSchema();
if (!available) await admin.destroy();

const ACCOUNT_TOKEN = "example-account-token";
const INSTANCE_TOKEN = "example-instance-token";

describe.skipIf(!available)("examples/fastify on PostgreSQL", () => {
  let sim: ChatwootSimulator;
  let example: FastifyExample;
  let url: string;
  let dir: string;
  let accountId: number;
  let adminToken: string;
  let logs = "";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cw-example-fastify-"));
    sim = await startChatwootSimulator();
    accountId = sim.createAccount({ name: "Acme" }).id;
    adminToken = sim.createUser({
      name: "Jane",
      accounts: [{ accountId, role: "administrator" }],
    }).accessToken;
    const config = readConfig({
      DATABASE_URL: databaseUrl,
      RYZE_ACCOUNT_TOKEN: ACCOUNT_TOKEN,
      RYZE_INSTANCES: `suporte:${INSTANCE_TOKEN}`,
    });
    const logger = pino(
      { level: "debug" },
      {
        write(line: string) {
          logs += line;
        },
      },
    );
    example = await buildApp(config, { dataDir: dir, logger });
    url = await example.app.listen({ port: 0, host: "127.0.0.1" });
  });

  afterAll(async () => {
    await example?.app.close();
    await example?.close();
    await sim?.close();
    await admin.raw("drop schema if exists ?? cascade", [schema]);
    await admin.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`${url}${path}`, { ...init, headers: { token: init.token ?? ACCOUNT_TOKEN, ...init.headers } });

  it("runs set → list → delete against the simulator", async () => {
    const set = await call("/api/chatwoot/set/suporte", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        chatwootBaseUrl: sim.url,
        chatwootAccountId: accountId,
        chatwootApiToken: adminToken,
        inboxName: "WhatsApp - Orion",
        startAsPending: true,
      }),
    });
    expect(set.status, await set.clone().text()).toBe(201);
    const { bridge_integration_id: id } = (await set.json()) as { bridge_integration_id: string };

    const list = await call("/api/chatwoot/list/suporte", { token: INSTANCE_TOKEN });
    expect(list.status).toBe(200);
    expect(await list.json()).toMatchObject({
      bridge_integration_id: id,
      chatwoot_api_token: adminToken,
      start_as_pending: true,
      sign_messages: false,
    });

    // Stored in this file's own PostgreSQL schema, the token sealed; never in the logs.
    const rows = await admin.withSchema(schema).table("chatwoot_integrations").select("*");
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(adminToken);
    expect(JSON.stringify(rows)).toMatch(/cw1:[A-Za-z0-9_-]{8}:/);
    expect(logs).not.toContain(adminToken);

    const removed = await call("/api/chatwoot/delete/suporte?deleteInbox=true", { method: "DELETE" });
    expect(removed.status).toBe(200);
    expect(sim.inboxes(accountId)).toHaveLength(0);
    expect((await call("/api/chatwoot/list/suporte")).status).toBe(404);
  });

  it("answers a malformed body with the contract's 400, not Fastify's JSON parser", async () => {
    const answer = await call("/api/chatwoot/set/suporte", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"chatwootBaseUrl": ',
    });
    expect(answer.status).toBe(400);
    expect(await answer.json()).toMatchObject({ success: false, error: { message: /^invalid body: / } });
  });

  it("mounts the simulated WhatsApp side and keeps the host's own routes working", async () => {
    const sent = await call("/dev/whatsapp/suporte/sent");
    expect([sent.status, await sent.json()]).toEqual([200, { sent: [] }]);
    const health = await fetch(`${url}/health`);
    expect(await health.json()).toEqual({ ok: true });
  });
});
