import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const PHONE = "5511911110000";
const JID = `${PHONE}@s.whatsapp.net`;

function annotated(kind: "edit" | "revoke" | "reaction", targetId: string, text = "") {
  const event = textEvent({ phone: PHONE, text });
  const message = event.data.message as Record<string, unknown>;
  message[kind] = kind === "reaction" ? { targetId, emoji: text } : { targetId };
  return event;
}

async function start() {
  h = await startRoutingHarness();
  const first = textEvent({ phone: PHONE, text: "original text", id: "3EB0ORIGINAL00001" });
  await h.ingest(first);
  await eventually(() => totalMessages(h!) === 1);
  const conversationId = conversationsOf(h)[0]!.id;
  return { conversationId, original: chatMessages(h, conversationId)[0]! };
}

describe("threads: quotes, edits, revokes, reactions and receipts", () => {
  it("a WhatsApp quote points at the quoted Chatwoot message", async () => {
    const { conversationId, original } = await start();
    await h!.ingest(textEvent({ phone: PHONE, text: "about that", quoted: "3EB0ORIGINAL00001" }));
    await eventually(() => totalMessages(h!) === 2);
    const reply = chatMessages(h!, conversationId)[1]!;
    expect(reply.content_attributes).toMatchObject({
      in_reply_to: original.id,
      in_reply_to_external_id: "WAID:3EB0ORIGINAL00001",
    });
  });

  it("an agent's quoted reply goes to WhatsApp as a quoted reply", async () => {
    const { conversationId, original } = await start();
    h!.sim.postAgentMessage({
      accountId: h!.accountId,
      conversationId,
      userId: h!.agent.id,
      content: "yes?",
      inReplyTo: original.id,
    });
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    expect(h!.gateway.sent("suporte")[0]).toMatchObject({
      to: JID,
      text: "yes?",
      replyTo: "3EB0ORIGINAL00001",
    });
  });

  it("edits, revokes and reactions are threaded to the original and never open a conversation", async () => {
    const { conversationId, original } = await start();
    await h!.ingest(annotated("edit", "3EB0ORIGINAL00001", "corrected text"));
    await h!.ingest(annotated("reaction", "3EB0ORIGINAL00001", "👍"));
    await h!.ingest(annotated("revoke", "3EB0ORIGINAL00001"));
    await eventually(() => totalMessages(h!) === 4);
    const [, edit, reaction, revoke] = chatMessages(h!, conversationId);
    expect(edit).toMatchObject({
      content: "✏️ corrected text",
      content_attributes: { in_reply_to: original.id },
    });
    expect(reaction).toMatchObject({ content: "👍", content_attributes: { in_reply_to: original.id } });
    expect(revoke).toMatchObject({
      content: "🚫 This message was deleted on WhatsApp",
      content_attributes: { in_reply_to: original.id },
    });

    // For a chat we do not know, nothing is created.
    const stray = textEvent({ phone: "5511900000000", text: "👍" });
    (stray.data.message as Record<string, unknown>).reaction = { targetId: "3EB0UNKNOWN", emoji: "👍" };
    await h!.ingest(stray);
    await eventually(() => h!.bridge.counters().annotation_without_conversation === 1);
    expect(conversationsOf(h!)).toHaveLength(1);
  });

  it("a message deleted in Chatwoot is revoked on WhatsApp", async () => {
    const { conversationId } = await start();
    const reply = h!.sim.postAgentMessage({
      accountId: h!.accountId,
      conversationId,
      userId: h!.agent.id,
      content: "oops",
    }) as {
      id: number;
    };
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    const [sent] = h!.gateway.sent("suporte");
    h!.sim.deleteMessage({
      accountId: h!.accountId,
      conversationId,
      messageId: reply.id,
      userId: h!.agent.id,
    });
    await eventually(() => h!.gateway.sent("suporte").length === 2);
    expect(h!.gateway.sent("suporte")[1]).toMatchObject({ type: "revoke", targetId: sent!.id, to: JID });
  });

  it("a message deleted in Chatwoot is left alone on WhatsApp when the gateway cannot revoke", async () => {
    const { conversationId } = await start();
    (h!.gateway as { supportsRevoke?: boolean }).supportsRevoke = false;
    const reply = h!.sim.postAgentMessage({
      accountId: h!.accountId,
      conversationId,
      userId: h!.agent.id,
      content: "oops",
    }) as { id: number };
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    h!.sim.deleteMessage({
      accountId: h!.accountId,
      conversationId,
      messageId: reply.id,
      userId: h!.agent.id,
    });
    // A later reply in the same conversation (queued in order behind anything the deletion queued) is the barrier.
    h!.sim.postAgentMessage({
      accountId: h!.accountId,
      conversationId,
      userId: h!.agent.id,
      content: "barrier",
    });
    await eventually(() => h!.gateway.sent("suporte").length === 2);
    expect(h!.gateway.sent("suporte").map((sent) => [sent.type, sent.text])).toEqual([
      ["text", "oops"],
      ["text", "barrier"],
    ]);
  });

  it("receipts update the status of our messages in Chatwoot, and unknown ones are counted", async () => {
    const { conversationId } = await start();
    const reply = h!.sim.postAgentMessage({
      accountId: h!.accountId,
      conversationId,
      userId: h!.agent.id,
      content: "hi",
    }) as {
      id: number;
    };
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    const waId = h!.gateway.sent("suporte")[0]!.id;
    const receipt = (status: string, id = waId) => ({
      event: "message.status",
      data: { id, chat: { jid: JID }, status },
    });
    await h!.ingest(receipt("delivered"));
    await eventually(
      () => chatMessages(h!, conversationId).find((m) => m.id === reply.id)?.status === "delivered",
    );
    await h!.ingest(receipt("played"));
    await eventually(
      () => chatMessages(h!, conversationId).find((m) => m.id === reply.id)?.status === "read",
    );
    await h!.ingest(receipt("read", "3EB0NOTOURS"));
    await eventually(() => h!.bridge.counters().receipt_ignored === 1);
    // Receipts never create messages.
    expect(totalMessages(h!)).toBe(2);
  });
});
