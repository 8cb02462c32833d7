// WhatsApp → Chatwoot edges of one person known by two addresses (docs/identity.md, docs/routing.md), found unchecked
// by mutation testing (docs/testing.md, "Mutation report"): a message queued by LID before its phone JID was known is
// moved to the phone JID's queue (`MoveToChat`, packages/core/src/routing/inbound.ts and service.ts); history of a
// person imported first by LID continues in the same history conversation once the phone JID is known; a LID-only
// message delivered while the link arrives leaves the person's conversation open, and one that reopened the
// conversation the merge resolved has it resolved again even when Chatwoot refused the first try; what a created
// message carries; and an older LID link delivered after a newer one (bugs these tests found, fixed).
//
// Chatwoot facts used: `POST …/actions/contact_merge` merges the mergee's conversations and contact inboxes into the
// base contact (app/actions/contact_merge_action.rb); `MessageBuilder` stores `content_attributes` as given
// (app/builders/messages/message_builder.rb); a private outgoing note never reopens a resolved conversation
// (`Message#reopen_conversation`, app/models/message.rb).
import { randomBytes } from "node:crypto";
import type { WhatsAppEvent } from "@ryze/chatwoot-core";
import { type ChatwootApi, createChatwootApi } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf } from "./inspect.js";

let h: RoutingHarness | undefined;
let api: ChatwootApi | undefined;
let releaseAll: Array<() => void> = [];
afterEach(async () => {
  for (const release of releaseAll) release();
  releaseAll = [];
  await h?.close();
  h = undefined;
  await api?.close();
  api = undefined;
});

const DAY = 86_400_000;

async function integrationId(): Promise<string> {
  return (await h!.store.integrations.get("suporte"))!.id;
}

/** The outbox holds nothing pending or claimed, and nothing went dead. */
async function drained(): Promise<void> {
  const id = await integrationId();
  await eventually(
    async () => {
      const counts = await h!.store.outbox.count(id);
      return counts.pending === 0 && counts.claimed === 0;
    },
    { what: "the outbox drained" },
  );
  expect(await h!.store.outbox.count(id)).toMatchObject({ dead: 0 });
}

const counter = (name: string) => h!.bridge.counters()[name] ?? 0;

const contactsOf = () => h!.sim.contacts(h!.accountId) as Array<Record<string, unknown> & { id: number }>;
const contents = (conversationId: number) =>
  chatMessages(h!, conversationId).map((message) => message.content);
const statusOf = (conversationId: number) =>
  conversationsOf(h!).find((conversation) => conversation.id === conversationId)?.status;

let sequence = 0;
/**
 * An incoming text in a private chat, addressed as given: by `chat.jid` (a LID or a phone JID), and by `sender` (the
 * chat's own address unless given: a LID chat whose sender is a phone JID carries both forms).
 */
function addressed(
  content: string,
  chat: { jid: string } & Record<string, unknown>,
  options: { sender?: Record<string, unknown>; at?: Date; history?: boolean } = {},
): WhatsAppEvent & { data: { id: string } } {
  const id = `3EB0MV${String(++sequence).padStart(6, "0")}${randomBytes(3).toString("hex").toUpperCase()}`;
  return {
    event: "message.exchange",
    data: {
      id,
      message: {
        id,
        direction: "incoming",
        ...(options.at ? { timestamp: options.at.toISOString() } : {}),
        ...(options.history ? { history: true } : {}),
        chat: { ...chat, type: "private" },
        sender: options.sender ?? chat,
        content: { text: content },
      },
    },
  };
}

/** The bridge's Chatwoot client, whose next message create in a given conversation can be held until released. */
function holdingApi() {
  const real = createChatwootApi();
  api = real;
  let held: { conversationId: number; gate: Promise<void>; arrived(): void } | null = null;
  const chatwootApi: ChatwootApi = {
    ...real,
    async createMessage(target, conversationId, input, options) {
      const entry = held;
      if (entry && entry.conversationId === conversationId) {
        held = null;
        entry.arrived();
        await entry.gate;
      }
      return real.createMessage(target, conversationId, input, options);
    },
  };
  function hold(conversationId: number) {
    let release!: () => void;
    let arrived!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    held = { conversationId, gate, arrived };
    releaseAll.push(release);
    return { reached, release };
  }
  return { chatwootApi, hold };
}

describe("a message queued by LID before the person's phone number was known", () => {
  it("lands once in the phone chat's conversation when the link arrives while it is failing: one contact, one conversation", async () => {
    h = await startRoutingHarness();
    const lid = "230000000000701@lid";
    const pn = "14155550701@s.whatsapp.net";
    await h.ingest(addressed("hello by phone", { jid: pn, name: "Paula" }));
    await eventually(() => conversationsOf(h!).length === 1 || null, {
      what: "the phone chat's conversation",
    });
    await drained();
    const [conversation] = conversationsOf(h);

    // The LID is unknown: its message queues by LID, and its first attempt, making the LID's contact, fails.
    const contactCreate = h.sim.faults.inject({
      method: "POST",
      path: /\/contacts$/,
      status: 503,
      body: "Unavailable",
    });
    const byLid = addressed("by LID", { jid: lid });
    await h.ingest(byLid);
    await eventually(() => contactCreate.hits >= 1 || null, { what: "the LID message's first attempt" });
    // Meanwhile WhatsApp tells who the LID is; the retry finds the link stored.
    await h.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => contents(conversation!.id).length === 2 || null, { what: "the LID message" });
    contactCreate.remove();
    await drained();

    expect(conversationsOf(h)).toEqual([expect.objectContaining({ id: conversation!.id, status: "open" })]);
    expect(contents(conversation!.id)).toEqual(["hello by phone", "by LID"]);
    // No contact was ever made for the LID: the person is the phone chat's contact.
    expect(contactsOf()).toEqual([expect.objectContaining({ phone_number: "+14155550701", identifier: pn })]);
    // It was delivered from the phone JID's queue (one person's work runs one item at a time, docs/routing.md).
    const id = await integrationId();
    expect(await h.store.outbox.find(id, `wa:${byLid.data.id}`)).toMatchObject({
      chatKey: `in:${lid}`,
      status: "done",
    });
    expect(await h.store.outbox.find(id, `wa:${byLid.data.id}:moved`)).toMatchObject({
      chatKey: `in:${pn}`,
      status: "done",
    });
    expect(counter("moved_to_phone_chat")).toBe(1);
    const [mapping] = await h.store.mappings.getMessagesByWa(id, byLid.data.id);
    expect(mapping).toMatchObject({ conversationId: conversation!.id, direction: "inbound" });
  });
});

describe("history of a person known by LID first, then by phone", () => {
  it("older history imported by LID continues in the same history conversation once the phone number is known", async () => {
    h = await startRoutingHarness({ flags: { importHistoryDays: 30 } });
    const lid = "230000000000702@lid";
    const pn = "14155550702@s.whatsapp.net";
    const now = Date.now();
    await h.ingest(
      addressed(
        "by LID, two days ago",
        { jid: lid, name: "Maria" },
        { at: new Date(now - 2 * DAY), history: true },
      ),
    );
    await eventually(() => conversationsOf(h!).length === 1 || null, { what: "the history conversation" });
    await drained();
    const [history] = conversationsOf(h);
    expect(history).toMatchObject({ status: "resolved" });

    // A history message carrying both forms: the person's LID and phone JID are one chat now.
    await h.ingest(
      addressed(
        "by phone, yesterday",
        { jid: lid, name: "Maria" },
        { sender: { jid: pn, name: "Maria" }, at: new Date(now - DAY), history: true },
      ),
    );
    await eventually(() => counter("history_imported") === 2 || null, { what: "the second note" });
    await drained();

    expect(conversationsOf(h)).toEqual([expect.objectContaining({ id: history!.id, status: "resolved" })]);
    const notes = chatMessages(h, history!.id);
    expect(notes).toHaveLength(2);
    expect(notes.every((note) => note.private)).toBe(true);
    expect(notes[0]!.content).toContain("by LID, two days ago");
    expect(notes[1]!.content).toContain("by phone, yesterday");
    expect(contactsOf()).toEqual([expect.objectContaining({ phone_number: "+14155550702" })]);
  });
});

describe("a LID-only message delivered while the link arrives", () => {
  it("leaves the person's conversation open when their phone chat has none open", async () => {
    const { chatwootApi, hold } = holdingApi();
    h = await startRoutingHarness({ bridge: { chatwootApi } });
    const lid = "230000000000703@lid";
    const pn = "14155550703@s.whatsapp.net";
    await h.ingest(addressed("by LID", { jid: lid }));
    await eventually(() => conversationsOf(h!).length === 1 || null, { what: "the LID chat's conversation" });
    await drained();
    const lidConversation = conversationsOf(h)[0]!.id;
    await h.ingest(addressed("by phone", { jid: pn }));
    await eventually(() => conversationsOf(h!).length === 2 || null, {
      what: "the phone chat's conversation",
    });
    await drained();
    const phoneConversation = conversationsOf(h).find(
      (conversation) => conversation.id !== lidConversation,
    )!.id;
    // The agent resolves the phone chat's conversation: the phone chat has no conversation any more.
    h.sim.setConversationStatus(h.accountId, phoneConversation, "resolved", { userId: h.agent.id });
    const id = await integrationId();
    await eventually(async () => (await h!.store.mappings.getChat(id, pn))?.conversationId === null, {
      what: "the resolved conversation forgotten",
    });

    // The link's merge of the two chats cannot finish yet (Chatwoot fails it), while the next LID-only message is on
    // its way to the LID chat's conversation when the link arrives.
    const merge = h.sim.faults.inject({
      method: "POST",
      path: /\/actions\/contact_merge$/,
      status: 503,
      body: "Unavailable",
    });
    const held = hold(lidConversation);
    const late = addressed("late, by LID", { jid: lid });
    await h.ingest(late);
    await held.reached;
    await h.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => merge.hits >= 1 || null, { what: "the merge attempted" });
    held.release();
    await eventually(async () => (await h!.store.outbox.find(id, `wa:${late.data.id}`))?.status === "done", {
      what: "the late message delivered",
    });
    expect(contents(lidConversation)).toEqual(["by LID", "late, by LID"]);
    expect(statusOf(lidConversation)).toBe("open");

    merge.remove();
    await drained();
    expect(counter("late_conversation_resolved")).toBe(0);
    expect(
      Object.fromEntries(conversationsOf(h).map((conversation) => [conversation.id, conversation.status])),
    ).toEqual({ [lidConversation]: "open", [phoneConversation]: "resolved" });
    expect(contactsOf()).toHaveLength(1);
  });
});

describe("a LID-only message that reopened the conversation the merge resolved", () => {
  // Found by mutation testing (it was a bug): the LID chat's conversation is resolved again after the message is
  // recorded; when Chatwoot refused that, the retry found the message recorded and stopped there, leaving two open
  // conversations for one person. A retry of a recorded message now resolves it again too (`afterLidOnly` in
  // packages/core/src/routing/inbound.ts). Chatwoot reopens a resolved conversation on an incoming message
  // (`Message#reopen_conversation`, app/models/message.rb).
  it("a LID conversation reopened by a late message is resolved even when Chatwoot refused the first try: one conversation stays open", async () => {
    const { chatwootApi, hold } = holdingApi();
    h = await startRoutingHarness({ bridge: { chatwootApi } });
    const lid = "230000000000708@lid";
    const pn = "14155550708@s.whatsapp.net";
    await h.ingest(addressed("by LID", { jid: lid }));
    await eventually(() => conversationsOf(h!).length === 1 || null, { what: "the LID chat's conversation" });
    await drained();
    const lidConversation = conversationsOf(h)[0]!.id;
    await h.ingest(addressed("by phone", { jid: pn }));
    await eventually(() => conversationsOf(h!).length === 2 || null, {
      what: "the phone chat's conversation",
    });
    await drained();
    const phoneConversation = conversationsOf(h).find(
      (conversation) => conversation.id !== lidConversation,
    )!.id;

    // The next LID-only message is on its way to the LID chat's conversation when the link arrives, and the merge
    // resolves that conversation.
    const held = hold(lidConversation);
    const late = addressed("late, by LID", { jid: lid });
    await h.ingest(late);
    await held.reached;
    await h.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => statusOf(lidConversation) === "resolved" || null, {
      what: "the merge resolved the LID chat's conversation",
    });
    // The message reopens it; Chatwoot refuses, once, to resolve it again.
    const resolveAgain = h.sim.faults.inject({
      method: "POST",
      path: /\/toggle_status$/,
      status: 503,
      body: "Unavailable",
      times: 1,
    });
    held.release();
    await eventually(() => resolveAgain.hits >= 1 || null, { what: "the refused resolve" });
    await drained();

    expect(resolveAgain.hits).toBe(1);
    expect(
      Object.fromEntries(conversationsOf(h).map((conversation) => [conversation.id, conversation.status])),
    ).toEqual({ [lidConversation]: "resolved", [phoneConversation]: "open" });
    expect(contents(lidConversation)).toEqual(["by LID", "late, by LID"]);
    expect(contents(phoneConversation)).toEqual(["by phone"]);
    expect(counter("late_conversation_resolved")).toBe(1);
    expect(contactsOf()).toEqual([expect.objectContaining({ phone_number: "+14155550708" })]);
  });
});

describe("what a created message carries", () => {
  it("a plain text is sent without content attributes; a quote of a message never routed is sent with its WhatsApp id only", async () => {
    h = await startRoutingHarness();
    const phone = "14155550704";
    await h.ingest(textEvent({ phone, text: "warm" }));
    await eventually(() => conversationsOf(h!).length === 1 || null);
    await drained();
    const [conversation] = conversationsOf(h);
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone, text: "plain" }));
    await h.ingest(textEvent({ phone, text: "about that", quoted: "3EB0NEVERROUTED0001" }));
    await eventually(() => contents(conversation!.id).length === 3 || null, { what: "both messages" });
    await drained();

    const creates = h.sim.requests.filter(
      (request) =>
        request.method === "POST" && request.path.endsWith(`/conversations/${conversation!.id}/messages`),
    );
    const bodies = creates.map((request) => request.body as Record<string, unknown>);
    expect(bodies.map((body) => body["content"])).toEqual(["plain", "about that"]);
    expect(Object.keys(bodies[0]!)).not.toContain("content_attributes");
    // Only the WhatsApp id of the quoted message: the bridge knows no Chatwoot id for it (no `in_reply_to`).
    expect(bodies[1]!["content_attributes"]).toStrictEqual({
      in_reply_to_external_id: "WAID:3EB0NEVERROUTED0001",
    });
    // Chatwoot finds no message with that source_id in the conversation: the quote shows unthreaded
    // (Chatwoot's `Messages::InReplyToMessageBuilder`, as packages/testkit/src/simulator/messages.ts models it).
    const quote = chatMessages(h, conversation!.id).at(-1)!;
    expect(quote.content_attributes).toMatchObject({ in_reply_to: null });
  });
});

describe("a conversation create that fails", () => {
  it("a server error that mentions source_id is retried as it is: the contact is not looked for again", async () => {
    h = await startRoutingHarness();
    const failed = h.sim.faults.inject({
      method: "POST",
      path: /\/conversations$/,
      times: 1,
      status: 500,
      body: { error: "source_id should be unique" },
    });
    await h.ingest(textEvent({ phone: "14155550705", text: "hello" }));
    await eventually(() => conversationsOf(h!).length === 1 || null, { what: "the conversation" });
    await drained();
    expect(failed.hits).toBe(1);
    expect(counter("contact_resolved_again")).toBe(0);
    expect(contents(conversationsOf(h)[0]!.id)).toEqual(["hello"]);
    expect(contactsOf()).toHaveLength(1);
  });
});

describe("a person who changed numbers (docs/identity.md: one link per LID, the newest kept)", () => {
  // Found by mutation testing (it was a bug): an identity work item stored its link again at delivery whenever the
  // stored link differed, though `ingest` had stored it already; an older link delivered after a newer one (its queue
  // was busy) replaced the newer one. A pair older than the stored link of its LID is now the old number's alone
  // (`outdatedPair` in packages/core/src/routing/inbound.ts, docs/identity.md).
  it("an older link delivered after the newer one does not bring the old number back", async () => {
    h = await startRoutingHarness();
    const lid = "230000000000706@lid";
    const oldPn = "14155550706@s.whatsapp.net";
    const newPn = "14155550707@s.whatsapp.net";
    const id = await integrationId();
    // The old number's queue is busy: its message fails while Chatwoot refuses to make its contact.
    const contactCreate = h.sim.faults.inject({
      method: "POST",
      path: /\/contacts$/,
      status: 503,
      body: "Unavailable",
    });
    await h.ingest(addressed("from the old number", { jid: oldPn }));
    await eventually(() => contactCreate.hits >= 1 || null, { what: "the old number's message failing" });
    // WhatsApp tells the LID's old number, then (the person changed numbers) its new one.
    await h.ingest({ event: "contact.identity", data: { lid, jid: oldPn } });
    await h.ingest({ event: "contact.identity", data: { lid, jid: newPn } });
    await eventually(async () => (await h!.store.outbox.find(id, `id:${lid}:${newPn}`))?.status === "done", {
      what: "the new link delivered",
    });
    expect(await h.store.mappings.resolveIdentity(id, lid)).toMatchObject({ jid: newPn });
    contactCreate.remove();
    await drained();

    // The old link's work was delivered last. The person writes by LID: the message belongs to the new number (a
    // contact with the new phone number), not to the old number's conversation, where replies would go to a number
    // the person gave up.
    const late = addressed("after the change, by LID", { jid: lid });
    await h.ingest(late);
    await eventually(async () => (await h!.store.outbox.find(id, `wa:${late.data.id}`))?.status === "done", {
      what: "the LID message delivered",
    });
    await drained();
    const holding = conversationsOf(h).find((conversation) =>
      contents(conversation.id).includes("after the change, by LID"),
    ) as unknown as { meta: { sender: { phone_number: string | null } } } | undefined;
    expect(holding?.meta.sender.phone_number).toBe("+14155550707");
    expect(await h.store.mappings.resolveIdentity(id, lid)).toMatchObject({ jid: newPn });
  });
});
