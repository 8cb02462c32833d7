// One person, one chat (docs/identity.md): the parts the example app's acceptance test does not show. Chatwoot's
// contact merge is `POST /api/v1/accounts/{id}/actions/contact_merge` (app/actions/contact_merge_action.rb): the
// mergee's conversations and contact inboxes move to the base contact, the mergee is destroyed.
import { isBridgeError, type WhatsAppEvent } from "@ryze/chatwoot-core";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

let sequence = 0;
/** An incoming text in a private chat, addressed as given. */
function text(
  content: string,
  chat: { jid: string } & Record<string, unknown>,
  sender: Record<string, unknown> = chat,
): WhatsAppEvent {
  const id = `3EB0IDE2E${String(++sequence).padStart(8, "0")}`;
  return {
    event: "message.exchange",
    data: {
      id,
      message: {
        id,
        direction: "incoming",
        chat: { ...chat, type: "private" },
        sender,
        content: { text: content },
      },
    },
  };
}

const contactsOf = (harness: RoutingHarness) =>
  harness.sim.contacts(harness.accountId) as Array<Record<string, unknown> & { id: number }>;
const openConversations = (harness: RoutingHarness) =>
  conversationsOf(harness).filter((conversation) => conversation.status === "open");

/** The agent answers in a conversation; resolves with the JID the reply went to. */
async function replyIn(harness: RoutingHarness, conversationId: number): Promise<string> {
  const content = `reply ${++sequence}`;
  harness.sim.postAgentMessage({
    accountId: harness.accountId,
    conversationId,
    userId: harness.agent.id,
    content,
  });
  const sent = await eventually(() =>
    harness.gateway.sent("suporte").find((entry) => (entry as { text?: string }).text === content),
  );
  return (sent as { to: string }).to;
}

describe("one person, one chat", () => {
  it("refuses a contact.identity whose addresses are not a LID and a phone JID, naming the field", async () => {
    h = await startRoutingHarness();
    const refused = await h
      .ingest({ event: "contact.identity", data: { lid: "5511999999999@s.whatsapp.net", jid: "100@lid" } })
      .catch((error: unknown) => error);
    expect(isBridgeError(refused) && refused.code).toBe("INVALID_EVENT");
    expect((refused as Error).message).toBe(
      'invalid event: data.lid: must be a LID ("<digits>@lid"); data.jid: must be a phone JID ("<digits>@s.whatsapp.net")',
    );
    const missing = await h
      .ingest({ event: "contact.identity", data: { lid: "100@lid" } })
      .catch((error: unknown) => error);
    expect((missing as Error).message).toBe("invalid event: data.jid: missing");
  });

  it("a person known by LID only: a contact without a phone number, and replies go to the LID", async () => {
    h = await startRoutingHarness();
    const lid = "230000000000001@lid";
    await h.ingest(text("only a LID", { jid: lid, name: "Lia" }));
    await eventually(() => totalMessages(h!) === 1);
    const [contact] = contactsOf(h);
    expect(contact).toMatchObject({ identifier: lid, phone_number: null, name: "Lia" });
    const [conversation] = conversationsOf(h);
    expect(await replyIn(h, conversation!.id)).toBe(lid);
  });

  it("a merge whose answer was lost is not repeated: the contact that was merged away counts as merged", async () => {
    h = await startRoutingHarness();
    const lid = "230000000000002@lid";
    const pn = "14155550202@s.whatsapp.net";
    await h.ingest(text("by LID", { jid: lid }));
    await h.ingest(text("by phone", { jid: pn }));
    await eventually(() => totalMessages(h!) === 2);
    expect(contactsOf(h)).toHaveLength(2);
    // Chatwoot merges, and the answer is lost on the way back: the retry finds the mergee gone (404).
    const lost = h.sim.faults.inject({
      method: "POST",
      path: /\/actions\/contact_merge$/,
      afterHandling: true,
      reset: true,
      times: 1,
    });
    await h.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => (lost.hits === 1 && openConversations(h!).length === 1) || null);
    await h.ingest(text("after the merge", { jid: lid }));
    await eventually(() => totalMessages(h!) === 3);
    const [contact] = contactsOf(h);
    expect(contactsOf(h)).toHaveLength(1);
    expect(contact).toMatchObject({ phone_number: "+14155550202" });
    const [open] = openConversations(h);
    expect(chatMessages(h, open!.id).map((message) => message.content)).toEqual([
      "by phone",
      "after the merge",
    ]);
  });

  it("the same link learned twice at once (a LID-only message queued before it, and the link) ends in one contact", async () => {
    h = await startRoutingHarness();
    const lid = "230000000000003@lid";
    const pn = "14155550303@s.whatsapp.net";
    await h.ingest(text("split by LID", { jid: lid }));
    await h.ingest(text("split by phone", { jid: pn }));
    await eventually(() => totalMessages(h!) === 2);
    // Queued as the LID's chat (the link is not known yet), then the link and a message carrying both forms: the
    // LID's chat and the phone's chat are worked on in parallel, each making the two chats one.
    await h.ingest(text("LID again", { jid: lid }));
    await h.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await h.ingest(text("both forms", { jid: pn, lid }, { jid: pn, lid }));
    await eventually(() => totalMessages(h!) === 4);
    await eventually(() => openConversations(h!).length === 1 || null);
    expect(contactsOf(h)).toHaveLength(1);
    const [open] = openConversations(h);
    expect(chatMessages(h, open!.id).map((message) => message.content)).toEqual(
      expect.arrayContaining(["split by phone", "both forms", "LID again"]),
    );
    expect(await replyIn(h, open!.id)).toBe(pn);
  });

  it("with identity.brazilNinthDigit off, the two forms of a Brazilian number stay two people", async () => {
    h = await startRoutingHarness({ bridge: { identity: { brazilNinthDigit: false } } });
    h.sim.createContact(h.accountId, { name: "Dona Maria", phone_number: "+5511988887777" });
    await h.ingest(text("sem o nono dígito", { jid: "551188887777@s.whatsapp.net" }));
    await eventually(() => totalMessages(h!) === 1);
    expect(
      contactsOf(h)
        .map((contact) => contact.phone_number)
        .sort(),
    ).toEqual(["+551188887777", "+5511988887777"]);
  });

  it("Brazil: a contact saved without the 9th digit is reused for the JID with it", async () => {
    h = await startRoutingHarness();
    const saved = h.sim.createContact(h.accountId, { name: "Seu João", phone_number: "+552187776666" });
    const jid = "5521987776666@s.whatsapp.net";
    await h.ingest(text("com o nono dígito", { jid }));
    await eventually(() => totalMessages(h!) === 1);
    expect(contactsOf(h).map((contact) => contact.id)).toEqual([saved["id"]]);
    const [conversation] = conversationsOf(h);
    expect(await replyIn(h, conversation!.id)).toBe(jid);
  });
});
