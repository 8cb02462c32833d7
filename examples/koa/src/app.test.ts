import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChatwootSimulator, startChatwootSimulator } from "@ryze/chatwoot-testkit";
import { readConfig } from "@ryze/example-shared";
import knex from "knex";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type KoaExample } from "./app.js";

// MariaDB/MySQL from MYSQL_HOST/MYSQL_PORT/MYSQL_USER/MYSQL_PASSWORD (default root@127.0.0.1:3306, no password).
// The file works in its own database, dropped afterwards. Skipped (loudly) when the server cannot be reached,
// unless CI_REQUIRE_DB=1.
const database = `cw_koa_${randomBytes(5).toString("hex")}`;
const connection = {
  host: process.env.MYSQL_HOST ?? "127.0.0.1",
  port: Number(process.env.MYSQL_PORT ?? 3306),
  user: process.env.MYSQL_USER ?? "root",
  password: process.env.MYSQL_PASSWORD ?? "",
};
const credentials = connection.password
  ? `${encodeURIComponent(connection.user)}:${encodeURIComponent(connection.password)}`
  : encodeURIComponent(connection.user);
const server = `mysql://${credentials}@${connection.host}:${connection.port}`;

const NETWORK_ERRORS = new Set(["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "EHOSTUNREACH", "EAI_AGAIN"]);

/** True for "no server there", false for anything the server answered. */
function isUnreachable(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.some(isUnreachable);
  if (!(error instanceof Error)) return false;
  const code = "code" in error ? error.code : undefined;
  return (typeof code === "string" && NETWORK_ERRORS.has(code)) || error.name === "KnexTimeoutError";
}

const admin = knex({
  client: "mysql2",
  connection: { ...connection, connectTimeout: 3_000 },
  pool: { min: 0, max: 1 },
  acquireConnectionTimeout: 5_000,
});

async function createDatabase(): Promise<boolean> {
  try {
    await admin.raw("create database ?? character set utf8mb4", [database]);
    return true;
  } catch (error) {
    if (!isUnreachable(error) || process.env.CI_REQUIRE_DB === "1") throw error;
    console.warn(
      `\n⚠️  SKIPPING the Koa example test: MariaDB at ${connection.host}:${connection.port} is unreachable (${String(error)}).\n`,
    );
    return false;
  }
}

const available = await createDatabase();
if (!available) await admin.destroy();

const ACCOUNT_TOKEN = "example-account-token";
const INSTANCE_TOKEN = "example-instance-token";

describe.skipIf(!available)("examples/koa on MariaDB", () => {
  let sim: ChatwootSimulator;
  let example: KoaExample;
  let http: Server;
  let url: string;
  let dir: string;
  let accountId: number;
  let adminToken: string;
  let logs = "";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cw-example-koa-"));
    sim = await startChatwootSimulator();
    accountId = sim.createAccount({ name: "Acme" }).id;
    adminToken = sim.createUser({
      name: "Jane",
      accounts: [{ accountId, role: "administrator" }],
    }).accessToken;
    const config = readConfig({
      DATABASE_URL: `${server}/${database}`,
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
    http = example.app.listen(0, "127.0.0.1");
    await once(http, "listening");
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    http?.closeAllConnections();
    http?.close();
    await example?.close();
    await sim?.close();
    await admin.raw("drop database if exists ??", [database]);
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

    // Stored in this file's own MariaDB database, the token sealed; never in the logs.
    const rows = await admin.withSchema(database).table("chatwoot_integrations").select("*");
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(adminToken);
    expect(JSON.stringify(rows)).toMatch(/cw1:[A-Za-z0-9_-]{8}:/);
    expect(logs).not.toContain(adminToken);

    const removed = await call("/api/chatwoot/delete/suporte?deleteInbox=true", { method: "DELETE" });
    expect(removed.status).toBe(200);
    expect(sim.inboxes(accountId)).toHaveLength(0);
    expect((await call("/api/chatwoot/list/suporte")).status).toBe(404);
  });

  it("answers a malformed body with the contract's 400, before the host's body parser", async () => {
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
