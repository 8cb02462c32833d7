import { afterEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "../simulator/index.js";
import { eventually, type RoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";
import { type DeliveryMode, type HostFault, startModeHarness, type WebhookHost } from "./modes.js";

// Chatwoot does not retry API-inbox webhooks; a failed delivery of message_created/message_updated (non-2xx, timeout,
// refused) marks the message failed (lib/webhooks/trigger.rb#handle_error). The agent's retry
// (POST …/messages/:id/retry, MessagesController#retry) puts it back to `sent` and clears content_attributes: two
// message_updated events, for a message the bridge may never have seen.

const PHONE = "5511900004444";
const JID = `${PHONE}@s.whatsapp.net`;
let sim: ChatwootSimulator | undefined;
let running: { close(): Promise<void> } | undefined;
let h: RoutingHarness;
let host: WebhookHost | null;
afterEach(async () => {
  await running?.close();
  await sim?.close();
  running = undefined;
  sim = undefined;
});

async function withConversation(mode: DeliveryMode) {
  // A short webhook timeout (Chatwoot's WEBHOOK_TIMEOUT, 5 s by default) keeps the timeout cases quick.
  sim = await startChatwootSimulator({ cablePingIntervalMs: 200, webhookTimeoutMs: 500 });
  const started = await startModeHarness(mode, { sim });
  running = started;
  h = started.h;
  host = started.host;
  await h.ingest(textEvent({ phone: PHONE, text: "hello" }));
  await eventually(() => totalMessages(h) === 1);
  return conversationsOf(h)[0]!.id;
}

const reply = (conversationId: number, content: string) =>
  h.sim.postAgentMessage({ accountId: h.accountId, conversationId, userId: h.agent.id, content })[
    "id"
  ] as number;
const sentTexts = () => h.gateway.sent("suporte").map((sent) => sent.text);
const messageOf = (conversationId: number, id: number) =>
  chatMessages(h, conversationId).find((message) => message.id === id)!;

/** The agent presses "retry" in the dashboard (the route it calls). */
async function retry(conversationId: number, messageId: number) {
  const res = await fetch(
    `${h.sim.url}/api/v1/accounts/${h.accountId}/conversations/${conversationId}/messages/${messageId}/retry`,
    { method: "POST", headers: { api_access_token: h.agent.accessToken } },
  );
  expect(res.status).toBe(200);
}

const receipt = (waMessageId: string, status: string) =>
  h.ingest({ event: "message.status", data: { id: waMessageId, chat: { jid: JID }, status } });

describe("webhook mode: a reply whose delivery to us failed", () => {
  const faults: Array<[string, HostFault | "down", string]> = [
    ["our endpoint answered 503", { status: 503 }, "503 Service Unavailable"],
    ["our endpoint never answered", { hang: true }, "Timed out reading data from server"],
    ["our endpoint was down", "down", "Failed to open TCP connection"],
  ];
  it.each(faults)("is sent once when the agent retries it (%s)", async (_, fault, error) => {
    const conversationId = await withConversation("webhook");
    if (fault === "down") await host!.down();
    else host!.override(() => fault);
    const messageId = reply(conversationId, "are you there?");
    await eventually(() => messageOf(conversationId, messageId).status === "failed", {
      what: "Chatwoot marking the reply failed",
    });
    expect(String(messageOf(conversationId, messageId).content_attributes["external_error"])).toContain(
      error,
    );
    expect(h.gateway.sent("suporte")).toEqual([]);

    if (fault === "down") await host!.up();
    else host!.override(null);
    h.sim.webhooks.duplicateNext(2);
    await retry(conversationId, messageId);
    await eventually(() => h.gateway.sent("suporte").length === 1, { what: "the retried reply on WhatsApp" });
    // Both updates of the retry, each delivered twice, send it once; later replies follow in order.
    await h.sim.waitForWebhookDeliveries({ event: "message_updated", messageId }, { count: 4 });
    reply(conversationId, "barrier");
    await eventually(() => h.gateway.sent("suporte").length === 2);
    expect(sentTexts()).toEqual(["are you there?", "barrier"]);
    expect(messageOf(conversationId, messageId).status).toBe("sent");
  });

  it("is sent once when our answer came too late, and the agent's retry does not send it again", async () => {
    const conversationId = await withConversation("webhook");
    host!.override(() => ({ lateMs: 1_000 }));
    const messageId = reply(conversationId, "late but received");
    await eventually(() => messageOf(conversationId, messageId).status === "failed", {
      what: "Chatwoot marking the reply failed",
    });
    await eventually(() => h.gateway.sent("suporte").length === 1, { what: "the reply on WhatsApp" });
    host!.override(null);
    await retry(conversationId, messageId);
    await h.sim.waitForWebhookDeliveries({ event: "message_updated", messageId }, { count: 3 });
    reply(conversationId, "barrier");
    await eventually(() => h.gateway.sent("suporte").length === 2);
    expect(sentTexts()).toEqual(["late but received", "barrier"]);
  });
});

describe.each(["realtime", "webhook"] as const)("a reply WhatsApp reported failed (%s)", (mode) => {
  it("is sent again once per retry of the agent", async () => {
    const conversationId = await withConversation(mode);
    const messageId = reply(conversationId, "your invoice");
    await eventually(() => h.gateway.sent("suporte").length === 1);
    await receipt(h.gateway.sent("suporte")[0]!.id, "error");
    await eventually(() => messageOf(conversationId, messageId).status === "failed", {
      what: "the reply failed",
    });
    expect(messageOf(conversationId, messageId).content_attributes).toMatchObject({
      external_error: "WhatsApp reported a delivery error",
    });

    if (mode === "webhook") h.sim.webhooks.duplicateNext(2);
    else h.sim.cable.duplicateNext(2);
    await retry(conversationId, messageId);
    await eventually(() => h.gateway.sent("suporte").length === 2, { what: "the reply sent again" });
    reply(conversationId, "barrier");
    await eventually(() => h.gateway.sent("suporte").length === 3);
    expect(sentTexts()).toEqual(["your invoice", "your invoice", "barrier"]);
    // The new send is the reply now: its receipts count again.
    await receipt(h.gateway.sent("suporte")[1]!.id, "delivered");
    await eventually(() => messageOf(conversationId, messageId).status === "delivered");

    // Failed again, retried again: sent a third time.
    await receipt(h.gateway.sent("suporte")[1]!.id, "error");
    await eventually(() => messageOf(conversationId, messageId).status === "failed");
    await retry(conversationId, messageId);
    await eventually(() => h.gateway.sent("suporte").length === 4, { what: "the reply sent a third time" });
    expect(sentTexts()).toEqual(["your invoice", "your invoice", "barrier", "your invoice"]);
  });

  it("keeps the reply failed for later receipts of its other parts, and sends only the refused part again", async () => {
    const conversationId = await withConversation(mode);
    const messageId = h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId,
      userId: h.agent.id,
      content: "see attached",
      attachments: [{ data: "PNG bytes", mimetype: "image/png", fileName: "shot.png" }],
    })["id"] as number;
    await eventually(() => h.gateway.sent("suporte").length === 2);
    const [text, image] = h.gateway.sent("suporte");
    await receipt(image!.id, "error");
    await eventually(() => messageOf(conversationId, messageId).status === "failed");
    // The text arrived: that does not hide the refused image from the agent.
    const ignored = h.bridge.counters().receipt_ignored ?? 0;
    await receipt(text!.id, "read");
    await eventually(() => (h.bridge.counters().receipt_ignored ?? 0) === ignored + 1);
    expect(messageOf(conversationId, messageId).status).toBe("failed");

    await retry(conversationId, messageId);
    await eventually(() => h.gateway.sent("suporte").length === 3, { what: "the image sent again" });
    expect(h.gateway.sent("suporte").map((sent) => sent.text ?? sent.type)).toEqual([
      "see attached",
      "image",
      "image",
    ]);
  });
});
