// Test support for the example apps: the same checks for Express, Koa and Fastify, each on its database.
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChatwootSimulator, eventually, startChatwootSimulator } from "@ryze/chatwoot-testkit";
import { createTestDatabase, type DatabaseKind } from "@ryze/chatwoot-testkit/databases";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ExampleConfig, readConfig } from "./config.js";
import type { ExampleRuntime, RuntimeOptions } from "./runtime.js";

export interface StartedExample {
  url: string;
  runtime: ExampleRuntime;
  close(): Promise<void>;
}

export interface ExampleAppSuiteOptions {
  name: string;
  database: DatabaseKind | "sqlite";
  /** Builds the example with `buildApp(config, options)` and listens on 127.0.0.1, port 0. */
  start(config: ExampleConfig, options: RuntimeOptions): Promise<StartedExample>;
}

/** A started example on a node:http server (Express and Koa), once it listens. */
export async function servedBy(server: Server, runtime: ExampleRuntime): Promise<StartedExample> {
  if (!server.listening) await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    runtime,
    async close() {
      server.closeAllConnections();
      server.close();
      await runtime.close();
    },
  };
}

const ACCOUNT_TOKEN = "example-account-token";
const INSTANCE_TOKEN = "example-instance-token";

/** set → list → delete against the simulator, the sealed token at rest, the dev WhatsApp round trip. */
export async function runExampleAppSuite(options: ExampleAppSuiteOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `cw-example-${options.name}-`));
  const database =
    options.database === "sqlite" ? null : await createTestDatabase(options.database, `cw_${options.name}`);
  const available = options.database === "sqlite" || database !== null;
  const databaseUrl = database?.url ?? `sqlite:${join(dir, "chatwoot.sqlite")}`;

  describe.skipIf(!available)(`examples/${options.name} on ${options.database}`, () => {
    let sim: ChatwootSimulator;
    let example: StartedExample;
    let accountId: number;
    let adminToken: string;
    let logs = "";

    beforeAll(async () => {
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
      example = await options.start(config, { dataDir: dir, logger });
    });

    afterAll(async () => {
      await example?.close();
      await sim?.close();
      await database?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    const call = (path: string, init: RequestInit & { token?: string } = {}) =>
      fetch(`${example.url}${path}`, {
        ...init,
        headers: { token: init.token ?? ACCOUNT_TOKEN, ...init.headers },
      });
    const activate = (body: Record<string, unknown> = {}) =>
      call("/api/chatwoot/set/suporte", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          chatwootBaseUrl: sim.url,
          chatwootAccountId: accountId,
          chatwootApiToken: adminToken,
          ...body,
        }),
      });

    it("generates a key into the data folder and says so in the log, without the key", () => {
      const key = readFileSync(join(dir, "encryption.key"), "utf8").trim();
      expect(Buffer.from(key, "base64")).toHaveLength(32);
      expect(logs).toContain("generated a new key into the data folder");
      expect(logs).not.toContain(key);
    });

    it("runs set → list → delete against the simulator, with the token sealed at rest", async () => {
      const set = await activate({ inboxName: "WhatsApp - Orion", startAsPending: true });
      expect(set.status, await set.clone().text()).toBe(201);
      const { bridge_integration_id: id } = (await set.json()) as { bridge_integration_id: string };

      const list = await call("/api/chatwoot/list/suporte", { token: INSTANCE_TOKEN });
      expect(list.status).toBe(200);
      // It answers the plaintext token: no browser or proxy cache may keep it.
      expect(list.headers.get("cache-control")).toBe("no-store");
      expect(await list.json()).toMatchObject({
        bridge_integration_id: id,
        chatwoot_api_token: adminToken,
        start_as_pending: true,
        sign_messages: false,
      });

      const rows = await example.runtime.knex("chatwoot_integrations").select("*");
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(adminToken);
      expect(JSON.stringify(rows)).toMatch(/cw1:[A-Za-z0-9_-]{8}:/);
      if (options.database === "sqlite") {
        // Raw bytes of the database file and its journal: the token is nowhere in plaintext, while its sealed
        // form is (so the search reads the bytes the row was written to).
        const sealed = Buffer.from(String((rows[0] as { api_token: unknown }).api_token));
        let sealedFound = false;
        for (const name of readdirSync(dir).filter((file) => file.startsWith("chatwoot.sqlite"))) {
          const bytes = readFileSync(join(dir, name));
          expect(bytes.includes(Buffer.from(adminToken)), name).toBe(false);
          sealedFound ||= bytes.includes(sealed);
        }
        expect(sealedFound, "the sealed token is in the database files").toBe(true);
      }
      expect(logs).not.toContain(adminToken);
      expect(logs).not.toContain(ACCOUNT_TOKEN);

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
      expect(await answer.json()).toMatchObject({
        success: false,
        error: { message: expect.stringMatching(/^invalid body: /) },
      });
    });

    it("shows a round trip through the simulated WhatsApp side", async () => {
      expect((await activate({ signMessages: true })).status).toBe(201);
      const event = {
        event: "message.exchange",
        data: {
          id: "3EB0ROUNDTRIP0001",
          message: {
            id: "3EB0ROUNDTRIP0001",
            direction: "incoming",
            timestamp: "2026-04-28T10:30:00Z",
            chat: { jid: "5511999999999@s.whatsapp.net", name: "João Silva", type: "private" },
            sender: { jid: "5511999999999@s.whatsapp.net", name: "João Silva" },
            content: { text: "Olá, preciso de ajuda" },
          },
        },
        instanceData: { instance: "suporte" },
      };
      const post = (body: unknown) =>
        call("/dev/whatsapp/suporte/events", {
          method: "POST",
          token: INSTANCE_TOKEN,
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      const accepted = await post(event);
      expect(accepted.status).toBe(202);
      expect(await accepted.json()).toEqual({ accepted: true, id: "3EB0ROUNDTRIP0001" });

      const conversation = await eventually(() => {
        const [first] = sim.conversations(accountId) as Array<{ id: number }>;
        const messages = first ? (sim.messages(accountId, first.id) as Array<{ content: string }>) : [];
        return messages.some((message) => message.content === "Olá, preciso de ajuda") ? first : null;
      });
      const agent = sim.createUser({ name: "Maria", accounts: [{ accountId, role: "agent" }] });
      sim.addInboxMember((sim.inboxes(accountId).at(-1) as { id: number }).id, agent.id);
      sim.postAgentMessage({
        accountId,
        conversationId: conversation.id,
        userId: agent.id,
        content: "Claro, como posso ajudar?",
      });

      const sent = await eventually(async () => {
        const answer = await call("/dev/whatsapp/suporte/sent", { token: INSTANCE_TOKEN });
        const body = (await answer.json()) as { sent: Array<Record<string, unknown>> };
        return body.sent.length > 0 ? body.sent : null;
      });
      expect(sent).toEqual([
        {
          id: expect.stringMatching(/^SIM[0-9A-F]{12}$/),
          to: "5511999999999@s.whatsapp.net",
          type: "text",
          text: "*Maria*:\nClaro, como posso ajudar?",
          replyTo: null,
          at: expect.any(String),
        },
      ]);
      const malformed = await post({ event: "message.exchange", data: { message: { id: "x" } } });
      expect(malformed.status).toBe(400);
      expect(((await malformed.json()) as { error: { message: string } }).error.message).toMatch(
        /^invalid event: data\.message\.direction: /,
      );
    });

    it("guards the simulated WhatsApp side with the caller tokens", async () => {
      for (const [token, message] of [
        [null, "Missing token"],
        ["not-a-caller-token", "Invalid token"],
      ] as const) {
        const answer = await fetch(`${example.url}/dev/whatsapp/suporte/sent`, {
          headers: token ? { token } : {},
        });
        expect(answer.status).toBe(401);
        expect(await answer.json()).toEqual({ success: false, error: { message } });
      }
      expect((await call("/dev/whatsapp/suporte/sent", { token: INSTANCE_TOKEN })).status).toBe(200);
    });

    it("answers a malformed escape in the simulated WhatsApp path as an unknown path, never with a stack trace", async () => {
      const answer = await fetch(`${example.url}/dev/whatsapp/%E0%A4%A/sent`, {
        headers: { token: INSTANCE_TOKEN },
      });
      // Express and Koa let the host answer (404); Fastify's router refuses the URL itself (400).
      expect([400, 404]).toContain(answer.status);
      const text = await answer.text();
      expect(text).not.toMatch(/URIError|at .*\.ts|node_modules/);
    });

    it("serves /metrics, /health and /ready to the operator", async () => {
      const metrics = await fetch(`${example.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await metrics.text();
      // The round trip above: one message each way.
      expect(text).toMatch(
        /^chatwoot_bridge_messages_routed_total\{direction="inbound",kind="message"\} 1$/m,
      );
      expect(text).toMatch(
        /^chatwoot_bridge_messages_routed_total\{direction="outbound",kind="agent-message"\} 1$/m,
      );
      expect(text).toMatch(/^chatwoot_bridge_outbox_depth 0$/m);

      const health = await fetch(`${example.url}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: "ok", checks: { store: { status: "ok" } } });
      const ready = await fetch(`${example.url}/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({
        status: "ok",
        checks: { store: { status: "ok" }, dispatcher: { status: "ok" }, realtime: { status: "ok" } },
      });
    });

    // Last: it stops the bridge.
    it("answers /ready 503 naming the failed check once the bridge stopped; /health stays 200", async () => {
      await example.runtime.bridge.stop();
      const ready = await fetch(`${example.url}/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({
        status: "fail",
        checks: {
          store: { status: "ok" },
          dispatcher: {
            status: "fail",
            detail: "the outbox dispatcher is not running (bridge.start() not called, or stopped)",
          },
        },
      });
      expect((await fetch(`${example.url}/health`)).status).toBe(200);
    });
  });
}
