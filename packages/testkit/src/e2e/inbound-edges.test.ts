// WhatsApp → Chatwoot: the edges of finding the person behind a chat and of the cold path (contact and conversation
// creation or reuse, docs/routing.md and docs/identity.md). These tests came from mutation testing
// (docs/testing.md, "Mutation report"): each pins a behaviour of packages/core/src/routing/inbound.ts that the
// other e2e suites (inbound, identity, cold-path, existing-contact, merged-contacts) let change unnoticed.
//
// Chatwoot facts used here: a contact create with a taken phone number or identifier answers 422
// (app/models/contact.rb validations), `GET /contacts/search?q=` matches substrings of name, e-mail, phone number
// and identifier (ContactsController#search), and a message list is 20 per page, newest last, older pages with
// `before=<id>` (app/controllers/api/v1/accounts/conversations/messages_controller.rb).
import type { Logger, WhatsAppEvent } from "@ryze/chatwoot-core";
import { afterEach, describe, expect, it } from "vitest";
import type { RecordedRequest } from "../simulator/index.js";
import {
  eventually,
  type RoutingHarness,
  type RoutingHarnessOptions,
  startRoutingHarness,
} from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

let sequence = 0;
const nextId = () => `3EB0EDGE${String(++sequence).padStart(8, "0")}`;

/** A `message.exchange` envelope with the given chat and sender, as a gateway may send it. */
function message(options: {
  text: string;
  chat: Record<string, unknown>;
  sender?: Record<string, unknown> | null;
  direction?: "incoming" | "outgoing";
  id?: string;
}): WhatsAppEvent {
  const id = options.id ?? nextId();
  return {
    event: "message.exchange",
    data: {
      id,
      message: {
        id,
        direction: options.direction ?? "incoming",
        chat: { type: "private", ...options.chat },
        ...(options.sender === undefined ? {} : { sender: options.sender }),
        content: { text: options.text },
      },
    },
  } as WhatsAppEvent;
}

interface SeenContact {
  id: number;
  name: string;
  phone_number: string | null;
  identifier: string | null;
}
const contactsOf = (harness: RoutingHarness) =>
  harness.sim.contacts(harness.accountId) as unknown as SeenContact[];
const oursOf = (harness: RoutingHarness) =>
  (
    harness.sim.contactInboxes(harness.accountId) as unknown as Array<{
      contact_id: number;
      inbox_id: number;
    }>
  )
    .filter((row) => row.inbox_id === harness.inboxId)
    .map((row) => row.contact_id);

async function integrationId(harness: RoutingHarness): Promise<string> {
  return (await harness.store.integrations.get("suporte"))!.id;
}

/** Waits until every stored item is finished (done or dead). */
async function drained(harness: RoutingHarness): Promise<Record<string, number>> {
  const id = await integrationId(harness);
  return eventually(async () => {
    const counts = await harness.store.outbox.count(id);
    return counts.pending === 0 && counts.claimed === 0 ? counts : null;
  });
}

/** The account API requests, as `METHOD /path` with ids replaced. */
const routing = (requests: readonly RecordedRequest[]) =>
  requests
    .filter((request) => request.path.startsWith("/api/v1/accounts/"))
    .filter((request) => !(request.method === "GET" && /\/conversations$/.test(request.path)))
    .map((request) => `${request.method} ${request.path.replace(/\/\d+/g, "/:id")}`);

function recordingLogger(lines: Array<{ level: string; msg?: string } & Record<string, unknown>>): Logger {
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, ...obj, msg });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

async function start(options: RoutingHarnessOptions = {}): Promise<RoutingHarness> {
  h = await startRoutingHarness(options);
  return h;
}

describe("the contact's name", () => {
  it("is the chat's name when the gateway gives one, before the sender's push name", async () => {
    const harness = await start();
    const jid = "14155550101@s.whatsapp.net";
    await harness.ingest(
      message({ text: "hi", chat: { jid, name: "Maria (agenda)" }, sender: { jid, name: "Mari ✨" } }),
    );
    await eventually(() => totalMessages(harness) === 1);
    expect(contactsOf(harness)).toMatchObject([{ name: "Maria (agenda)", phone_number: "+14155550101" }]);
  });

  it("is the sender's name for an incoming message of a chat without a name", async () => {
    const harness = await start();
    const jid = "14155550102@s.whatsapp.net";
    await harness.ingest(message({ text: "hi", chat: { jid }, sender: { jid, name: "Mari ✨" } }));
    await eventually(() => totalMessages(harness) === 1);
    expect(contactsOf(harness)).toMatchObject([{ name: "Mari ✨" }]);
  });

  it("is the phone number when the chat's first message was sent from the phone (the sender is the account)", async () => {
    const harness = await start();
    const jid = "14155550103@s.whatsapp.net";
    await harness.ingest(
      message({
        text: "typed on the phone",
        chat: { jid },
        sender: { jid: "14155559999@s.whatsapp.net", name: "Acme Support" },
        direction: "outgoing",
      }),
    );
    await eventually(() => totalMessages(harness) === 1);
    expect(contactsOf(harness)).toMatchObject([{ name: "+14155550103", phone_number: "+14155550103" }]);
  });

  it("of a group without a subject is the group's JID, not a participant's name, and the group stays one contact", async () => {
    const harness = await start();
    const group = "120363000000000042@g.us";
    const ana = { jid: "5511911112222@s.whatsapp.net", name: "Ana" };
    await harness.ingest(message({ text: "oi", chat: { jid: group, type: "group" }, sender: ana }));
    await eventually(() => totalMessages(harness) === 1);
    await drained(harness);
    harness.sim.clearRequests();
    await harness.ingest(message({ text: "tudo bem?", chat: { jid: group, type: "group" }, sender: ana }));
    await eventually(() => totalMessages(harness) === 2);
    // The group's chat is known: its next message costs one request.
    expect(routing(harness.sim.requests)).toEqual(["POST /api/v1/accounts/:id/conversations/:id/messages"]);
    expect(contactsOf(harness)).toMatchObject([{ name: group, identifier: group, phone_number: null }]);
    const conversations = conversationsOf(harness);
    expect(conversations).toHaveLength(1);
    expect(chatMessages(harness, conversations[0]!.id).map((entry) => entry.content)).toEqual([
      "*Ana*:\noi",
      "*Ana*:\ntudo bem?",
    ]);
  });
});

/**
 * A contact saved in Chatwoot with `phone`, then the first message of `jid`: that contact is the only one, and gets
 * our contact inbox. The requests are counted from the message on.
 */
async function reusedByFirstMessage(harness: RoutingHarness, phone: string, jid: string): Promise<void> {
  const saved = harness.sim.createContact(harness.accountId, {
    name: "Saved in the CRM",
    phone_number: phone,
  }) as unknown as SeenContact;
  harness.sim.clearRequests();
  await harness.ingest(message({ text: "hello", chat: { jid, name: "From WhatsApp" } }));
  await eventually(() => totalMessages(harness) === 1);
  expect(contactsOf(harness).map((contact) => contact.id)).toEqual([saved.id]);
  expect(oursOf(harness)).toEqual([saved.id]);
}

describe("an existing Chatwoot contact of a number outside Brazil", () => {
  it("with the same phone number gets our contact inbox, found by the phone search", async () => {
    const harness = await start();
    await reusedByFirstMessage(harness, "+14155550201", "14155550201@s.whatsapp.net");
    // Refused (422), not ours by source id, found by phone: the JID search is not needed.
    expect(harness.sim.countRequests({ method: "GET", path: /\/contacts\/search$/ })).toBe(1);
    expect((await drained(harness))["dead"]).toBe(0);
  });

  it("is not confused with a contact the phone search also finds: only the same phone or identifier matches", async () => {
    const harness = await start();
    const jid = "14155550202@s.whatsapp.net";
    // The search for "+14155550202" also finds this one (a longer number containing it), listed first.
    const lookalike = harness.sim.createContact(harness.accountId, {
      name: "Someone else",
      phone_number: "+141555502021",
    }) as unknown as SeenContact;
    const existing = harness.sim.createContact(harness.accountId, {
      name: "John (CRM)",
      identifier: jid,
    }) as unknown as SeenContact;
    await harness.ingest(message({ text: "hello", chat: { jid, name: "John" } }));
    await eventually(() => totalMessages(harness) === 1);
    expect(contactsOf(harness).map((contact) => contact.id)).toEqual([lookalike.id, existing.id]);
    expect(oursOf(harness)).toEqual([existing.id]);
  });

  it("a contact create that fails for another reason (500) is tried again, without looking the contact up", async () => {
    const harness = await start();
    harness.sim.faults.inject({ method: "POST", path: /\/contacts$/, status: 500, times: 1 });
    harness.sim.clearRequests();
    await harness.ingest(
      message({ text: "hello", chat: { jid: "14155550203@s.whatsapp.net", name: "John" } }),
    );
    await eventually(() => totalMessages(harness) === 1);
    expect(routing(harness.sim.requests)).toEqual([
      "POST /api/v1/accounts/:id/contacts",
      "POST /api/v1/accounts/:id/contacts",
      "POST /api/v1/accounts/:id/conversations",
    ]);
  });
});

describe("Brazil's 9th digit when the contact is created", () => {
  it("a contact saved under the other form is reused without a contact create, and counted", async () => {
    const harness = await start();
    await reusedByFirstMessage(harness, "+5511988887001", "551188887001@s.whatsapp.net");
    const requests = routing(harness.sim.requests);
    expect(requests).not.toContain("POST /api/v1/accounts/:id/contacts");
    expect(requests[0]).toBe("GET /api/v1/accounts/:id/contacts/search");
    // One search by the 8 digits both forms end with.
    expect(
      harness.sim.requests.find((request) => request.path.endsWith("/contacts/search"))!.query,
    ).toMatchObject({
      q: "88887001",
    });
    expect(harness.bridge.counters()).toMatchObject({ contact_found_by_phone: 1 });
  });

  it("a contact with the same last 8 digits in another area code is another person", async () => {
    const harness = await start();
    const other = harness.sim.createContact(harness.accountId, {
      name: "Someone in Minas",
      phone_number: "+5531988887002",
    }) as unknown as SeenContact;
    await harness.ingest(
      message({ text: "oi", chat: { jid: "5511988887002@s.whatsapp.net", name: "Maria" } }),
    );
    await eventually(() => totalMessages(harness) === 1);
    const contacts = contactsOf(harness);
    expect(contacts).toHaveLength(2);
    expect(oursOf(harness)).not.toContain(other.id);
    expect(contacts.find((contact) => contact.id !== other.id)).toMatchObject({
      phone_number: "+5511988887002",
    });
    expect(harness.bridge.counters()["contact_found_by_phone"] ?? 0).toBe(0);
  });
});

describe("a sent-from-the-phone message waiting for its echo", () => {
  it("tells why it waits in the outbox item", async () => {
    const harness = await start({ bridge: { echoWaitMs: 1_500 } });
    const id = nextId();
    const jid = "14155550301@s.whatsapp.net";
    await harness.ingest(message({ id, text: "typed on the phone", chat: { jid }, direction: "outgoing" }));
    const integration = await integrationId(harness);
    const item = await eventually(async () => {
      const found = await harness.store.outbox.find(integration, `wa:${id}`);
      return found?.lastError ? found : null;
    });
    expect(item.lastError).toMatch(/^deferred: \d+ms$/);
    expect(item.attempts).toBe(0);
  });
});

describe("our contact merged away by an agent", () => {
  it("the next conversation is opened for the contact that now holds our contact inbox, asked for first", async () => {
    const harness = await start({ flags: { reopenResolved: false } });
    const jid = "14155550401@s.whatsapp.net";
    await harness.ingest(message({ text: "first", chat: { jid, name: "John" } }));
    await eventually(() => totalMessages(harness) === 1);
    await drained(harness);
    const [ours] = contactsOf(harness);
    const [conversation] = conversationsOf(harness);
    const base = harness.sim.createContact(harness.accountId, {
      name: "John (CRM)",
      email: "john@example.test",
    })["id"] as number;
    const merged = await fetch(
      `${harness.sim.url}/api/v1/accounts/${harness.accountId}/actions/contact_merge`,
      {
        method: "POST",
        headers: { api_access_token: harness.agent.accessToken, "content-type": "application/json" },
        body: JSON.stringify({ base_contact_id: base, mergee_contact_id: ours!.id }),
      },
    );
    expect(merged.status).toBe(200);
    harness.sim.setConversationStatus(harness.accountId, conversation!.id, "resolved", {
      userId: harness.agent.id,
    });
    const integration = await integrationId(harness);
    await eventually(
      async () => (await harness.store.mappings.getChat(integration, jid))?.conversationId === null,
    );
    harness.sim.clearRequests();
    await harness.ingest(message({ text: "a new question", chat: { jid, name: "John" } }));
    await eventually(() => totalMessages(harness) === 2);
    // The conversation create for the merged-away contact fails; Chatwoot is asked who owns our source id, and no
    // contact is created (nor refused) on the way.
    const requests = routing(harness.sim.requests);
    expect(requests).not.toContain("POST /api/v1/accounts/:id/contacts");
    expect(requests.filter((request) => request === "POST /api/v1/accounts/:id/conversations")).toHaveLength(
      2,
    );
    expect(harness.bridge.counters()).toMatchObject({ contact_resolved_again: 1 });
    expect(contactsOf(harness).map((contact) => contact.id)).toEqual([base]);
  });
});

describe("a message whose create answer was lost, looked up on the retry", () => {
  const messagesPath = /\/conversations\/\d+\/messages$/;

  /** A known chat's second message is created, its answer lost; `notes` agent notes land before the look-up. */
  async function lostAnswer(notes: number) {
    const harness = await start();
    harness.sim.setMessageFloodLimit(10_000);
    const jid = "14155550501@s.whatsapp.net";
    await harness.ingest(message({ text: "first", chat: { jid, name: "John" } }));
    await eventually(() => totalMessages(harness) === 1);
    await drained(harness);
    const [conversation] = conversationsOf(harness);
    harness.sim.faults.inject({
      method: "POST",
      path: messagesPath,
      afterHandling: true,
      reset: true,
      times: 1,
    });
    // The look-up's first page is read a moment late: the agents' notes are in by then.
    harness.sim.faults.inject({ method: "GET", path: messagesPath, delayMs: 300, times: 1 });
    harness.sim.clearRequests();
    const id = nextId();
    await harness.ingest(message({ id, text: "second", chat: { jid, name: "John" } }));
    await harness.sim.waitForRequests({ method: "GET", path: messagesPath });
    for (let n = 0; n < notes; n++)
      harness.sim.postAgentMessage({
        accountId: harness.accountId,
        conversationId: conversation!.id,
        userId: harness.agent.id,
        content: `note ${n}`,
        private: true,
      });
    await drained(harness);
    const copies = chatMessages(harness, conversation!.id).filter(
      (entry) => entry.source_id === `WAID:${id}`,
    );
    const pages = harness.sim.requests.filter(
      (request) => request.method === "GET" && messagesPath.test(request.path),
    );
    return { harness, copies, pages };
  }

  it("is found on an older page of the conversation: not created twice", async () => {
    const { harness, copies, pages } = await lostAnswer(25);
    expect(copies).toHaveLength(1);
    expect(harness.bridge.counters()).toMatchObject({ reconciled: 1 });
    expect(pages).toHaveLength(2);
    expect(pages[0]!.query["before"]).toBeUndefined();
    expect(Number(pages[1]!.query["before"])).toBeGreaterThan(copies[0]!.id);
  });

  it("reads at most 10 pages (200 messages) back", async () => {
    const { pages } = await lostAnswer(210);
    expect(pages).toHaveLength(10);
    const befores = pages.map((page) => Number(page.query["before"] ?? Infinity));
    expect(befores).toEqual([...befores].sort((a, b) => b - a));
    expect(new Set(befores).size).toBe(10);
  });
});

describe("a person first seen by LID, whose phone JID becomes known", () => {
  const lid = "230000000000601@lid";
  const pn = "14155550601@s.whatsapp.net";

  async function seenByLid(options: RoutingHarnessOptions = {}) {
    const harness = await start(options);
    await harness.ingest(message({ text: "by LID", chat: { jid: lid, name: "Lia" } }));
    await eventually(() => totalMessages(harness) === 1);
    await drained(harness);
    return harness;
  }

  /** A message carrying both forms: the link is learned and the chat moves to the phone JID. */
  async function bothForms(harness: RoutingHarness) {
    await harness.ingest(message({ text: "both forms", chat: { jid: pn, lid, name: "Lia" } }));
    await eventually(() => totalMessages(harness) === 2);
    expect((await drained(harness))["dead"]).toBe(0);
  }

  it("the contact gets the phone number, the chat moves with its conversation, and both are counted", async () => {
    const harness = await seenByLid();
    await bothForms(harness);
    expect(contactsOf(harness)).toMatchObject([{ identifier: lid, phone_number: "+14155550601" }]);
    expect(conversationsOf(harness)).toHaveLength(1);
    expect(harness.bridge.counters()).toMatchObject({ identity_learned: 1, chat_moved_to_phone: 1 });
    // Learned once: the next messages, by either form, add nothing.
    await harness.ingest(message({ text: "both again", chat: { jid: pn, lid } }));
    await harness.ingest(message({ text: "LID again", chat: { jid: lid } }));
    await eventually(() => totalMessages(harness) === 4);
    expect(harness.bridge.counters()).toMatchObject({ identity_learned: 1, chat_moved_to_phone: 1 });
    expect(conversationsOf(harness)).toHaveLength(1);
  });

  it("a phone number Chatwoot refuses (422) with no other contact holding it: logged, and the chat moves anyway", async () => {
    const lines: Array<{ level: string; msg?: string } & Record<string, unknown>> = [];
    const harness = await seenByLid({ bridge: { logger: recordingLogger(lines) } });
    const [contact] = contactsOf(harness);
    harness.sim.faults.inject({
      method: "PATCH",
      path: /\/contacts\/\d+$/,
      status: 422,
      body: { message: "Phone number should be in e164 format" },
      times: 1,
    });
    await bothForms(harness);
    expect(contactsOf(harness)).toMatchObject([{ id: contact!.id, phone_number: null }]);
    expect(conversationsOf(harness)).toHaveLength(1);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: "warn",
        msg: "chatwoot: the contact's phone number was refused",
        instance: "suporte",
        contactId: contact!.id,
      }),
    );
  });

  it("its contact deleted by an agent: the message with the phone JID still lands, on a new contact", async () => {
    // Found by mutation testing: the contact update answered 404, no contact held the number, and the message went to
    // the dead letters at once. docs/routing.md: a contact deleted in Chatwoot is made again by the next message.
    const harness = await seenByLid();
    const [contact] = contactsOf(harness);
    const res = await fetch(
      `${harness.sim.url}/api/v1/accounts/${harness.accountId}/contacts/${contact!.id}`,
      {
        method: "DELETE",
        headers: { api_access_token: harness.agent.accessToken },
      },
    );
    expect(res.status).toBe(200);
    expect(contactsOf(harness)).toEqual([]);
    await harness.ingest(message({ text: "after the delete", chat: { jid: pn, lid, name: "Lia" } }));
    await eventually(() => totalMessages(harness) === 1, { what: "the message after the delete" });
    expect((await drained(harness))["dead"]).toBe(0);
    const contacts = contactsOf(harness);
    expect(contacts).toHaveLength(1);
    expect(contacts[0]!["id"]).not.toBe(contact!.id);
    const [conversation] = conversationsOf(harness);
    expect(chatMessages(harness, conversation!.id).map((entry) => entry.content)).toEqual([
      "after the delete",
    ]);
  });

  it("a phone number update that fails for another reason (500) is tried again", async () => {
    const harness = await seenByLid();
    harness.sim.faults.inject({ method: "PATCH", path: /\/contacts\/\d+$/, status: 500, times: 1 });
    await bothForms(harness);
    expect(contactsOf(harness)).toMatchObject([{ phone_number: "+14155550601" }]);
    expect(harness.sim.countRequests({ method: "PATCH", path: /\/contacts\/\d+$/ })).toBe(2);
    expect(harness.sim.countRequests({ method: "GET", path: /\/contacts\/search$/ })).toBe(0);
  });

  it("the phone number held by another contact: the LID's contact is merged into it, logged and counted", async () => {
    const lines: Array<{ level: string; msg?: string } & Record<string, unknown>> = [];
    const harness = await seenByLid({ bridge: { logger: recordingLogger(lines) } });
    const [byLid] = contactsOf(harness);
    const saved = harness.sim.createContact(harness.accountId, {
      name: "Lia (CRM)",
      phone_number: "+14155550601",
    })["id"] as number;
    await bothForms(harness);
    expect(contactsOf(harness).map((contact) => contact.id)).toEqual([saved]);
    expect(oursOf(harness)).toEqual([saved]);
    expect(harness.bridge.counters()).toMatchObject({ contacts_merged: 1 });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: "info",
        msg: "chatwoot: merged the contacts of one WhatsApp person",
        instance: "suporte",
        baseId: saved,
        mergeeId: byLid!.id,
      }),
    );
  });
});

describe("two contacts of one person, made one by contact.identity", () => {
  const lid = "230000000000701@lid";
  const pn = "14155550701@s.whatsapp.net";

  it("merges the LID's contact into the phone's, keeps the phone chat's conversation open and resolves the other", async () => {
    const harness = await start();
    await harness.ingest(message({ text: "by LID", chat: { jid: lid } }));
    await harness.ingest(message({ text: "by phone", chat: { jid: pn } }));
    await eventually(() => totalMessages(harness) === 2);
    await drained(harness);
    const byPhone = contactsOf(harness).find((contact) => contact.identifier === pn)!;
    // The two chats are delivered side by side: which conversation Chatwoot made first is open.
    const holding = (text: string) =>
      conversationsOf(harness).find((conversation) =>
        chatMessages(harness, conversation.id).some((entry) => entry.content === text),
      )!;
    const lidConversation = holding("by LID");
    const pnConversation = holding("by phone");
    await harness.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => harness.bridge.counters()["contacts_merged"] === 1 || null);
    await drained(harness);
    expect(contactsOf(harness).map((contact) => contact.id)).toEqual([byPhone.id]);
    expect(
      Object.fromEntries(
        conversationsOf(harness).map((conversation) => [conversation.id, conversation.status]),
      ),
    ).toEqual({ [lidConversation.id]: "resolved", [pnConversation.id]: "open" });
    // The person's next message, by either form, lands in the open conversation.
    await harness.ingest(message({ text: "LID after", chat: { jid: lid } }));
    await eventually(() => totalMessages(harness) === 3);
    expect(chatMessages(harness, pnConversation!.id).map((entry) => entry.content)).toEqual([
      "by phone",
      "LID after",
    ]);
  });
});

describe("the contact create's answer", () => {
  it("without a contact inbox (Chatwoot made none): ours is added to the contact", async () => {
    const harness = await start();
    const jid = "14155550801@s.whatsapp.net";
    // A Chatwoot that created the contact but not its contact inbox answers the contact alone.
    const made = harness.sim.createContact(harness.accountId, { name: "John", identifier: jid })[
      "id"
    ] as number;
    harness.sim.faults.inject({
      method: "POST",
      path: /\/contacts$/,
      status: 200,
      body: { payload: { contact: { id: made, name: "John", identifier: jid }, contact_inbox: null } },
      times: 1,
    });
    await harness.ingest(message({ text: "hello", chat: { jid, name: "John" } }));
    await eventually(() => totalMessages(harness) === 1);
    expect(oursOf(harness)).toEqual([made]);
    expect(harness.sim.countRequests({ method: "POST", path: /\/contacts\/\d+\/contact_inboxes$/ })).toBe(1);
  });

  it("a contact create still unanswered at the item's deadline is abandoned: Chatwoot never gets to handle it", async () => {
    const harness = await start({
      bridge: { dispatcher: { pollIntervalMs: 20, itemTimeoutMs: 250 } },
    });
    harness.sim.faults.inject({ method: "POST", path: /\/contacts$/, delayMs: 900, times: 1 });
    await harness.ingest(
      message({ text: "hello", chat: { jid: "14155550802@s.whatsapp.net", name: "John" } }),
    );
    await eventually(() => totalMessages(harness) === 1, { timeoutMs: 10_000 });
    await drained(harness);
    const creates = harness.sim.requests.filter(
      (request) => request.method === "POST" && /\/contacts$/.test(request.path),
    );
    // The first create was cancelled (its connection closed), the retry made the contact. Past the first create's
    // delay, Chatwoot would have handled it had the connection still been open.
    const late = creates[0]!.at.getTime() + 1_100 - Date.now();
    if (late > 0) await new Promise((resolve) => setTimeout(resolve, late));
    expect(creates[0]!.status).toBeNull();
    expect(creates.at(-1)!.status).toBe(200);
    expect(contactsOf(harness)).toHaveLength(1);
  });
});
