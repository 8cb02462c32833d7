import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChatwootSimulator, eventually, startChatwootSimulator } from "@ryze/chatwoot-testkit";
import { readConfig } from "@ryze/example-shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type ExpressExample } from "./app.js";

const ACCOUNT_TOKEN = "example-account-token";
const INSTANCE_TOKEN = "example-instance-token";

describe("examples/express on SQLite", () => {
  let sim: ChatwootSimulator;
  let example: ExpressExample;
  let server: Server;
  let url: string;
  let dir: string;
  let accountId: number;
  let adminToken: string;
  let logs = "";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cw-example-express-"));
    sim = await startChatwootSimulator();
    accountId = sim.createAccount({ name: "Acme" }).id;
    adminToken = sim.createUser({
      name: "Jane",
      accounts: [{ accountId, role: "administrator" }],
    }).accessToken;
    const config = readConfig({
      DATABASE_URL: `sqlite:${join(dir, "chatwoot.sqlite")}`,
      RYZE_ACCOUNT_TOKEN: ACCOUNT_TOKEN,
      RYZE_INSTANCES: `suporte:${INSTANCE_TOKEN}`,
      LOG_LEVEL: "debug",
    });
    const { pino } = await import("pino");
    const logger = pino(
      { level: "debug" },
      {
        write(line: string) {
          logs += line;
        },
      },
    );
    example = await buildApp(config, { dataDir: dir, logger });
    server = example.app.listen(0, "127.0.0.1");
    await once(server, "listening");
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    server?.close();
    await example?.close();
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`${url}${path}`, { ...init, headers: { token: init.token ?? ACCOUNT_TOKEN, ...init.headers } });

  it("generates a key into the data folder and says so in the log, without the key", () => {
    const key = readFileSync(join(dir, "encryption.key"), "utf8").trim();
    expect(Buffer.from(key, "base64")).toHaveLength(32);
    expect(logs).toContain("generated a new key into the data folder");
    expect(logs).not.toContain(key);
  });

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

    // The token is sealed: not in the database file (nor its journal), not in the logs.
    const files = readdirSync(dir).filter((name) => name.startsWith("chatwoot.sqlite"));
    expect(files.length).toBeGreaterThan(0);
    for (const name of files) {
      const bytes = readFileSync(join(dir, name));
      expect(bytes.includes(Buffer.from(adminToken)), name).toBe(false);
    }
    const raw = await example.knex("chatwoot_integrations").select("*");
    expect(JSON.stringify(raw)).not.toContain(adminToken);
    expect(JSON.stringify(raw)).toMatch(/cw1:[A-Za-z0-9_-]{8}:/);
    expect(logs).not.toContain(adminToken);
    expect(logs).not.toContain(ACCOUNT_TOKEN);

    const removed = await call("/api/chatwoot/delete/suporte?deleteInbox=true", { method: "DELETE" });
    expect(removed.status).toBe(200);
    expect(sim.inboxes(accountId)).toHaveLength(0);
    expect((await call("/api/chatwoot/list/suporte")).status).toBe(404);
  });

  it("shows a round trip through the simulated WhatsApp side", async () => {
    const set = await call("/api/chatwoot/set/suporte", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        chatwootBaseUrl: sim.url,
        chatwootAccountId: accountId,
        chatwootApiToken: adminToken,
        signMessages: true,
      }),
    });
    expect(set.status).toBe(201);
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
    const accepted = await call("/dev/whatsapp/suporte/events", {
      method: "POST",
      token: INSTANCE_TOKEN,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    expect(accepted.status).toBe(202);
    expect(await accepted.json()).toEqual({ accepted: true, id: "3EB0ROUNDTRIP0001" });

    const conversation = await eventually(() => {
      const [first] = sim.conversations(accountId) as Array<{ id: number }>;
      const messages = first ? (sim.messages(accountId, first.id) as Array<{ content: string }>) : [];
      return messages.some((message) => message.content === "Olá, preciso de ajuda") ? first : null;
    });
    const agent = sim.createUser({ name: "Maria", accounts: [{ accountId, role: "agent" }] });
    const inbox = sim.inboxes(accountId).at(-1) as { id: number };
    sim.addInboxMember(inbox.id, agent.id);
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
    const malformed = await call("/dev/whatsapp/suporte/events", {
      method: "POST",
      token: INSTANCE_TOKEN,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ event: "message.exchange", data: { message: { id: "x" } } }),
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { message: string } }).error.message).toMatch(
      /^invalid event: data\.message\.direction: /,
    );
  });

  it("keeps the host's own routes working", async () => {
    const health = await fetch(`${url}/health`);
    expect(await health.json()).toEqual({ ok: true });
  });
});
