// WhatsApp → Chatwoot: every Chatwoot request of a delivery is bound to its outbox item's deadline
// (`dispatcher.itemTimeoutMs`), not only to the HTTP client's own timeout. These tests came from mutation testing
// (docs/testing.md, "Mutation report"): in packages/core/src/routing/inbound.ts, each call site below passed its
// `{ signal }` and no test noticed when it was dropped.
//
// What a dropped signal does: past the deadline the dispatcher frees the item's slot and queues the item again
// anyway, but the abandoned attempt keeps its Chatwoot request open until Chatwoot answers (or the client's timeout,
// here 2 minutes), and then carries on side by side with the retry (a second message, conversation or contact; a
// stale status over a newer one). So each test makes Chatwoot hang exactly one request for a minute (the simulator's
// `delayMs` fault, packages/testkit/src/simulator/faults.ts, which handles a request only if its client is still
// there when the delay ends) and checks, well before that minute: the message arrived once, through the retry, and
// nothing is left waiting for the hung request's answer (the bridge's Chatwoot client, host-provided through
// `chatwootApi`, has no call in flight).
//
// Chatwoot facts used: `POST …/actions/contact_merge` moves the mergee's conversations and contact inboxes to the base
// contact and destroys the mergee (app/actions/contact_merge_action.rb); conversations#index filters by our contact
// inbox's `source_id` (app/finders/conversation_finder.rb); the messages index answers the latest 20
// (app/finders/message_finder.rb).
import type { WhatsAppEvent } from "@ryze/chatwoot-core";
import { type ChatwootApi, createChatwootApi } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import type { FaultOptions } from "../simulator/index.js";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { allMessages, chatMessages, conversationsOf } from "./inspect.js";

/** The item's deadline: long enough for any normal attempt on a busy machine, far below the hang. */
const ITEM_DEADLINE_MS = 1_000;
/** The bridge's Chatwoot client gives up on a request only after this (its default is 15 s). */
const CHATWOOT_TIMEOUT_MS = 120_000;
/** How long Chatwoot hangs the one request: far beyond `eventually`'s 10 s. */
const HANG_MS = 60_000;

let h: RoutingHarness | undefined;
let api: ChatwootApi | undefined;
afterEach(async () => {
  // The simulator closes first: it drops the connection of a request still hanging, so the client closes at once.
  await h?.close();
  h = undefined;
  await api?.close();
  api = undefined;
});

/**
 * The bridge's Chatwoot client (the real one, with a long timeout), which tells which of its calls are waiting for
 * Chatwoot's answer.
 */
function watchedApi() {
  const real = createChatwootApi({ timeoutMs: CHATWOOT_TIMEOUT_MS });
  api = real;
  const waiting = new Map<number, string>();
  let next = 0;
  const chatwootApi = Object.fromEntries(
    Object.entries(real).map(([name, method]) => [
      name,
      name === "close"
        ? method
        : (...args: unknown[]) => {
            const call = ++next;
            waiting.set(call, name);
            return (method as (...a: unknown[]) => Promise<unknown>)(...args).finally(() =>
              waiting.delete(call),
            );
          },
    ]),
  ) as unknown as ChatwootApi;
  return { chatwootApi, waiting: () => [...waiting.values()] };
}

let sequence = 0;
const nextId = () => `3EB0DLE${Date.now().toString(16).toUpperCase()}${String(++sequence).padStart(4, "0")}`;

/** An incoming text in a private chat, addressed as given (`lid` in the chat and sender: both forms known). */
function text(content: string, address: { jid: string; lid?: string }, id = nextId()): WhatsAppEvent {
  return {
    event: "message.exchange",
    data: {
      id,
      message: {
        id,
        direction: "incoming",
        timestamp: new Date().toISOString(),
        chat: { ...address, type: "private", name: "Maria" },
        sender: { ...address, name: "Maria" },
        content: { text: content },
      },
    },
  };
}

async function integrationId(): Promise<string> {
  return (await h!.store.integrations.get("suporte"))!.id;
}

/** Nothing pending or claimed in the outbox, and nothing went dead. */
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

/** The messages of the account (private notes included) with this WhatsApp id's `source_id`. */
const withSource = (waId: string) =>
  allMessages(h!.sim, h!.accountId).filter((message) => message.source_id === `WAID:${waId}`);

/** Ingests and waits until the message is in Chatwoot and the outbox drained. */
async function delivered(event: WhatsAppEvent): Promise<void> {
  await h!.ingest(event);
  const id = (event.data as { id: string }).id;
  await eventually(() => withSource(id).length === 1, { what: `message ${id} in Chatwoot` });
  await drained();
}

const account = () => `/api/v1/accounts/${h!.accountId}`;
const exact = (path: string) => new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);

/** A person first seen by LID, then by phone: two chats, two contacts, two conversations. */
async function twoChatsOfOnePerson(lid: string, pn: string): Promise<void> {
  await delivered(text("by LID", { jid: lid }));
  await delivered(text("by phone", { jid: pn }));
  expect(h!.sim.contacts(h!.accountId)).toHaveLength(2);
}

/** An agent reply sent to WhatsApp and recorded; its Chatwoot and WhatsApp ids. */
async function sentReply(
  phone: string,
): Promise<{ conversationId: number; messageId: number; waId: string }> {
  await delivered(textEvent({ phone, text: "hello" }));
  const conversationId = conversationsOf(h!)[0]!.id;
  const messageId = h!.sim.postAgentMessage({
    accountId: h!.accountId,
    conversationId,
    userId: h!.agent.id,
    content: "on its way",
  })["id"] as number;
  const sent = await eventually(() => h!.gateway.sent("suporte")[0], { what: "the reply sent" });
  // A receipt may only come once the reply's parts are recorded.
  const id = await integrationId();
  await eventually(async () => (await h!.store.mappings.getMessagesByWa(id, sent.id)).length === 1);
  await drained();
  return { conversationId, messageId, waId: sent.id };
}

interface Scenario {
  /** The `{ signal }` of packages/core/src/routing/inbound.ts this reaches. */
  site: string;
  what: string;
  flags?: { importHistoryDays?: number };
  /** Makes the state the call site needs. */
  prepare?: () => Promise<unknown>;
  /** The request that hangs (once). */
  hang: () => Pick<FaultOptions, "method" | "path">;
  /** Faults applied first (once each): a failed attempt, so that the hang hits the retry's look-up. */
  before?: () => FaultOptions[];
  /** What WhatsApp sends; `prepared` is what `prepare` answered. */
  send: (prepared: unknown) => WhatsAppEvent;
  /** Whether what the user expects is in Chatwoot: the message, exactly once. */
  arrived: (event: WhatsAppEvent, prepared: unknown) => boolean;
}

const once = (event: WhatsAppEvent) => withSource((event.data as { id: string }).id).length === 1;
/** Chatwoot refuses the first create (a 503 before saving anything): the item is retried, `retrying`. */
const refusedOnce = (path: () => string): FaultOptions => ({
  method: "POST",
  path: exact(path()),
  status: 503,
  body: "Service Unavailable",
});

const scenarios: Scenario[] = [
  {
    site: "186 findByPhone: searchContacts",
    what: "a new Brazilian mobile number (its contact is first searched by the number's last 8 digits)",
    hang: () => ({ method: "GET", path: exact(`${account()}/contacts/search`) }),
    send: () => text("primeira mensagem", { jid: "5511987650186@s.whatsapp.net" }),
    arrived: once,
  },
  {
    site: "196 attachOrFind: findContactBySourceId",
    what: "a contact saved without the 9th digit, found by phone: who holds our contact inbox is asked first",
    prepare: async () =>
      h!.sim.createContact(h!.accountId, { name: "Seu João", phone_number: "+552187760196" }),
    hang: () => ({ method: "POST", path: exact(`${account()}/contact_inboxes/filter`) }),
    send: () => text("com o nono dígito", { jid: "5521987760196@s.whatsapp.net" }),
    arrived: (event, saved) =>
      once(event) &&
      h!.sim.contacts(h!.accountId).length === 1 &&
      h!.sim.contacts(h!.accountId)[0]!["id"] === (saved as { id: number }).id,
  },
  {
    site: "317 givePhone: updateContact",
    what: "a chat first seen by LID, then both forms: its contact gets the phone number",
    prepare: () => delivered(text("by LID", { jid: "230000000000317@lid" })),
    hang: () => ({ method: "PATCH", path: /\/contacts\/\d+$/ }),
    send: () => text("both forms", { jid: "14155550317@s.whatsapp.net", lid: "230000000000317@lid" }),
    arrived: (event) =>
      once(event) &&
      h!.sim.contacts(h!.accountId).length === 1 &&
      h!.sim.contacts(h!.accountId)[0]!["phone_number"] === "+14155550317",
  },
  {
    site: "341 mergeContacts: mergeContacts",
    what: "a person with a LID chat and a phone chat, then both forms: the contacts are merged",
    prepare: () => twoChatsOfOnePerson("230000000000341@lid", "14155550341@s.whatsapp.net"),
    hang: () => ({ method: "POST", path: exact(`${account()}/actions/contact_merge`) }),
    send: () => text("both forms", { jid: "14155550341@s.whatsapp.net", lid: "230000000000341@lid" }),
    arrived: (event) => once(event) && h!.sim.contacts(h!.accountId).length === 1,
  },
  {
    site: "371 mergeChats: toggleConversationStatus",
    what: "a person with a LID chat and a phone chat, then both forms: the LID chat's conversation is resolved",
    prepare: () => twoChatsOfOnePerson("230000000000371@lid", "14155550371@s.whatsapp.net"),
    hang: () => ({ method: "POST", path: /\/conversations\/\d+\/toggle_status$/ }),
    send: () => text("both forms", { jid: "14155550371@s.whatsapp.net", lid: "230000000000371@lid" }),
    arrived: (event) =>
      once(event) &&
      conversationsOf(h!).filter((conversation) => conversation.status === "open").length === 1,
  },
  {
    site: "409 openConversation: createConversation",
    what: "a new chat: its conversation is opened with the message",
    hang: () => ({ method: "POST", path: exact(`${account()}/conversations`) }),
    send: () => text("first message", { jid: "14155550409@s.whatsapp.net" }),
    arrived: (event) => once(event) && conversationsOf(h!).length === 1,
  },
  {
    site: "449 findMessage: listMessages",
    what: "a known chat whose create was refused: the retry looks the message up in the conversation",
    prepare: () => delivered(text("warm", { jid: "14155550449@s.whatsapp.net" })),
    before: () => [refusedOnce(() => `${account()}/conversations/${conversationsOf(h!)[0]!.id}/messages`)],
    hang: () => ({
      method: "GET",
      path: exact(`${account()}/conversations/${conversationsOf(h!)[0]!.id}/messages`),
    }),
    send: () => text("second", { jid: "14155550449@s.whatsapp.net" }),
    arrived: (event) => once(event) && chatMessages(h!, conversationsOf(h!)[0]!.id).length === 2,
  },
  {
    site: "483 findEarlierAttempt: listConversationsBySourceId",
    what: "a new chat whose conversation create was refused: the retry looks for a conversation it opened",
    before: () => [refusedOnce(() => `${account()}/conversations`)],
    hang: () => ({ method: "GET", path: exact(`${account()}/conversations`) }),
    send: () => text("first message", { jid: "14155550483@s.whatsapp.net" }),
    arrived: (event) => once(event) && conversationsOf(h!).length === 1,
  },
  {
    site: "634 deliverMessage: createMessage",
    what: "a known chat: the message goes into its conversation",
    prepare: () => delivered(text("warm", { jid: "14155550634@s.whatsapp.net" })),
    hang: () => ({ method: "POST", path: /\/conversations\/\d+\/messages$/ }),
    send: () => text("second", { jid: "14155550634@s.whatsapp.net" }),
    arrived: (event) => once(event) && chatMessages(h!, conversationsOf(h!)[0]!.id).length === 2,
  },
  {
    site: "688 importOlder: listConversationsBySourceId",
    what: "an older history message whose note create was refused: the retry looks for the history conversation",
    flags: { importHistoryDays: 30 },
    before: () => [refusedOnce(() => `${account()}/conversations`)],
    hang: () => ({ method: "GET", path: exact(`${account()}/conversations`) }),
    send: () => {
      const event = text("an hour before the activation", { jid: "14155550688@s.whatsapp.net" });
      const message = (event.data as { message: Record<string, unknown> }).message;
      message["timestamp"] = new Date(Date.now() - 3_600_000).toISOString();
      message["history"] = true;
      return event;
    },
    arrived: (event) =>
      once(event) &&
      withSource((event.data as { id: string }).id)[0]!.private &&
      conversationsOf(h!).length === 1 &&
      conversationsOf(h!)[0]!.status === "resolved",
  },
  {
    site: "813 deliverReceipt: updateMessageStatus",
    what: "a read receipt of an agent reply: the Chatwoot message's status",
    prepare: () => sentReply("14155550813"),
    hang: () => ({ method: "PATCH", path: /\/conversations\/\d+\/messages\/\d+$/ }),
    send: (reply) => ({
      event: "message.status",
      data: {
        id: (reply as { waId: string }).waId,
        chat: { jid: "14155550813@s.whatsapp.net" },
        status: "read",
      },
    }),
    arrived: (_event, reply) => {
      const { conversationId, messageId } = reply as { conversationId: number; messageId: number };
      return chatMessages(h!, conversationId).find((message) => message.id === messageId)?.status === "read";
    },
  },
];

describe("WhatsApp → Chatwoot: a Chatwoot request that hangs is given up at the item's deadline", () => {
  it.each(scenarios.map((scenario) => [`${scenario.site}: ${scenario.what}`, scenario] as const))(
    "inbound.ts:%s",
    async (_name, scenario) => {
      const { chatwootApi, waiting } = watchedApi();
      h = await startRoutingHarness({
        bridge: { chatwootApi, dispatcher: { pollIntervalMs: 20, itemTimeoutMs: ITEM_DEADLINE_MS } },
        ...(scenario.flags ? { flags: scenario.flags } : {}),
      });
      const prepared = await scenario.prepare?.();
      for (const fault of scenario.before?.() ?? []) h.sim.faults.inject({ ...fault, times: 1 });
      const target = scenario.hang();
      const hung = h.sim.faults.inject({ ...target, delayMs: HANG_MS, times: 1 });
      const event = scenario.send(prepared);
      await h.ingest(event);

      // Delivered by a retry, long before Chatwoot would have answered the hung request.
      await eventually(() => scenario.arrived(event, prepared), { what: "the message in Chatwoot" });
      expect(hung.hits).toBe(1);
      expect(h.sim.countRequests(target)).toBeGreaterThanOrEqual(2);
      // The hung request was cut at the deadline: nothing still waits for its answer, to carry on beside the retry.
      await eventually(
        () => {
          const left = waiting();
          if (left.length > 0) throw new Error(`still waiting for Chatwoot: ${left.join(", ")}`);
          return true;
        },
        { what: "no Chatwoot call left waiting" },
      );
      await drained();
      expect(scenario.arrived(event, prepared)).toBe(true);
    },
  );
});
