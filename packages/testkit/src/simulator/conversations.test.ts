import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "./index.js";
import { type AnyJson, call, openConversation, type Seed, seed } from "./test-support.js";

let sim: ChatwootSimulator;
let s: Seed;

beforeEach(async () => {
  sim = await startChatwootSimulator();
  s = seed(sim);
});

afterEach(async () => {
  await sim.close();
});

const post = (path: string, body: unknown, token = s.admin.accessToken) =>
  call(sim, "POST", s.path(path), { token, body });
const get = (path: string, token = s.admin.accessToken) => call(sim, "GET", s.path(path), { token });

function contact(sourceId: string) {
  return sim.createContact(s.accountId, { name: "Alice", inbox_id: s.inboxId, source_id: sourceId })[
    "id"
  ] as number;
}

describe("POST /api/v1/accounts/{id}/conversations", () => {
  it("creates a conversation with a per-account display id and Chatwoot's conversation JSON", async () => {
    const contactId = contact("jid-1");
    const reply = await post("/conversations", {
      inbox_id: s.inboxId,
      contact_id: contactId,
      source_id: "jid-1",
    });
    expect(reply.status).toBe(200);
    const body = reply.json as AnyJson;
    expect(body).toMatchObject({
      id: 1,
      account_id: s.accountId,
      inbox_id: s.inboxId,
      status: "open",
      messages: [],
      last_non_activity_message: null,
      can_reply: true,
      muted: false,
      labels: [],
      meta: { channel: "Channel::Api", hmac_verified: false, sender: { id: contactId, name: "Alice" } },
    });
    expect(Object.keys(body.meta)).toEqual(["sender", "channel", "hmac_verified"]);
    expect(body.uuid).toMatch(/^[0-9a-f-]{36}$/);
    // Display ids count per account.
    const other = sim.createUser({
      name: "O",
      accounts: [{ accountId: s.otherAccountId, role: "administrator" }],
    });
    const otherInbox = sim.createInbox(s.otherAccountId, { name: "Other", channel: { type: "api" } })["id"];
    const otherContact = sim.createContact(s.otherAccountId, { name: "B" })["id"];
    const elsewhere = await call(sim, "POST", `/api/v1/accounts/${s.otherAccountId}/conversations`, {
      token: other.accessToken,
      body: { inbox_id: otherInbox, contact_id: otherContact, source_id: "x" },
    });
    expect((elsewhere.json as AnyJson).id).toBe(1);
    const second = await post("/conversations", {
      inbox_id: s.inboxId,
      contact_id: contactId,
      source_id: "jid-1",
    });
    expect((second.json as AnyJson).id).toBe(2);
  });

  it("takes status and an initial message (outgoing by default, as the token's user)", async () => {
    const contactId = contact("jid-1");
    const reply = await post("/conversations", {
      inbox_id: s.inboxId,
      contact_id: contactId,
      source_id: "jid-1",
      status: "pending",
      message: { content: "Hello from the bridge" },
    });
    const body = reply.json as AnyJson;
    expect(body.status).toBe("pending");
    expect(body.messages).toMatchObject([
      { content: "Hello from the bridge", message_type: 1, sender: { id: s.admin.id, type: "user" } },
    ]);
    expect(
      await post("/conversations", {
        inbox_id: s.inboxId,
        contact_id: contactId,
        source_id: "jid-1",
        status: "bogus",
      }),
    ).toMatchObject({
      status: 500,
    });
  });

  /**
   * The first message goes through `Messages::MessageBuilder` with `params[:message]` (app/controllers/api/v1/accounts/
   * conversations_controller.rb#create, app/builders/messages/message_builder.rb): messages#create's parameter set,
   * in the same transaction as the conversation, since v1.15.0.
   */
  it("takes the first message's type, source_id, content_attributes and echo_id, as messages#create does", async () => {
    const contactId = contact("jid-1");
    const reply = await post("/conversations", {
      inbox_id: s.inboxId,
      contact_id: contactId,
      source_id: "jid-1",
      message: {
        content: "hello {{contact.name}}",
        message_type: "incoming",
        source_id: "WAID:1",
        content_attributes: { in_reply_to_external_id: "WAID:0", wa: { kind: "text" } },
        echo_id: "tmp-1",
      },
    });
    expect(reply.status).toBe(200);
    const body = reply.json as AnyJson;
    // Incoming: sent by the contact, no Liquid; the quoted message is not in this new conversation.
    expect(body.messages).toMatchObject([
      {
        content: "hello {{contact.name}}",
        message_type: 0,
        source_id: "WAID:1",
        sender: { id: contactId, type: "contact" },
        content_attributes: { in_reply_to_external_id: null, in_reply_to: null, wa: { kind: "text" } },
      },
    ]);
    expect(sim.messages(s.accountId, body.id)).toMatchObject([
      { id: body.messages[0].id, source_id: "WAID:1" },
    ]);
  });

  it("takes the first message's attachments from a multipart body (message[attachments][])", async () => {
    const contactId = contact("jid-1");
    const form = new FormData();
    form.append("inbox_id", String(s.inboxId));
    form.append("contact_id", String(contactId));
    form.append("source_id", "jid-1");
    form.append("status", "pending");
    form.append("message[content]", "a photo");
    form.append("message[message_type]", "incoming");
    form.append("message[source_id]", "WAID:2");
    form.append("message[content_attributes]", JSON.stringify({ wa: { kind: "image" } }));
    form.append("message[attachments][]", new Blob([Buffer.from("png")], { type: "image/png" }), "p.png");
    const reply = await call(sim, "POST", s.path("/conversations"), { token: s.admin.accessToken, form });
    expect(reply.status).toBe(200);
    const body = reply.json as AnyJson;
    expect(body.status).toBe("pending");
    expect(body.messages).toMatchObject([
      {
        content: "a photo",
        source_id: "WAID:2",
        content_attributes: { wa: { kind: "image" } },
        attachments: [{ file_type: "image" }],
      },
    ]);
  });

  it("rolls the conversation back when its first message fails: RecordInvalid 422, anything else 500", async () => {
    const contactId = contact("jid-1");
    const base = { inbox_id: s.inboxId, contact_id: contactId, source_id: "jid-1" };
    // ArgumentError (invalid enum) and TypeError (`"text"[:private]`) are not rescued by conversations#create.
    expect(
      await post("/conversations", { ...base, message: { content: "x", message_type: "bogus" } }),
    ).toMatchObject({
      status: 500,
      json: { status: 500, error: "Internal Server Error" },
    });
    expect((await post("/conversations", { ...base, message: "just text" })).status).toBe(500);
    expect(
      await post("/conversations", { ...base, message: { content: "x".repeat(150_001) } }),
    ).toMatchObject({
      status: 422,
      json: { message: "Content is too long (maximum is 150000 characters)", attributes: ["content"] },
    });
    expect(sim.conversations(s.accountId)).toEqual([]);
    // The contact inbox comes from a before_action, outside the transaction: a new one stays.
    expect((await post("/conversations", { ...base, source_id: "jid-2", message: "x" })).status).toBe(500);
    expect(sim.contactInboxes(s.accountId).map((ci) => ci["source_id"])).toEqual(["jid-1", "jid-2"]);
    // A blank message is no message.
    expect((await post("/conversations", { ...base, message: {} })).json).toMatchObject({ messages: [] });
  });

  it("with lock_to_single_conversation the first message meets the flood guard of the existing conversation", async () => {
    sim.setMessageFloodLimit(1);
    const locked = sim.createInbox(s.accountId, {
      name: "Locked",
      lock_to_single_conversation: true,
      channel: { type: "api" },
    })["id"] as number;
    const contactId = sim.createContact(s.accountId, { name: "Alice" })["id"];
    const body = { inbox_id: locked, contact_id: contactId, source_id: "jid-9" };
    const first = await post("/conversations", {
      ...body,
      message: { content: "one", message_type: "incoming" },
    });
    expect(first.status).toBe(200);
    // RecordInvalid, rescued as {message, attributes} (not messages#create's {error}).
    expect(
      await post("/conversations", { ...body, message: { content: "two", message_type: "incoming" } }),
    ).toMatchObject({ status: 422, json: { message: "Too many messages", attributes: ["base"] } });
    expect(sim.messages(s.accountId, (first.json as AnyJson).id).map((m) => m["content"])).toEqual(["one"]);
  });

  it("with lock_to_single_conversation returns the contact inbox's last conversation, even resolved", async () => {
    const locked = sim.createInbox(s.accountId, {
      name: "Locked",
      lock_to_single_conversation: true,
      channel: { type: "api" },
    })["id"] as number;
    const contactId = sim.createContact(s.accountId, { name: "Alice" })["id"];
    const body = { inbox_id: locked, contact_id: contactId, source_id: "jid-9" };
    const first = (await post("/conversations", body)).json as AnyJson;
    sim.setConversationStatus(s.accountId, first.id, "resolved", { userId: s.admin.id });
    const again = (await post("/conversations", body)).json as AnyJson;
    expect(again.id).toBe(first.id);
    expect(again.status).toBe("resolved");
    expect(sim.conversations(s.accountId)).toHaveLength(1);
    // Without the lock every create is a new conversation.
    const unlockedBody = { inbox_id: s.inboxId, contact_id: contactId, source_id: "jid-9" };
    await post("/conversations", unlockedBody);
    await post("/conversations", unlockedBody);
    expect(sim.conversations(s.accountId)).toHaveLength(3);
  });

  it("answers 422 source_id should be unique when the pair belongs to another contact", async () => {
    contact("taken");
    const bob = sim.createContact(s.accountId, { name: "Bob" })["id"];
    expect(
      await post("/conversations", { inbox_id: s.inboxId, contact_id: bob, source_id: "taken" }),
    ).toMatchObject({
      status: 422,
      json: { error: "source_id should be unique" },
    });
  });

  it("falls back to a lookup by source_id alone (404 when unknown) and checks inbox access", async () => {
    contact("jid-1");
    expect((await post("/conversations", { source_id: "jid-1" })).status).toBe(200);
    expect(await post("/conversations", { source_id: "unknown" })).toMatchObject({
      status: 404,
      json: { error: "Resource could not be found" },
    });
    expect(await post("/conversations", { source_id: "jid-1" }, s.outsider.accessToken)).toMatchObject({
      status: 401,
      json: { error: "You are not authorized to do this action" },
    });
  });
});

describe("GET /api/v1/accounts/{id}/conversations", () => {
  it("filters by status (default open; all), inbox_id, source_id and assignee_type, with counts", async () => {
    const a = await openConversation(sim, s, "jid-a");
    const b = await openConversation(sim, s, "jid-b");
    sim.setConversationStatus(s.accountId, b.conversationId, "resolved");
    const open = (await get("/conversations")).json as AnyJson;
    expect(open.data.payload.map((c: AnyJson) => c.id)).toEqual([a.conversationId]);
    expect(open.data.meta).toEqual({ mine_count: 0, assigned_count: 0, unassigned_count: 1, all_count: 1 });
    const all = (await get(`/conversations?status=all&inbox_id=${s.inboxId}`)).json as AnyJson;
    expect(all.data.payload.map((c: AnyJson) => c.id).sort()).toEqual([a.conversationId, b.conversationId]);
    const bySource = (await get("/conversations?status=all&source_id=jid-b")).json as AnyJson;
    expect(bySource.data.payload.map((c: AnyJson) => c.id)).toEqual([b.conversationId]);
    // An agent reopening a conversation gets it assigned (toggle_status side effect).
    sim.setConversationStatus(s.accountId, b.conversationId, "open", { userId: s.agent.id });
    const mine = (await get("/conversations?assignee_type=me", s.agent.accessToken)).json as AnyJson;
    expect(mine.data.payload.map((c: AnyJson) => c.id)).toEqual([b.conversationId]);
    expect(mine.data.meta).toEqual({ mine_count: 1, assigned_count: 1, unassigned_count: 1, all_count: 2 });
  });

  it("pages by 25, sorted by last activity; updated_within returns everything in the window", async () => {
    for (let i = 0; i < 27; i++) await openConversation(sim, s, `jid-${i}`);
    const first = (await get("/conversations")).json as AnyJson;
    expect(first.data.payload).toHaveLength(25);
    expect(first.data.meta.all_count).toBe(27);
    expect(((await get("/conversations?page=2")).json as AnyJson).data.payload).toHaveLength(2);
    expect(((await get("/conversations?updated_within=3600")).json as AnyJson).data.payload).toHaveLength(27);
  });

  it("forgets an inbox's contact inboxes and conversations when the inbox is deleted", async () => {
    await openConversation(sim, s, "jid-a");
    expect(
      (await call(sim, "DELETE", s.path(`/inboxes/${s.inboxId}`), { token: s.admin.accessToken })).status,
    ).toBe(200);
    expect(sim.conversations(s.accountId)).toEqual([]);
    expect(sim.contactInboxes(s.accountId)).toEqual([]);
    expect(sim.contacts(s.accountId)).toHaveLength(1);
  });

  it("shows agents only the inboxes they are members of", async () => {
    await openConversation(sim, s, "jid-a");
    expect(((await get("/conversations", s.agent.accessToken)).json as AnyJson).data.payload).toHaveLength(1);
    expect(((await get("/conversations", s.outsider.accessToken)).json as AnyJson).data.payload).toHaveLength(
      0,
    );
  });
});

describe("GET /conversations/{display_id} and toggle_status", () => {
  it("GET answers the conversation; 401 for an agent outside the inbox; 404 for unknown ids", async () => {
    const { conversationId } = await openConversation(sim, s);
    expect(((await get(`/conversations/${conversationId}`, s.agent.accessToken)).json as AnyJson).id).toBe(
      conversationId,
    );
    expect(await get(`/conversations/${conversationId}`, s.outsider.accessToken)).toMatchObject({
      status: 401,
      json: { error: "You are not authorized to do this action" },
    });
    expect(await get("/conversations/999")).toMatchObject({
      status: 404,
      json: { error: "Resource could not be found" },
    });
  });

  it("sets a status, toggles open ↔ resolved without one, and self-assigns a plain agent on open", async () => {
    const { conversationId } = await openConversation(sim, s);
    const path = `/conversations/${conversationId}/toggle_status`;
    expect((await post(path, { status: "pending" })).json).toEqual({
      meta: {},
      payload: {
        success: true,
        conversation_id: conversationId,
        current_status: "pending",
        snoozed_until: null,
      },
    });
    expect(((await post(path, {})).json as AnyJson).payload.current_status).toBe("open");
    expect(((await post(path, {})).json as AnyJson).payload.current_status).toBe("resolved");
    const snoozed = (await post(path, { status: "snoozed", snoozed_until: 1_900_000_000 })).json as AnyJson;
    expect(snoozed.payload).toMatchObject({
      current_status: "snoozed",
      snoozed_until: "2030-03-17T17:46:40.000Z",
    });
    expect(((await post(path, {})).json as AnyJson).payload).toMatchObject({
      current_status: "open",
      snoozed_until: null,
    });
    expect(((await get(`/conversations/${conversationId}`)).json as AnyJson).meta).not.toHaveProperty(
      "assignee",
    );
    await post(path, { status: "resolved" });
    await post(path, { status: "open" }, s.agent.accessToken);
    const assigned = (await get(`/conversations/${conversationId}`)).json as AnyJson;
    expect(assigned.meta).toMatchObject({
      assignee: { id: s.agent.id, role: "agent" },
      assignee_type: "User",
    });
    expect(await post(path, { status: "closed" })).toMatchObject({ status: 500 });
  });

  it("writes activity messages for status changes", async () => {
    const { conversationId } = await openConversation(sim, s);
    await post(`/conversations/${conversationId}/toggle_status`, { status: "resolved" });
    const messages = sim.messages(s.accountId, conversationId);
    expect(messages.map((m) => [m["message_type"], m["content"]])).toEqual([
      [2, "Conversation was marked resolved by Jane Doe"],
    ]);
  });

  it("an incoming message reopens a resolved conversation", async () => {
    const { conversationId } = await openConversation(sim, s);
    sim.setConversationStatus(s.accountId, conversationId, "resolved", { userId: s.admin.id });
    await post(`/conversations/${conversationId}/messages`, {
      content: "back again",
      message_type: "incoming",
    });
    expect(((await get(`/conversations/${conversationId}`)).json as AnyJson).status).toBe("open");
    expect(sim.messages(s.accountId, conversationId).map((m) => m["content"])).toEqual([
      "Conversation was marked resolved by Jane Doe",
      "back again",
      "System reopened the conversation due to a new incoming message.",
    ]);
    // Outgoing messages do not reopen.
    sim.setConversationStatus(s.accountId, conversationId, "resolved");
    await post(`/conversations/${conversationId}/messages`, { content: "bye" });
    expect(((await get(`/conversations/${conversationId}`)).json as AnyJson).status).toBe("resolved");
  });
});
