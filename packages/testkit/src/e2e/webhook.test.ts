import { createHmac } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { HttpHandler } from "@ryze/chatwoot-core";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { conversationsOf, totalMessages } from "./inspect.js";

// A bare node:http host for the integration's handler (the framework adapters have their own suite).
async function host(): Promise<{ server: Server; url: string; mount(handler: HttpHandler): void }> {
  let handler: HttpHandler | null = null;
  const server = createServer((req, res) => {
    void (async () => {
      const answer = await handler?.handle({
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers: req.headers,
        stream: req,
      });
      if (!answer) return void res.writeHead(404).end();
      res.writeHead(answer.status, answer.headers).end(answer.body ?? undefined);
    })();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    mount(next) {
      handler = next;
    },
  };
}

let h: RoutingHarness | undefined;
let server: Server | undefined;
afterEach(async () => {
  await h?.close();
  server?.closeAllConnections();
  server?.close();
  h = undefined;
});

const PHONE = "5511900001111";

async function webhookHarness(signing: "off" | "secret") {
  const bridge = await host();
  server = bridge.server;
  h = await startRoutingHarness({ integration: { delivery: "webhook", publicUrl: bridge.url } });
  bridge.mount(h.integration.http);
  h.sim.setWebhookSigning(h.inboxId, signing);
  await h.ingest(textEvent({ phone: PHONE, text: "hello" }));
  await eventually(() => totalMessages(h!) === 1);
  return { bridge, conversationId: conversationsOf(h)[0]!.id };
}

describe("webhook delivery mode", () => {
  it("registers the webhook URL with a capability secret and delivers agent replies through it", async () => {
    const { bridge, conversationId } = await webhookHarness("off");
    const inbox = h!.sim.getInbox(h!.accountId, h!.inboxId) as { webhook_url: string };
    const id = (await h!.store.integrations.get("suporte"))!.id;
    expect(inbox.webhook_url).toMatch(
      new RegExp(`^${bridge.url}/api/chatwoot/webhook/${id}\\?secret=[A-Za-z0-9_-]{43}$`),
    );
    expect(h!.sim.cable.connections()).toBe(0);

    // Our own messages come back as outgoing webhooks too: one typed on the phone, mirrored with a WAID: source id.
    await h!.ingest(textEvent({ phone: PHONE, text: "typed on the phone", direction: "outgoing" }));
    await eventually(() => totalMessages(h!) === 2);
    h!.sim.postAgentMessage({
      accountId: h!.accountId,
      conversationId,
      userId: h!.agent.id,
      content: "internal",
      private: true,
    });
    h!.sim.postAgentMessage({
      accountId: h!.accountId,
      conversationId,
      userId: h!.agent.id,
      content: "via webhook",
    });
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    expect(h!.gateway.sent("suporte")[0]!.text).toBe("via webhook");
    const deliveries = await h!.sim.waitForWebhookDeliveries({ event: "message_created" }, { count: 4 });
    expect(deliveries.map((delivery) => delivery.payload.content)).toEqual([
      "hello",
      "typed on the phone",
      "internal",
      "via webhook",
    ]);
    // Every delivery (incoming, our mirrored one, private note, reply) was accepted at once.
    expect(deliveries.every((delivery) => delivery.status === 200 && delivery.durationMs! < 5_000)).toBe(
      true,
    );
    expect(h!.gateway.sent("suporte").map((sent) => sent.text)).toEqual(["via webhook"]);
  });

  it("refuses a wrong secret and an unknown integration, and absorbs a duplicate delivery", async () => {
    const { bridge, conversationId } = await webhookHarness("off");
    h!.sim.postAgentMessage({
      accountId: h!.accountId,
      conversationId,
      userId: h!.agent.id,
      content: "once",
    });
    const [delivery] = await h!.sim
      .waitForWebhookDeliveries({ event: "message_created" }, { count: 2 })
      .then((all) => all.filter((entry) => entry.payload.content === "once"));
    await eventually(() => h!.gateway.sent("suporte").length === 1);

    const post = (url: string, body = delivery!.body, headers: Record<string, string> = {}) =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    const duplicate = await post(delivery!.url);
    expect(duplicate.status).toBe(200);
    expect(await duplicate.json()).toEqual({ received: true });
    const wrong = await post(delivery!.url.replace(/secret=[^&]+/, "secret=not-it"));
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ success: false, error: { message: "invalid webhook secret" } });
    const missing = await post(delivery!.url.replace(/\?.*$/, ""));
    expect(missing.status).toBe(401);
    const unknown = await post(`${bridge.url}/api/chatwoot/webhook/int_doesnotexist000?secret=x`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ success: false, error: { message: "unknown integration" } });
    // Nothing of the above sent anything again.
    await h!.ingest(textEvent({ phone: PHONE, text: "barrier" }));
    await eventually(() => totalMessages(h!) === 3);
    expect(h!.gateway.sent("suporte")).toHaveLength(1);
  });

  it("verifies Chatwoot's signature and its timestamp when the inbox signs deliveries", async () => {
    const { conversationId } = await webhookHarness("secret");
    h!.sim.postAgentMessage({
      accountId: h!.accountId,
      conversationId,
      userId: h!.agent.id,
      content: "signed",
    });
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    const [delivery] = (
      await h!.sim.waitForWebhookDeliveries({ event: "message_created" }, { count: 2 })
    ).filter((entry) => entry.payload.content === "signed");
    expect(delivery!.headers["x-chatwoot-signature"]).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(delivery!.status).toBe(200);

    const secret = (h!.sim.getInbox(h!.accountId, h!.inboxId) as { secret: string }).secret;
    const send = (timestamp: string, signature: string) =>
      fetch(delivery!.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-chatwoot-timestamp": timestamp,
          "x-chatwoot-signature": signature,
        },
        body: delivery!.body,
      });
    const sign = (timestamp: string) =>
      `sha256=${createHmac("sha256", secret).update(`${timestamp}.${delivery!.body}`).digest("hex")}`;
    const now = String(Math.floor(Date.now() / 1000));
    expect((await send(now, sign(now))).status).toBe(200);
    const bad = await send(
      now,
      sign(now).replace(/.$/, (c) => (c === "0" ? "1" : "0")),
    );
    expect(bad.status).toBe(401);
    const stale = String(Math.floor(Date.now() / 1000) - 6 * 60);
    expect((await send(stale, sign(stale))).status).toBe(401);
    expect(h!.gateway.sent("suporte")).toHaveLength(1);
  });
});
