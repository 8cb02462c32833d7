// Issue 15, acceptance: the network policy through the Express example app, configured by its environment.
// - CHATWOOT_ALLOW_PRIVATE_NETWORKS=false: activation against loopback, in any spelling, answers 400 and the listener
//   on that port sees no connection.
// - CHATWOOT_DENY_NETWORKS=127.0.0.2/32: an agent attachment whose data_url is on 127.0.0.2, or redirects there, is
//   never fetched, and the reply is marked failed with the reason.
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChatwootSimulator, eventually, startChatwootSimulator } from "@ryze/chatwoot-testkit";
import { pino } from "pino";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { buildApp } from "../../express/src/app.js";
import { readConfig } from "./config.js";
import type { RuntimeOptions } from "./runtime.js";

const ACCOUNT_TOKEN = "policy-account-token";
const INSTANCE_TOKEN = "policy-instance-token";
const PHONE_JID = "5511988887777@s.whatsapp.net";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startExample(env: Record<string, string>, options: RuntimeOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), "cw-network-policy-"));
  const config = readConfig({
    DATABASE_URL: `sqlite:${join(dir, "chatwoot.sqlite")}`,
    RYZE_ACCOUNT_TOKEN: ACCOUNT_TOKEN,
    RYZE_INSTANCES: `suporte:${INSTANCE_TOKEN}`,
    ...env,
  });
  const example = await buildApp(config, { dataDir: dir, logger: pino({ level: "silent" }), ...options });
  const server = example.app.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(async () => {
    server.closeAllConnections();
    server.close();
    await example.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const call = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`${url}${path}`, { ...init, headers: { token: init.token ?? ACCOUNT_TOKEN, ...init.headers } });
  const activate = (chatwootBaseUrl: string, chatwootApiToken = "any-token") =>
    call("/api/chatwoot/set/suporte", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ chatwootBaseUrl, chatwootAccountId: 1, chatwootApiToken }),
    });
  return { example, call, activate };
}

/** A TCP listener that only counts the connections it gets. */
async function countingListener(
  host: string,
  port = 0,
): Promise<{ server: Server; port: number; count(): number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  server.listen(port, host);
  await once(server, "listening");
  cleanups.push(() => {
    server.close();
  });
  return { server, port: (server.address() as AddressInfo).port, count: () => connections };
}

describe("CHATWOOT_ALLOW_PRIVATE_NETWORKS=false", () => {
  it("answers 400 to activation against loopback in any spelling, and the listener sees no connection", async () => {
    const listener = await countingListener("127.0.0.1");
    // localhost may resolve to ::1 first: listen there too, on the same port, when the host has IPv6.
    const v6 = await countingListener("::1", listener.port).catch(() => null);
    const { activate, call } = await startExample({ CHATWOOT_ALLOW_PRIVATE_NETWORKS: "false" });
    for (const [url, reason] of [
      [`http://127.0.0.1:${listener.port}`, "127.0.0.1 is in a refused network (loopback)"],
      [`http://localhost:${listener.port}`, "localhost resolves to a refused network (loopback)"],
      [`http://2130706433:${listener.port}`, "127.0.0.1 is in a refused network (loopback)"],
      [`http://[::ffff:127.0.0.1]:${listener.port}`, "::ffff:7f00:1 is in a refused network (loopback)"],
    ] as const) {
      const answer = await activate(url);
      expect(answer.status, url).toBe(400);
      expect(await answer.json(), url).toEqual({
        success: false,
        error: { message: `invalid body: chatwootBaseUrl: ${reason}` },
      });
    }
    expect(listener.count()).toBe(0);
    expect(v6?.count() ?? 0).toBe(0);
    expect((await call("/api/chatwoot/list/suporte")).status).toBe(404);
  });

  it("fails the start naming the variable when a value is not understood", () => {
    expect(() => readConfig({ CHATWOOT_ALLOW_PRIVATE_NETWORKS: "no" })).toThrow(
      /^invalid environment: CHATWOOT_ALLOW_PRIVATE_NETWORKS: must be "true" or "false"$/,
    );
    expect(() => readConfig({ CHATWOOT_DENY_NETWORKS: "10.0.0.0/8, 10/8" })).toThrow(
      /^invalid environment: CHATWOOT_DENY_NETWORKS: entry 2 \("10\/8"\) must be a CIDR/,
    );
    expect(readConfig({ CHATWOOT_DENY_NETWORKS: " 127.0.0.2/32 , fd00::/8 ," }).network).toEqual({
      allowPrivateNetworks: true,
      deny: ["127.0.0.2/32", "fd00::/8"],
    });
  });
});

describe("CHATWOOT_DENY_NETWORKS=127.0.0.2/32", () => {
  /** Default retries: a refused download is permanent, so the reply is marked failed at its first attempt. */
  const quickRetries: RuntimeOptions = {};

  /** Activates against `chatwootUrl`, opens a conversation from WhatsApp and posts an agent reply with a file. */
  async function replyWithAttachment(sim: ChatwootSimulator, chatwootUrl: string) {
    const accountId = sim.createAccount({ name: "Acme" }).id;
    const admin = sim.createUser({ name: "Jane", accounts: [{ accountId, role: "administrator" }] });
    const { example, activate, call } = await startExample(
      { CHATWOOT_DENY_NETWORKS: "127.0.0.2/32" },
      quickRetries,
    );
    const set = await activate(chatwootUrl, admin.accessToken);
    expect(set.status, await set.clone().text()).toBe(201);
    const event = {
      event: "message.exchange",
      data: {
        id: "3EB0POLICY0000001",
        message: {
          id: "3EB0POLICY0000001",
          direction: "incoming",
          timestamp: "2026-04-28T10:30:00Z",
          chat: { jid: PHONE_JID, name: "Ana", type: "private" },
          sender: { jid: PHONE_JID, name: "Ana" },
          content: { text: "send me the invoice" },
        },
      },
      instanceData: { instance: "suporte" },
    };
    const posted = await call("/dev/whatsapp/suporte/events", {
      method: "POST",
      token: INSTANCE_TOKEN,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    expect(posted.status).toBe(202);
    const conversation = await eventually(() => {
      const [first] = sim.conversations(accountId) as Array<{ id: number }>;
      return first && sim.messages(accountId, first.id).length > 0 ? first : null;
    });
    const reply = sim.postAgentMessage({
      accountId,
      conversationId: conversation.id,
      userId: admin.id,
      attachments: [{ data: "%PDF-1.4 invoice", mimetype: "application/pdf", fileName: "invoice.pdf" }],
    }) as { id: number; attachments: Array<{ data_url: string }> };
    const failed = await eventually(
      () => {
        const message = (sim.messages(accountId, conversation.id) as Array<Record<string, unknown>>).find(
          (entry) => entry.id === reply.id,
        );
        return message?.status === "failed" ? message : null;
      },
      { timeoutMs: 20_000 },
    );
    const sent = (await (await call("/dev/whatsapp/suporte/sent", { token: INSTANCE_TOKEN })).json()) as {
      sent: Array<{ type: string }>;
    };
    return { example, reply, failed, sent: sent.sent };
  }

  it("never fetches a data_url on 127.0.0.2, and marks the reply failed with the reason", async () => {
    // Chatwoot renders data_url with its own address (127.0.0.2); the bridge reaches its API through 127.0.0.1,
    // a plain TCP relay whose connections to Chatwoot come from 127.0.0.3, so any other connection is the bridge's.
    const sim = await startChatwootSimulator({ host: "127.0.0.2" });
    cleanups.push(() => sim.close());
    const simPort = Number(new URL(sim.url).port);
    const relay = createServer((client: Socket) => {
      const upstream = connect({ host: "127.0.0.2", port: simPort, localAddress: "127.0.0.3" });
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    relay.listen(0, "127.0.0.1");
    await once(relay, "listening");
    cleanups.push(() => {
      relay.close();
    });
    let direct = 0;
    const onSocket = (message: unknown) => {
      const { socket } = message as { socket: Socket };
      if (
        socket.localAddress === "127.0.0.2" &&
        socket.localPort === simPort &&
        socket.remoteAddress !== "127.0.0.3"
      )
        direct++;
    };
    subscribe("net.server.socket", onSocket);
    cleanups.push(() => {
      unsubscribe("net.server.socket", onSocket);
    });

    const { reply, failed, sent } = await replyWithAttachment(
      sim,
      `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
    );
    expect(new URL(reply.attachments[0]!.data_url).hostname).toBe("127.0.0.2");
    expect(failed.content_attributes).toMatchObject({
      external_error: expect.stringMatching(/127\.0\.0\.2 is in a refused network \(127\.0\.0\.2\/32\)/),
    });
    expect(direct).toBe(0);
    expect(sim.countRequests({ path: /^\/rails\/active_storage\// })).toBe(0);
    expect(sent).toEqual([]);
  });

  it("never follows a redirect to 127.0.0.2, and marks the reply failed with the reason", async () => {
    const target = await countingListener("127.0.0.2");
    const sim = await startChatwootSimulator();
    cleanups.push(() => sim.close());
    // ActiveStorage's redirect (data_url → storage service) now points at the denied host.
    sim.faults.inject({
      method: "GET",
      path: /^\/rails\/active_storage\/blobs\/redirect\//,
      status: 302,
      headers: { location: `http://127.0.0.2:${target.port}/invoice.pdf` },
    });
    const { failed, sent } = await replyWithAttachment(sim, sim.url);
    expect(failed.content_attributes).toMatchObject({
      external_error: expect.stringMatching(/127\.0\.0\.2 is in a refused network \(127\.0\.0\.2\/32\)/),
    });
    // The first hop, on the allowed host, was fetched; the second never connected.
    expect(
      sim.countRequests({ method: "GET", path: /^\/rails\/active_storage\/blobs\/redirect\// }),
    ).toBeGreaterThan(0);
    expect(target.count()).toBe(0);
    expect(sent).toEqual([]);
  });
});

afterAll(() => {
  // Nothing shared is left: every test cleaned up after itself.
  expect(cleanups).toEqual([]);
});
