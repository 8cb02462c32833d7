import { createHmac } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { WhatsAppGateway, WhatsAppSend } from "@ryze/chatwoot-core";
import type { HttpHandler } from "@ryze/chatwoot-core/adapter";
import { afterEach, describe, expect, it } from "vitest";
import { CHATWOOT_VERSIONS, type ChatwootVersion } from "../simulator/index.js";
import { createSimulatedWhatsAppGateway } from "../whatsapp/index.js";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

// A bare node:http host for the bridge's handler (the framework adapters have their own suite).
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

/** An agent reply in the dashboard; returns its id. */
function reply(conversationId: number, content: string): number {
  const message = h!.sim.postAgentMessage({
    accountId: h!.accountId,
    conversationId,
    userId: h!.agent.id,
    content,
  });
  return message["id"] as number;
}

const sentTexts = () => h!.gateway.sent("suporte").map((sent) => sent.text);

const statusOf = (conversationId: number, id: number) =>
  chatMessages(h!, conversationId).find((m) => m.id === id)?.status;
const notesIn = (conversationId: number) => chatMessages(h!, conversationId).filter((m) => m.private).length;
const receipt = (waMessageId: string, status: string) => ({
  event: "message.status",
  data: { id: waMessageId, chat: { jid: `${PHONE}@s.whatsapp.net` }, status },
});

/**
 * A WhatsApp gateway double whose matching sends wait until `release()` (WhatsApp being slow), and then fail
 * while `failWith` has set an error.
 */
function heldGateway(holds: (message: WhatsAppSend) => boolean = () => true) {
  const inner = createSimulatedWhatsAppGateway();
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let waiting = 0;
  let failure: string | null = null;
  const gateway: WhatsAppGateway = {
    supportsRevoke: true,
    async send(message, options) {
      if (holds(message)) {
        waiting++;
        await gate;
        if (failure !== null) throw new Error(failure);
      }
      return inner.send(message, options);
    },
  };
  return {
    gateway,
    inner,
    release: () => release(),
    waiting: () => waiting,
    failWith(error: string | null) {
      failure = error;
    },
  };
}

/** A webhook-mode bridge against a simulator of `version`: unsigned deliveries before 4.13, signed from 4.13. */
async function webhookHarness(version: ChatwootVersion, gateway?: WhatsAppGateway) {
  const site = await host();
  server = site.server;
  h = await startRoutingHarness({
    version,
    bridge: { delivery: "webhook", publicUrl: site.url, ...(gateway ? { gateway } : {}) },
  });
  site.mount(h.bridge.http);
  await h.ingest(textEvent({ phone: PHONE, text: "hello" }));
  await eventually(() => totalMessages(h!) === 1);
  return { site, conversationId: conversationsOf(h)[0]!.id };
}

// Every version the library supports (docs/chatwoot-versions.md): 4.10 and 4.11 send no X-Chatwoot-* header, 4.12 sends
// X-Chatwoot-Delivery, 4.13 also signs (lib/webhooks/trigger.rb). The webhook route must serve each.
describe.each(CHATWOOT_VERSIONS)("webhook delivery mode (Chatwoot %s)", (version) => {
  const signed = version === "4.13";
  it("registers the webhook URL with a capability secret and delivers agent replies through it", async () => {
    const { site, conversationId } = await webhookHarness(version);
    const inbox = h!.sim.getInbox(h!.accountId, h!.inboxId) as { webhook_url: string };
    const id = (await h!.store.integrations.get("suporte"))!.id;
    expect(inbox.webhook_url).toMatch(
      new RegExp(`^${site.url}/api/chatwoot/webhook/${id}\\?secret=[A-Za-z0-9_-]{43}$`),
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
    expect(deliveries.every((delivery) => "x-chatwoot-signature" in delivery.headers === signed)).toBe(true);
    // What the bridge learnt at activation: the version, and (4.13) the inbox's signing secret, sealed.
    const list = await h!.bridge.http.handle({
      method: "GET",
      path: "/api/chatwoot/list/suporte",
      headers: { token: "t" },
    });
    expect(JSON.parse(list!.body!)).toMatchObject({
      chatwoot_version: { "4.10": "4.10.0", "4.11": "4.11.2", "4.12": "4.12.1", "4.13": "4.13.0" }[version],
    });
    const stored = await h!.store.integrations.get("suporte");
    if (signed) expect(stored!.signingSecret).toMatch(/^cw1:k1:/);
    else expect(stored!.signingSecret).toBeNull();
    expect(h!.gateway.sent("suporte").map((sent) => sent.text)).toEqual(["via webhook"]);
  });

  it("refuses a wrong secret and an unknown integration alike, and absorbs a duplicate delivery", async () => {
    const { site, conversationId } = await webhookHarness(version);
    h!.sim.webhooks.duplicateNext(1);
    const messageId = reply(conversationId, "once");
    const [delivery, duplicate] = await h!.sim.waitForWebhookDeliveries(
      { event: "message_created", messageId },
      { count: 2 },
    );
    expect(duplicate).toMatchObject({ attempt: 2, id: delivery!.id, body: delivery!.body, status: 200 });
    expect(delivery!.status).toBe(200);
    await eventually(() => h!.gateway.sent("suporte").length === 1);

    const post = (url: string, body = delivery!.body, headers: Record<string, string> = {}) =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    const wrong = await post(delivery!.url.replace(/secret=[^&]+/, "secret=not-it"));
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ success: false, error: { message: "invalid webhook secret" } });
    const missing = await post(delivery!.url.replace(/\?.*$/, ""));
    expect(missing.status).toBe(401);
    // An unknown integration gets the answer of a wrong secret: nobody learns which ids exist.
    const secret = new URL(delivery!.url).searchParams.get("secret")!;
    const unknown = await post(`${site.url}/api/chatwoot/webhook/int_doesnotexist000?secret=${secret}`);
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toEqual({ success: false, error: { message: "invalid webhook secret" } });
    // Nothing of the above sent anything again: replies of a conversation go out in order.
    reply(conversationId, "barrier");
    await eventually(() => h!.gateway.sent("suporte").length === 2);
    expect(sentTexts()).toEqual(["once", "barrier"]);
  });

  it("answers a late delivery and its redelivery at once, while WhatsApp is slow, and sends the reply once", async () => {
    const slow = heldGateway();
    const { conversationId } = await webhookHarness(version, slow.gateway);
    h!.sim.webhooks.delayNext(1, 1_000);
    h!.sim.webhooks.duplicateNext(1);
    const messageId = reply(conversationId, "late");
    // Both attempts are answered while the send to WhatsApp is still held: the work was only queued.
    const deliveries = await h!.sim.waitForWebhookDeliveries(
      { event: "message_created", messageId },
      { count: 2, timeoutMs: 10_000 },
    );
    await eventually(() => slow.waiting() === 1, { what: "the send under way" });
    expect(slow.inner.sent("suporte")).toEqual([]);
    expect(deliveries.map((delivery) => [delivery.attempt, delivery.delayMs, delivery.status])).toEqual([
      [1, 1_000, 200],
      [2, 0, 200],
    ]);
    expect(deliveries.every((delivery) => delivery.durationMs! < 5_000)).toBe(true);
    expect(deliveries[1]!.headers["x-chatwoot-delivery"]).toBe(deliveries[0]!.headers["x-chatwoot-delivery"]);
    expect(chatMessages(h!, conversationId).find((m) => m.id === messageId)?.status).toBe("sent");

    slow.release();
    reply(conversationId, "after");
    await eventually(() => slow.inner.sent("suporte").length === 2);
    expect(slow.inner.sent("suporte").map((sent) => sent.text)).toEqual(["late", "after"]);
  });

  it("re-sends a reply it gave up on once per retry by the agent, never for redeliveries or other updates", async () => {
    const { conversationId } = await webhookHarness(version);
    const status = (id: number) => statusOf(conversationId, id);
    const notes = () => notesIn(conversationId);
    h!.gateway.failNext("suporte", 3, "phone offline");
    const messageId = reply(conversationId, "are you there?");
    await eventually(() => status(messageId) === "failed" && notes() === 1, { what: "failed with a note" });
    expect(
      chatMessages(h!, conversationId).find((m) => m.id === messageId)?.content_attributes,
    ).toMatchObject({
      external_error: "Not delivered to WhatsApp: phone offline",
    });
    // Marking it failed came back as a message_updated webhook (no status in it); it sent nothing.
    const [marked] = await h!.sim.waitForWebhookDeliveries({ event: "message_updated", messageId });
    expect(marked!.payload).not.toHaveProperty("status");
    expect(marked!.payload).not.toHaveProperty("previous_changes");
    reply(conversationId, "meanwhile");
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    expect(sentTexts()).toEqual(["meanwhile"]);

    // A retry that fails again is given up on again, and the next retry still counts.
    h!.gateway.failNext("suporte", 3, "still offline");
    h!.sim.retryMessage({ accountId: h!.accountId, conversationId, messageId });
    await eventually(() => status(messageId) === "failed" && notes() === 2, { what: "failed again" });
    expect(sentTexts()).toEqual(["meanwhile"]);

    // Both updates of this retry are delivered twice.
    h!.sim.webhooks.duplicateNext(2);
    h!.sim.retryMessage({ accountId: h!.accountId, conversationId, messageId });
    await eventually(() => h!.gateway.sent("suporte").length === 2);
    const updates = await h!.sim.waitForWebhookDeliveries(
      { event: "message_updated", messageId },
      { count: 8 },
    );
    expect(updates.filter((update) => update.attempt === 2 && update.status === 200)).toHaveLength(2);
    await eventually(() => status(messageId) === "sent");

    // Updates of a reply that never failed look the same in a webhook (a receipt, even a retry), and send nothing.
    const afterId = reply(conversationId, "after");
    await eventually(() => h!.gateway.sent("suporte").length === 3);
    await h!.ingest(receipt(h!.gateway.sent("suporte")[2]!.id, "delivered"));
    await eventually(() => status(afterId) === "delivered");
    h!.sim.retryMessage({ accountId: h!.accountId, conversationId, messageId: afterId });
    await h!.sim.waitForWebhookDeliveries({ event: "message_updated", messageId: afterId }, { count: 2 });
    reply(conversationId, "barrier");
    await eventually(() => h!.gateway.sent("suporte").length === 4);
    expect(sentTexts()).toEqual(["meanwhile", "are you there?", "after", "barrier"]);
  });

  it("takes no update during a failing delivery for a retry; the agent's retry sends only the missing part", async () => {
    const wa = heldGateway((message) => message.kind !== "text");
    wa.failWith("media rejected");
    const { conversationId } = await webhookHarness(version, wa.gateway);
    const sent = () => wa.inner.sent("suporte");
    const messageId = h!.sim.postAgentMessage({
      accountId: h!.accountId,
      conversationId,
      userId: h!.agent.id,
      content: "see attached",
      attachments: [{ data: "PNG bytes", mimetype: "image/png", fileName: "shot.png" }],
    })["id"] as number;
    await eventually(() => sent().length === 1 && wa.waiting() === 1, { what: "text sent, image held" });
    // WhatsApp confirms the text while the image is still being tried: a message_updated like a retry's.
    await h!.ingest(receipt(sent()[0]!.id, "delivered"));
    await eventually(() => statusOf(conversationId, messageId) === "delivered");
    await h!.sim.waitForWebhookDeliveries({ event: "message_updated", messageId });
    wa.release();
    await eventually(
      () => statusOf(conversationId, messageId) === "failed" && notesIn(conversationId) === 1,
      {
        what: "failed with a note",
      },
    );
    reply(conversationId, "barrier");
    await eventually(() => sent().length === 2);
    expect(sent().map((entry) => entry.text ?? entry.type)).toEqual(["see attached", "barrier"]);
    expect(notesIn(conversationId)).toBe(1);
    // A late receipt for the text that went out leaves the reply failed for the agent, and sends nothing again.
    const ignored = h!.bridge.counters().receipt_ignored ?? 0;
    await h!.ingest(receipt(sent()[0]!.id, "read"));
    await eventually(() => h!.bridge.counters().receipt_ignored === ignored + 1, {
      what: "the receipt ignored",
    });
    expect(statusOf(conversationId, messageId)).toBe("failed");
    expect(sent()).toHaveLength(2);

    wa.failWith(null);
    h!.sim.retryMessage({ accountId: h!.accountId, conversationId, messageId });
    await eventually(() => sent().length === 3);
    await eventually(() => statusOf(conversationId, messageId) === "sent");
    expect(sent().map((entry) => entry.text ?? entry.type)).toEqual(["see attached", "barrier", "image"]);
  });

  it.runIf(signed)(
    "verifies Chatwoot's signature and its timestamp when the inbox signs deliveries",
    async () => {
      const { conversationId } = await webhookHarness(version);
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
      // The inbox has a secret: a delivery without signature is refused, even with the URL secret.
      const unsigned = await fetch(delivery!.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: delivery!.body,
      });
      expect(unsigned.status).toBe(401);
      expect(h!.gateway.sent("suporte")).toHaveLength(1);
    },
  );

  it.runIf(signed)(
    "follows a secret rotated in Chatwoot (POST …/inboxes/:id/reset_secret): one re-read, then the new secret is kept",
    async () => {
      const { conversationId } = await webhookHarness(version);
      const reset = await fetch(
        `${h!.sim.url}/api/v1/accounts/${h!.accountId}/inboxes/${h!.inboxId}/reset_secret`,
        {
          method: "POST",
          headers: { api_access_token: h!.agent.accessToken },
        },
      );
      expect(reset.status).toBe(200);
      const rotated = ((await reset.json()) as { secret: string }).secret;
      h!.sim.clearRequests();
      const first = reply(conversationId, "after the rotation");
      const second = reply(conversationId, "and again");
      const deliveries = await h!.sim.waitForWebhookDeliveries({ event: "message_created" }, { count: 3 });
      expect(
        deliveries.filter((entry) => [first, second].includes(entry.payload["id"] as number)),
      ).toMatchObject([{ status: 200 }, { status: 200 }]);
      await eventually(() => h!.gateway.sent("suporte").length === 2);
      expect(sentTexts()).toEqual(["after the rotation", "and again"]);
      // One read of the inbox for both (the second delivery used the kept secret, or shared the read).
      expect(
        h!.sim.countRequests({
          method: "GET",
          path: `/api/v1/accounts/${h!.accountId}/inboxes/${h!.inboxId}`,
        }),
      ).toBe(1);
      const integration = await h!.bridge.http.handle({
        method: "GET",
        path: "/api/chatwoot/list/suporte",
        headers: { token: "t" },
      });
      expect(integration!.status).toBe(200);
      const stored = await h!.store.integrations.get("suporte");
      expect(stored!.signingSecret).toMatch(/^cw1:k1:/);
      expect(JSON.stringify(stored)).not.toContain(rotated);
    },
  );

  it.runIf(!signed)(
    "accepts unsigned deliveries on the URL secret alone, and refuses a signature it cannot check",
    async () => {
      const { conversationId } = await webhookHarness(version);
      const messageId = reply(conversationId, "unsigned");
      const [delivery] = await h!.sim.waitForWebhookDeliveries({ event: "message_created", messageId });
      expect(delivery!.status).toBe(200);
      expect(Object.keys(delivery!.headers).filter((name) => name.startsWith("x-chatwoot-"))).toEqual(
        version === "4.12" ? ["x-chatwoot-delivery"] : [],
      );
      await eventually(() => h!.gateway.sent("suporte").length === 1);
      const timestamp = String(Math.floor(Date.now() / 1000));
      const forged = await fetch(delivery!.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-chatwoot-timestamp": timestamp,
          "x-chatwoot-signature": `sha256=${createHmac("sha256", "guess").update(`${timestamp}.${delivery!.body}`).digest("hex")}`,
        },
        body: delivery!.body,
      });
      // The inbox has no secret before 4.13 (one read of the inbox tells): nothing can check it, so it is refused.
      expect(forged.status).toBe(401);
      expect(sentTexts()).toEqual(["unsigned"]);
    },
  );
});
