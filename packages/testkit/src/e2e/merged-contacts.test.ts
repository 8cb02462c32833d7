import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import {
  chatMessages,
  conversationsOf,
  countContactInboxes,
  countContacts,
  totalMessages,
} from "./inspect.js";

// Agents merge and delete contacts in Chatwoot; the chat mapping then names a contact (or a conversation) that is
// gone. The next WhatsApp message must still land, without a duplicate contact (docs/routing.md, "Contacts merged or
// deleted in Chatwoot").
// - Merge: `POST /api/v1/accounts/{id}/actions/contact_merge` moves the mergee's conversations and contact inboxes to
//   the base contact and destroys the mergee (app/actions/contact_merge_action.rb).
// - Delete: `DELETE /api/v1/accounts/{id}/contacts/{id}` destroys the contact and, `dependent: :destroy_async`, its
//   conversations and contact inboxes (app/models/contact.rb, app/controllers/api/v1/accounts/contacts_controller.rb).

const PHONE = "5511955550000";
const JID = `${PHONE}@s.whatsapp.net`;

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** What an agent does in the dashboard (it calls the same API, as an administrator). */
async function asAgent(method: string, path: string, body?: unknown) {
  const res = await fetch(`${h!.sim.url}/api/v1/accounts/${h!.accountId}${path}`, {
    method,
    headers: {
      api_access_token: h!.agent.accessToken,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(res.status, `${method} ${path}`).toBe(200);
}

async function integrationId(): Promise<string> {
  return (await h!.store.integrations.get("suporte"))!.id;
}

/** Our contact, with a conversation holding the customer's first message. */
async function firstMessage(): Promise<{ contactId: number; conversationId: number }> {
  await h!.ingest(textEvent({ phone: PHONE, text: "first" }));
  await eventually(() => totalMessages(h!) === 1);
  // The message is in Chatwoot a moment before the chat mapping points at its conversation.
  await settled();
  const [contact] = h!.sim.contacts(h!.accountId);
  return { contactId: contact!["id"] as number, conversationId: conversationsOf(h!)[0]!.id };
}

/** The same person, known from elsewhere (e.g. an e-mail inbox), without our contact inbox. */
function otherContact(): number {
  return h!.sim.createContact(h!.accountId, { name: "Maria Souza", email: "maria@example.test" })[
    "id"
  ] as number;
}

async function settled(): Promise<void> {
  const id = await integrationId();
  await eventually(async () => {
    const counts = await h!.store.outbox.count(id);
    return counts.pending === 0 && counts.claimed === 0;
  });
  expect(await h!.store.outbox.count(id)).toMatchObject({ dead: 0 });
}

describe("contacts merged or deleted by an agent", () => {
  it("ours merged into another contact: the next message lands in the base contact's (moved) conversation", async () => {
    h = await startRoutingHarness();
    const ours = await firstMessage();
    const base = otherContact();
    await asAgent("POST", "/actions/contact_merge", {
      base_contact_id: base,
      mergee_contact_id: ours.contactId,
    });
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: PHONE, text: "after the merge" }));
    await eventually(() => totalMessages(h!) === 2);
    await settled();
    expect(h.sim.contacts(h.accountId).map((contact) => contact["id"])).toEqual([base]);
    const [conversation] = h.sim.conversations(h.accountId) as Array<{
      id: number;
      meta: { sender: { id: number } };
    }>;
    expect(conversation).toMatchObject({ id: ours.conversationId, meta: { sender: { id: base } } });
    expect(chatMessages(h, ours.conversationId).map((message) => message.content)).toEqual([
      "first",
      "after the merge",
    ]);
    expect(h.sim.countRequests({ method: "POST" })).toBe(1);
  });

  it("ours merged, then its conversation resolved: the next message opens one conversation for the base contact", async () => {
    h = await startRoutingHarness({ flags: { reopenResolved: false } });
    const ours = await firstMessage();
    const base = otherContact();
    await asAgent("POST", "/actions/contact_merge", {
      base_contact_id: base,
      mergee_contact_id: ours.contactId,
    });
    h.sim.setConversationStatus(h.accountId, ours.conversationId, "resolved", { userId: h.agent.id });
    const id = await integrationId();
    await eventually(async () => (await h!.store.mappings.getChat(id, JID))?.conversationId === null, {
      what: "the resolved conversation forgotten",
    });
    await h.ingest(textEvent({ phone: PHONE, text: "a new question" }));
    await eventually(() => totalMessages(h!) === 2, { what: "the message after the merge" });
    await settled();
    expect(countContacts(h)).toBe(1);
    expect(countContactInboxes(h)).toBe(1);
    const conversations = h.sim.conversations(h.accountId) as Array<{
      id: number;
      status: string;
      meta: { sender: { id: number } };
    }>;
    expect(conversations.map((c) => [c.status, c.meta.sender.id])).toEqual([
      ["resolved", base],
      ["open", base],
    ]);
    expect(chatMessages(h, conversations[1]!.id).map((message) => message.content)).toEqual([
      "a new question",
    ]);
    // The chat follows the new conversation: the next message costs one request.
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: PHONE, text: "thanks" }));
    await eventually(() => totalMessages(h!) === 3);
    expect(chatMessages(h, conversations[1]!.id).map((message) => message.content)).toEqual([
      "a new question",
      "thanks",
    ]);
  });

  it("ours deleted: the next message creates one contact and one conversation, exactly once", async () => {
    h = await startRoutingHarness();
    const ours = await firstMessage();
    await asAgent("DELETE", `/contacts/${ours.contactId}`);
    expect(countContacts(h)).toBe(0);
    expect(conversationsOf(h)).toEqual([]);
    await h.ingest(textEvent({ phone: PHONE, text: "hello again", id: "3EB0AFTERDELETE1" }));
    await eventually(() => totalMessages(h!) === 1, { what: "the message after the delete" });
    await h.ingest(textEvent({ phone: PHONE, text: "and again" }));
    await eventually(() => totalMessages(h!) === 2);
    await settled();
    const contacts = h.sim.contacts(h.accountId);
    expect(contacts).toHaveLength(1);
    expect(contacts[0]).toMatchObject({ identifier: JID, contact_inboxes: [{ source_id: JID }] });
    expect(contacts[0]!["id"]).not.toBe(ours.contactId);
    const conversations = conversationsOf(h);
    expect(conversations).toHaveLength(1);
    expect(
      chatMessages(h, conversations[0]!.id).map((message) => [message.content, message.source_id]),
    ).toEqual([
      ["hello again", "WAID:3EB0AFTERDELETE1"],
      ["and again", expect.stringMatching(/^WAID:/)],
    ]);
  });

  it("ours deleted while Chatwoot answers slowly: a lost answer is not created twice", async () => {
    h = await startRoutingHarness();
    const ours = await firstMessage();
    await asAgent("DELETE", `/contacts/${ours.contactId}`);
    // The new contact and its conversation are created, but both answers are lost once.
    h.sim.faults.inject({ method: "POST", path: /\/contacts$/, afterHandling: true, reset: true, times: 1 });
    h.sim.faults.inject({
      method: "POST",
      path: /\/conversations$/,
      afterHandling: true,
      reset: true,
      times: 1,
    });
    await h.ingest(textEvent({ phone: PHONE, text: "hello again", id: "3EB0AFTERDELETE2" }));
    await eventually(() => totalMessages(h!) === 1, { what: "the message after the delete" });
    await settled();
    expect(countContacts(h)).toBe(1);
    expect(conversationsOf(h)).toHaveLength(1);
    expect(chatMessages(h, conversationsOf(h)[0]!.id).map((message) => message.source_id)).toEqual([
      "WAID:3EB0AFTERDELETE2",
    ]);
  });
});
