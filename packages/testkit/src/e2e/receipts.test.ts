import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

// docs/routing.md: a receipt (`message.status`) of a message that came from Chatwoot sets the Chatwoot message's
// status: `delivered`/`received` → delivered, `read`/`played` → read, `error` → failed.

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const PHONE = "5511933334444";
const JID = `${PHONE}@s.whatsapp.net`;
const receipt = (id: string, status: string) => ({
  event: "message.status",
  data: { id, chat: { jid: JID }, status },
});

/** A conversation with one agent reply sent to WhatsApp; returns the Chatwoot id and the WhatsApp id. */
async function sentReply(conversationId: number, content: string): Promise<{ id: number; waId: string }> {
  const before = h!.gateway.sent("suporte").length;
  const id = h!.sim.postAgentMessage({
    accountId: h!.accountId,
    conversationId,
    userId: h!.agent.id,
    content,
  })["id"] as number;
  await eventually(() => h!.gateway.sent("suporte").length === before + 1, { what: `"${content}" sent` });
  const waId = h!.gateway.sent("suporte")[before]!.id;
  // The reply's parts are recorded once WhatsApp accepted them; a receipt may only come after that.
  const integrationId = (await h!.store.integrations.get("suporte"))!.id;
  await eventually(async () => (await h!.store.mappings.getMessagesByWa(integrationId, waId)).length === 1);
  return { id, waId };
}

const messageIn = (conversationId: number, id: number) =>
  chatMessages(h!, conversationId).find((message) => message.id === id);

/** Waits until the Chatwoot message has `expected` status; on a timeout, says which status it had. */
const statusBecomes = (conversationId: number, id: number, expected: string) =>
  eventually(
    () => {
      const status = messageIn(conversationId, id)?.status;
      if (status !== expected) throw new Error(`the Chatwoot message's status is ${status}`);
      return true;
    },
    { what: `status ${expected}` },
  );

describe("WhatsApp receipts of agent replies (docs/routing.md)", () => {
  it("a `received` receipt marks the Chatwoot message delivered", async () => {
    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: PHONE, text: "hello" }));
    await eventually(() => totalMessages(h!) === 1);
    const conversationId = conversationsOf(h)[0]!.id;
    const reply = await sentReply(conversationId, "on its way");
    expect(messageIn(conversationId, reply.id)?.status).toBe("sent");
    await h.ingest(receipt(reply.waId, "received"));
    await statusBecomes(conversationId, reply.id, "delivered");
    expect(h.bridge.counters().receipt_ignored).toBeUndefined();
  });

  it("an `error` receipt marks the Chatwoot message failed, with the reason for the agent", async () => {
    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: PHONE, text: "hello" }));
    await eventually(() => totalMessages(h!) === 1);
    const conversationId = conversationsOf(h)[0]!.id;
    const reply = await sentReply(conversationId, "this one bounces");
    await h.ingest(receipt(reply.waId, "error"));
    await statusBecomes(conversationId, reply.id, "failed");
    expect(messageIn(conversationId, reply.id)?.content_attributes).toMatchObject({
      external_error: "WhatsApp reported a delivery error",
    });
    // A receipt never sends anything again, nor creates a message.
    expect(h.gateway.sent("suporte")).toHaveLength(1);
    expect(totalMessages(h)).toBe(2);
  });
});
