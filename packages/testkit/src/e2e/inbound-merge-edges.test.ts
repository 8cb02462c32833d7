// One person, one contact, one open conversation (docs/identity.md): the edges of making a person's LID chat and
// phone chat one, seen from Chatwoot. These tests came from mutation testing (docs/testing.md, "Mutation report"):
// each pins a behaviour of `ensureChat`, `givePhone`, `mergeContacts`, `mergeChats`, `openConversation` and
// `findMessage` in packages/core/src/routing/inbound.ts that the other e2e suites let change unnoticed.
//
// Chatwoot facts used here: `POST …/actions/contact_merge` moves the mergee's conversations and contact inboxes to the
// base contact and destroys the mergee, and answers 404 when either contact is gone (app/actions/contact_merge_action.rb,
// app/controllers/api/v1/accounts/actions/contact_merges_controller.rb); deleting a contact deletes its conversations
// (`dependent: :destroy_async`, app/models/contact.rb); a contact update with a phone number another contact has
// answers 422 (app/models/contact.rb validations); a message list is 20 per page, newest last, older pages with
// `before=<id>` (app/controllers/api/v1/accounts/conversations/messages_controller.rb); the conversation list shows a
// conversation's last message, or its last 10 unread ones (api/v1/conversations/partials/_conversation.json.jbuilder).
import type { Logger, StoragePort, WhatsAppEvent } from "@ryze/chatwoot-core";
import { type ChatwootApi, createChatwootApi, createMemoryStore } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  eventually,
  type RoutingHarness,
  type RoutingHarnessOptions,
  startRoutingHarness,
} from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

let h: RoutingHarness | undefined;
let releaseAll: Array<() => void> = [];
afterEach(async () => {
  for (const release of releaseAll) release();
  releaseAll = [];
  await h?.close();
  h = undefined;
});

let sequence = 0;
const nextId = () => `3EB0MRGE${String(++sequence).padStart(8, "0")}`;

/** An incoming text of a private chat, addressed as given. */
function message(
  text: string,
  chat: { jid: string } & Record<string, unknown>,
  id = nextId(),
): WhatsAppEvent {
  return {
    event: "message.exchange",
    data: {
      id,
      message: { id, direction: "incoming", chat: { type: "private", ...chat }, content: { text } },
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
const statusOf = (harness: RoutingHarness, conversationId: number) =>
  conversationsOf(harness).find((conversation) => conversation.id === conversationId)?.status;
const openConversations = (harness: RoutingHarness) =>
  conversationsOf(harness).filter((conversation) => conversation.status === "open");
const contents = (harness: RoutingHarness, conversationId: number) =>
  chatMessages(harness, conversationId).map((entry) => entry.content);
/** The conversation holding the message with this text. */
const conversationWith = (harness: RoutingHarness, text: string) =>
  conversationsOf(harness).find((conversation) => contents(harness, conversation.id).includes(text))!;

async function integrationId(harness: RoutingHarness): Promise<string> {
  return (await harness.store.integrations.get("suporte"))!.id;
}

/** Waits until every stored item is finished (done or dead); answers the counts. */
async function drained(harness: RoutingHarness): Promise<Record<string, number>> {
  const id = await integrationId(harness);
  return eventually(
    async () => {
      const counts = await harness.store.outbox.count(id);
      return counts.pending === 0 && counts.claimed === 0 ? counts : null;
    },
    { what: "the outbox drained" },
  );
}

/** Waits for `count` messages in Chatwoot, then for the outbox to drain with nothing dead. */
async function settled(harness: RoutingHarness, count: number): Promise<void> {
  await eventually(() => totalMessages(harness) === count, { what: `${count} messages in Chatwoot` });
  expect((await drained(harness))["dead"]).toBe(0);
}

/** The account API requests that change something or merge, as `METHOD /path` with ids replaced. */
const writes = (harness: RoutingHarness) =>
  harness.sim.requests
    .filter((request) => request.path.startsWith("/api/v1/accounts/") && request.method !== "GET")
    .map((request) => `${request.method} ${request.path.replace(/\/\d+/g, "/:id")}`);
const merges = (harness: RoutingHarness) =>
  harness.sim.countRequests({ method: "POST", path: /\/actions\/contact_merge$/ });

function recordingLogger(lines: Array<{ level: string; msg?: string } & Record<string, unknown>>): Logger {
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, ...obj, msg });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** What an agent does in the dashboard, over the REST API. */
async function asAgent(harness: RoutingHarness, method: string, path: string, body?: unknown) {
  const res = await fetch(`${harness.sim.url}/api/v1/accounts/${harness.accountId}${path}`, {
    method,
    headers: { api_access_token: harness.agent.accessToken, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  expect(res.status).toBe(200);
}

async function start(options: RoutingHarnessOptions = {}): Promise<RoutingHarness> {
  h = await startRoutingHarness(options);
  return h;
}

/** The agent resolves a conversation; with `reopenResolved: false` the chat forgets it (docs/routing.md). */
async function resolvedByAgent(harness: RoutingHarness, conversationId: number, jid: string): Promise<void> {
  harness.sim.setConversationStatus(harness.accountId, conversationId, "resolved", {
    userId: harness.agent.id,
  });
  const integration = await integrationId(harness);
  await eventually(
    async () => (await harness.store.mappings.getChat(integration, jid))?.conversationId === null,
    { what: "the chat forgot its resolved conversation" },
  );
}

/** A person who wrote by LID, then by phone, before WhatsApp told the link: two contacts, two open conversations. */
async function splitPerson(harness: RoutingHarness, lid: string, pn: string) {
  await harness.ingest(message("by LID", { jid: lid }));
  await settled(harness, 1);
  await harness.ingest(message("by phone", { jid: pn }));
  await settled(harness, 2);
  const byLid = contactsOf(harness).find((contact) => contact.identifier === lid)!;
  const byPhone = contactsOf(harness).find((contact) => contact.identifier === pn)!;
  return {
    byLid,
    byPhone,
    lidConversation: conversationWith(harness, "by LID").id,
    phoneConversation: conversationWith(harness, "by phone").id,
  };
}

describe("two chats of one person, made one when the link arrives", () => {
  it("one contact afterwards, and the person's next message by LID costs one request: nothing is merged again", async () => {
    const harness = await start();
    const lid = "230000000000801@lid";
    const pn = "14155550801@s.whatsapp.net";
    const { byPhone, lidConversation, phoneConversation } = await splitPerson(harness, lid, pn);
    await harness.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => statusOf(harness, lidConversation) === "resolved" || null);
    expect((await drained(harness))["dead"]).toBe(0);
    expect(contactsOf(harness).map((contact) => contact.id)).toEqual([byPhone.id]);
    harness.sim.clearRequests();
    await harness.ingest(message("LID after the link", { jid: lid }));
    await settled(harness, 3);
    expect(writes(harness)).toEqual(["POST /api/v1/accounts/:id/conversations/:id/messages"]);
    expect(contents(harness, phoneConversation)).toEqual(["by phone", "LID after the link"]);
  });

  it("the LID chat's conversation already resolved: its contact is still merged into the phone's", async () => {
    const harness = await start({ flags: { reopenResolved: false } });
    const lid = "230000000000802@lid";
    const pn = "14155550802@s.whatsapp.net";
    const { byPhone, lidConversation, phoneConversation } = await splitPerson(harness, lid, pn);
    await resolvedByAgent(harness, lidConversation, lid);
    await harness.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => contactsOf(harness).length === 1 || null, { what: "one contact" });
    expect((await drained(harness))["dead"]).toBe(0);
    expect(contactsOf(harness)).toMatchObject([{ id: byPhone.id, phone_number: "+14155550802" }]);
    expect(openConversations(harness).map((conversation) => conversation.id)).toEqual([phoneConversation]);
  });

  it("the phone chat's conversation resolved, the LID chat's open: the LID's conversation goes on as the person's", async () => {
    const harness = await start({ flags: { reopenResolved: false } });
    const lid = "230000000000803@lid";
    const pn = "14155550803@s.whatsapp.net";
    const { byPhone, lidConversation, phoneConversation } = await splitPerson(harness, lid, pn);
    await resolvedByAgent(harness, phoneConversation, pn);
    await harness.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => contactsOf(harness).length === 1 || null, { what: "one contact" });
    expect((await drained(harness))["dead"]).toBe(0);
    await harness.ingest(message("by phone, after the link", { jid: pn }));
    await settled(harness, 3);
    expect(contactsOf(harness).map((contact) => contact.id)).toEqual([byPhone.id]);
    expect(conversationsOf(harness).map((conversation) => [conversation.id, conversation.status])).toEqual([
      [lidConversation, "open"],
      [phoneConversation, "resolved"],
    ]);
    expect(contents(harness, lidConversation)).toEqual(["by LID", "by phone, after the link"]);
  });

  it("a merge Chatwoot fails with a server error (500) is tried again: one contact in the end", async () => {
    const harness = await start();
    const lid = "230000000000804@lid";
    const pn = "14155550804@s.whatsapp.net";
    const { byPhone, lidConversation } = await splitPerson(harness, lid, pn);
    const failed = harness.sim.faults.inject({
      method: "POST",
      path: /\/actions\/contact_merge$/,
      status: 500,
      times: 1,
    });
    await harness.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => failed.hits === 1 || null);
    expect((await drained(harness))["dead"]).toBe(0);
    expect(contactsOf(harness).map((contact) => contact.id)).toEqual([byPhone.id]);
    expect(statusOf(harness, lidConversation)).toBe("resolved");
    expect(harness.bridge.counters()).toMatchObject({ contacts_merged: 1 });
  });

  it("the LID's contact deleted by an agent before the link: the merge counts as done, and the next LID message lands", async () => {
    const harness = await start();
    const lid = "230000000000805@lid";
    const pn = "14155550805@s.whatsapp.net";
    const { byLid, byPhone, phoneConversation } = await splitPerson(harness, lid, pn);
    // Deleting the contact deletes its conversation: the merge (404) and resolving that conversation (404) find
    // nothing left to do.
    await asAgent(harness, "DELETE", `/contacts/${byLid.id}`);
    await harness.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    expect((await drained(harness))["dead"]).toBe(0);
    await harness.ingest(message("LID after the delete", { jid: lid }));
    await settled(harness, 2);
    expect(contactsOf(harness).map((contact) => contact.id)).toEqual([byPhone.id]);
    expect(contents(harness, phoneConversation)).toEqual(["by phone", "LID after the delete"]);
  });

  it("resolving the LID chat's conversation fails once (500): tried again, so one conversation stays open", async () => {
    const harness = await start();
    const lid = "230000000000806@lid";
    const pn = "14155550806@s.whatsapp.net";
    const { lidConversation, phoneConversation } = await splitPerson(harness, lid, pn);
    const failed = harness.sim.faults.inject({
      method: "POST",
      path: /\/conversations\/\d+\/toggle_status$/,
      status: 500,
      times: 1,
    });
    await harness.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => failed.hits === 1 || null);
    expect((await drained(harness))["dead"]).toBe(0);
    expect(statusOf(harness, lidConversation)).toBe("resolved");
    expect(openConversations(harness).map((conversation) => conversation.id)).toEqual([phoneConversation]);
  });
});

/** The bridge's Chatwoot client, whose next conversation create can be held until released. */
function holdingApi() {
  const real = createChatwootApi();
  let next: { arrived(): void; gate: Promise<void> } | null = null;
  function holdNextConversation() {
    let release!: () => void;
    let arrived!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    next = { arrived, gate };
    releaseAll.push(release);
    return { reached, release };
  }
  const chatwootApi: ChatwootApi = {
    ...real,
    async createConversation(target, input, options) {
      const held = next;
      next = null;
      if (held) {
        held.arrived();
        await held.gate;
      }
      return real.createConversation(target, input, options);
    },
  };
  return { chatwootApi, holdNextConversation };
}

/** A memory store whose next write of "no conversation" for `jid`'s chat fails (the database is unavailable). */
function storeFailingOnce() {
  const base = createMemoryStore();
  let failFor: string | null = null;
  let failures = 0;
  const store: StoragePort = {
    ...base,
    mappings: {
      ...base.mappings,
      async setChatConversation(integrationId, chatJid, conversationId) {
        if (chatJid === failFor && conversationId === null) {
          failFor = null;
          failures++;
          throw new Error("database unavailable");
        }
        return base.mappings.setChatConversation(integrationId, chatJid, conversationId);
      },
    },
  };
  return { store, failNextClear: (jid: string) => (failFor = jid), failures: () => failures };
}

describe("a person first seen by LID, whose phone JID becomes known", () => {
  it("a LID message still opening its conversation when the link arrives: the person's next phone message continues there", async () => {
    const { chatwootApi, holdNextConversation } = holdingApi();
    const harness = await start({ bridge: { chatwootApi } });
    const lid = "230000000000901@lid";
    const pn = "14155550901@s.whatsapp.net";
    // The first LID message made its contact and chat, and is opening its conversation when the link arrives: the
    // chat moves to the phone JID with no conversation yet; the LID's conversation opens right after.
    const held = holdNextConversation();
    await harness.ingest(message("by LID", { jid: lid }));
    await held.reached;
    await harness.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => harness.bridge.counters()["chat_moved_to_phone"] === 1 || null, {
      what: "the move",
    });
    held.release();
    await settled(harness, 1);
    const [conversation] = conversationsOf(harness);
    await harness.ingest(message("by phone", { jid: pn }));
    await settled(harness, 2);
    expect(conversationsOf(harness)).toEqual([
      expect.objectContaining({ id: conversation!.id, status: "open" }),
    ]);
    expect(contents(harness, conversation!.id)).toEqual(["by LID", "by phone"]);
    expect(contactsOf(harness)).toMatchObject([{ identifier: lid, phone_number: "+14155550901" }]);
    // One contact all along: Chatwoot is never asked to merge it with itself.
    expect(merges(harness)).toBe(0);
  });

  it("the database failing right after the chat moved: the retry leaves the person's conversation open", async () => {
    const { store, failNextClear, failures } = storeFailingOnce();
    const harness = await start({ store });
    const lid = "230000000000902@lid";
    const pn = "14155550902@s.whatsapp.net";
    await harness.ingest(message("by LID", { jid: lid }));
    await settled(harness, 1);
    const [conversation] = conversationsOf(harness);
    // The chat is stored under the phone JID with the conversation; forgetting it under the LID fails, and the retry
    // finds both chats pointing at the one conversation.
    failNextClear(lid);
    harness.sim.clearRequests();
    await harness.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(async () => {
      const chat = await harness.store.mappings.getChat(await integrationId(harness), lid);
      return chat?.conversationId === null || null;
    });
    expect((await drained(harness))["dead"]).toBe(0);
    expect(failures()).toBe(1);
    expect(conversationsOf(harness)).toEqual([
      expect.objectContaining({ id: conversation!.id, status: "open" }),
    ]);
    expect(contactsOf(harness)).toMatchObject([{ phone_number: "+14155550902" }]);
    expect(merges(harness)).toBe(0);
    await harness.ingest(message("by phone", { jid: pn }));
    await harness.ingest(message("by LID again", { jid: lid }));
    await settled(harness, 3);
    expect(contents(harness, conversation!.id)).toEqual(["by LID", "by phone", "by LID again"]);
  });

  it("the phone number held by a CRM contact: after the merge into it, the next LID message costs one request", async () => {
    const harness = await start();
    const lid = "230000000000903@lid";
    const pn = "14155550903@s.whatsapp.net";
    await harness.ingest(message("by LID", { jid: lid }));
    await settled(harness, 1);
    const [conversation] = conversationsOf(harness);
    const saved = harness.sim.createContact(harness.accountId, {
      name: "Lia (CRM)",
      phone_number: "+14155550903",
    })["id"] as number;
    await harness.ingest(message("both forms", { jid: pn, lid }));
    await settled(harness, 2);
    expect(contactsOf(harness).map((contact) => contact.id)).toEqual([saved]);
    harness.sim.clearRequests();
    await harness.ingest(message("LID again", { jid: lid }));
    await settled(harness, 3);
    expect(writes(harness)).toEqual(["POST /api/v1/accounts/:id/conversations/:id/messages"]);
    expect(contents(harness, conversation!.id)).toEqual(["by LID", "both forms", "LID again"]);
  });

  it("its contact merged by an agent into the contact with the number: not merged again, the message lands", async () => {
    const harness = await start();
    const lid = "230000000000904@lid";
    const pn = "14155550904@s.whatsapp.net";
    await harness.ingest(message("by LID", { jid: lid }));
    await settled(harness, 1);
    const [byLid] = contactsOf(harness);
    const [conversation] = conversationsOf(harness);
    const saved = harness.sim.createContact(harness.accountId, {
      name: "Lia (CRM)",
      phone_number: "+14155550904",
    })["id"] as number;
    await asAgent(harness, "POST", "/actions/contact_merge", {
      base_contact_id: saved,
      mergee_contact_id: byLid!.id,
    });
    harness.sim.clearRequests();
    // Giving the LID's contact the number answers 404 (it was merged away): the contact with the number is the
    // person's, and there is nothing left to merge.
    await harness.ingest(message("both forms", { jid: pn, lid }));
    await settled(harness, 2);
    expect(merges(harness)).toBe(0);
    expect(contactsOf(harness).map((contact) => contact.id)).toEqual([saved]);
    expect(contents(harness, conversation!.id)).toEqual(["by LID", "both forms"]);
  });

  it("the number already typed on the LID's contact by an agent, the update refused (422): nothing is merged", async () => {
    const harness = await start();
    const lid = "230000000000906@lid";
    const pn = "14155550906@s.whatsapp.net";
    await harness.ingest(message("by LID", { jid: lid }));
    await settled(harness, 1);
    const [contact] = contactsOf(harness);
    const [conversation] = conversationsOf(harness);
    await asAgent(harness, "PATCH", `/contacts/${contact!.id}`, { phone_number: "+14155550906" });
    // Refused for something else than the number (a validation of the contact's other attributes).
    const refused = harness.sim.faults.inject({
      method: "PATCH",
      path: /\/contacts\/\d+$/,
      status: 422,
      body: { message: "Email Invalid email", attributes: ["email"] },
      times: 1,
    });
    harness.sim.clearRequests();
    await harness.ingest(message("both forms", { jid: pn, lid }));
    await settled(harness, 2);
    expect(refused.hits).toBe(1);
    // The contact with the number is the LID's own: Chatwoot is not asked to merge it into itself.
    expect(merges(harness)).toBe(0);
    expect(harness.bridge.counters()["contacts_merged"] ?? 0).toBe(0);
    expect(contactsOf(harness)).toMatchObject([{ id: contact!.id, phone_number: "+14155550906" }]);
    expect(contents(harness, conversation!.id)).toEqual(["by LID", "both forms"]);
  });

  it("its contact deleted by an agent: no warning that the phone number was refused", async () => {
    const lines: Array<{ level: string; msg?: string } & Record<string, unknown>> = [];
    const harness = await start({ bridge: { logger: recordingLogger(lines) } });
    const lid = "230000000000905@lid";
    const pn = "14155550905@s.whatsapp.net";
    await harness.ingest(message("by LID", { jid: lid }));
    await settled(harness, 1);
    const [contact] = contactsOf(harness);
    await asAgent(harness, "DELETE", `/contacts/${contact!.id}`);
    await harness.ingest(message("after the delete", { jid: pn, lid }));
    await settled(harness, 1);
    expect(contactsOf(harness)).toMatchObject([{ phone_number: "+14155550905" }]);
    expect(lines.filter((line) => line.level === "warn")).toEqual([]);
  });
});

describe("Chatwoot's answers when the message was created", () => {
  it("a conversation opened without its first message (a Chatwoot older than 1.15): the dead letter names both", async () => {
    const real = createChatwootApi();
    // Chatwoot before 1.15 ignores the conversation create's `message`: the conversation is opened empty.
    const chatwootApi: ChatwootApi = {
      ...real,
      createConversation: (target, { message: _ignored, ...conversation }, options) =>
        real.createConversation(target, conversation, options),
    };
    const harness = await start({
      bridge: {
        chatwootApi,
        // Given up on at the first failure, so that its reason stays on the item.
        retry: {
          inbound: { baseDelayMs: 20, maxDelayMs: 200, windowMs: 1 },
          outbound: { baseDelayMs: 20, maxDelayMs: 100 },
        },
      },
    });
    const id = nextId();
    await harness.ingest(message("hello", { jid: "14155551001@s.whatsapp.net" }, id));
    expect((await drained(harness))["dead"]).toBe(1);
    const [conversation] = conversationsOf(harness);
    const item = await harness.store.outbox.find(await integrationId(harness), `wa:${id}`);
    expect(item?.lastError).toBe(`conversation ${conversation!.id} was opened without message WAID:${id}`);
  });

  it("a lost message create whose look-up fails (500) is looked up again, not created twice", async () => {
    const harness = await start();
    const jid = "14155551002@s.whatsapp.net";
    await harness.ingest(message("first", { jid }));
    await settled(harness, 1);
    const [conversation] = conversationsOf(harness);
    const messagesPath = /\/conversations\/\d+\/messages$/;
    // Chatwoot saves the message and the answer is lost; the retry's look-up fails twice (500), the first time a
    // moment late: ten agent notes are in by then, so the conversation list no longer shows the message.
    harness.sim.faults.inject({
      method: "POST",
      path: messagesPath,
      afterHandling: true,
      reset: true,
      times: 1,
    });
    harness.sim.faults.inject({ method: "GET", path: messagesPath, delayMs: 300, status: 500, times: 1 });
    harness.sim.faults.inject({ method: "GET", path: messagesPath, status: 500, times: 1 });
    const id = nextId();
    await harness.ingest(message("second", { jid }, id));
    await harness.sim.waitForRequests({ method: "GET", path: messagesPath });
    for (let n = 0; n < 10; n++)
      harness.sim.postAgentMessage({
        accountId: harness.accountId,
        conversationId: conversation!.id,
        userId: harness.agent.id,
        content: `note ${n}`,
        private: true,
      });
    expect((await drained(harness))["dead"]).toBe(0);
    expect(
      chatMessages(harness, conversation!.id).filter((entry) => entry.source_id === `WAID:${id}`),
    ).toHaveLength(1);
    expect(harness.bridge.counters()).toMatchObject({ reconciled: 1 });
  });
});

describe("looking a lost message up within the clock margin", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("Chatwoot's clock exactly 5 minutes behind ours: the message is still found on an older page, not created twice", async () => {
    // Time stands still (timers still run), on a whole second; the bridge's clock is 5 minutes ahead of Chatwoot's,
    // so a message Chatwoot created when the work was stored is exactly at the margin (`CLOCK_MARGIN_MS`).
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Math.floor(Date.now() / 1000) * 1000;
    vi.setSystemTime(t0);
    const harness = await start({ bridge: { clock: { now: () => new Date(Date.now() + 300_000) } } });
    harness.sim.setMessageFloodLimit(10_000);
    const jid = "14155551003@s.whatsapp.net";
    await harness.ingest(message("first", { jid }));
    await settled(harness, 1);
    const [conversation] = conversationsOf(harness);
    const messagesPath = /\/conversations\/\d+\/messages$/;
    harness.sim.faults.inject({
      method: "POST",
      path: messagesPath,
      afterHandling: true,
      reset: true,
      times: 1,
    });
    const id = nextId();
    await harness.ingest(message("second", { jid }, id));
    const integration = await integrationId(harness);
    // Saved, its answer lost: the retry waits for the clock to move on.
    await eventually(
      async () => ((await harness.store.outbox.find(integration, `wa:${id}`))?.attempts ?? 0) >= 1,
    );
    expect(totalMessages(harness)).toBe(2);
    // 25 agent notes in the same second: the latest page (20) ends at the margin, the message is on the page before.
    for (let n = 0; n < 25; n++)
      harness.sim.postAgentMessage({
        accountId: harness.accountId,
        conversationId: conversation!.id,
        userId: harness.agent.id,
        content: `note ${n}`,
        private: true,
      });
    vi.setSystemTime(t0 + 500);
    expect((await drained(harness))["dead"]).toBe(0);
    expect(
      chatMessages(harness, conversation!.id).filter((entry) => entry.source_id === `WAID:${id}`),
    ).toHaveLength(1);
    expect(harness.bridge.counters()).toMatchObject({ reconciled: 1 });
  });
});
