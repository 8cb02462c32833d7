import type { WhatsAppGateway } from "@ryze/chatwoot-core";
import { type ChatwootApi, ChatwootRequestError, createChatwootApi } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import type { RecordedRequest } from "../simulator/index.js";
import { createSimulatedWhatsAppGateway } from "../whatsapp/index.js";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

// WhatsApp → Chatwoot delivery edges that mutation testing found unchecked (docs/testing.md, "Mutation report"): how
// a retried delivery, whose earlier attempt's outcome is unknown, looks its message up by source_id (`WAID:<id>`)
// before creating it again (docs/routing.md, "Failures and retries"); echoes of our own sends and replayed events;
// quotes, reactions and the sender prefix in groups; a media message whose file the event does not carry.
//
// Chatwoot's messages index answers the latest 20 messages, and 20 older than `before=<id>`
// (`MessageFinder#current_messages`, app/finders/message_finder.rb). Its conversation list, filtered by our contact
// inbox's source_id, is sorted by last activity, newest first (`ConversationFinder`, sort `latest`); each entry carries
// the conversation's last message, or its last unread incoming ones (`_conversation.json.jbuilder`).

let h: RoutingHarness | undefined;
let api: ChatwootApi | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
  await api?.close();
  api = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function integrationId(): Promise<string> {
  return (await h!.store.integrations.get("suporte"))!.id;
}

/** Waits until every stored event is delivered (a message is in Chatwoot a moment before it is recorded). */
async function settled(): Promise<void> {
  const id = await integrationId();
  await eventually(
    async () => {
      const counts = await h!.store.outbox.count(id);
      return counts.pending === 0 && counts.claimed === 0;
    },
    { what: "every item delivered" },
  );
}

/** A realtime reconnect (missed 200 ms pings on a loaded machine) adds a backfill's reads of messages. */
const reconnected = () => h!.sim.requests.some((request) => request.path === "/cable");

const messageReads = (conversationId: number, older?: "older"): RecordedRequest[] =>
  h!.sim.requests.filter(
    (request) =>
      request.method === "GET" &&
      request.path.endsWith(`/conversations/${conversationId}/messages`) &&
      (older ? request.query["before"] !== undefined : true),
  );

/** The searches of our contact inbox's conversations (`GET …/conversations?source_id=`). */
const sourceIdSearches = (): RecordedRequest[] =>
  h!.sim.requests.filter(
    (request) =>
      request.method === "GET" &&
      /\/conversations$/.test(request.path) &&
      request.query["source_id"] !== undefined,
  );

function timedOut(target: { baseUrl: string }, path: string): ChatwootRequestError {
  return new ChatwootRequestError({
    kind: "transport",
    method: "POST",
    url: `${target.baseUrl}${path}`,
    cause: "timed out after 15000ms",
    code: "TIMEOUT",
  });
}

/**
 * A Chatwoot client whose next create (of a message, or of a conversation with its first message) is saved, then,
 * before its answer is lost (a timeout), lets the test act on Chatwoot (`meanwhile`): what happens between the
 * attempt and its retry.
 */
function lossyApi() {
  const real = createChatwootApi();
  api = real;
  const lose: {
    message: ((conversationId: number) => Promise<void>) | null;
    conversation: ((conversationId: number) => Promise<void>) | null;
  } = { message: null, conversation: null };
  const chatwootApi: ChatwootApi = {
    ...real,
    async createMessage(target, conversationId, input, options) {
      const created = await real.createMessage(target, conversationId, input, options);
      const meanwhile = lose.message;
      if (!meanwhile) return created;
      lose.message = null;
      await meanwhile(conversationId);
      throw timedOut(target, `/conversations/${conversationId}/messages`);
    },
    async createConversation(target, input, options) {
      const created = await real.createConversation(target, input, options);
      const meanwhile = lose.conversation;
      if (!meanwhile) return created;
      lose.conversation = null;
      await meanwhile(created.id);
      throw timedOut(target, "/conversations");
    },
  };
  return { chatwootApi, lose };
}

function note(conversationId: number, content: string) {
  h!.sim.postAgentMessage({
    accountId: h!.accountId,
    conversationId,
    userId: h!.agent.id,
    content,
    private: true,
  });
}

/** Resolves the chat's conversation and waits until the bridge forgot it (`reopenResolved: false`). */
async function resolveAndForget(jid: string, conversationId: number): Promise<void> {
  h!.sim.setConversationStatus(h!.accountId, conversationId, "resolved", { userId: h!.agent.id });
  const id = await integrationId();
  await eventually(async () => (await h!.store.mappings.getChat(id, jid))?.conversationId === null, {
    what: "the resolved conversation forgotten",
  });
}

const ofSource = (conversationId: number, sourceId: string) =>
  chatMessages(h!, conversationId).filter((message) => message.source_id === sourceId);

describe("WhatsApp → Chatwoot: a retry looks the message up in the chat's conversation", () => {
  it("a create Chatwoot refused before saving costs one read of the latest messages, no older page and no search", async () => {
    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: "5511933330001", text: "warm" }));
    await eventually(() => totalMessages(h!) === 1);
    await settled();
    const [conversation] = conversationsOf(h);
    h.sim.faults.inject({ method: "POST", path: /\/messages$/, times: 1, status: 503, body: "Unavailable" });
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: "5511933330001", text: "refused once", id: "3EB0EDGEREFUSED01" }));
    await eventually(() => totalMessages(h!) === 2, { what: "the retried message" });
    await settled();
    expect(chatMessages(h, conversation!.id).map((message) => [message.content, message.source_id])).toEqual([
      ["warm", expect.stringMatching(/^WAID:/)],
      ["refused once", "WAID:3EB0EDGEREFUSED01"],
    ]);
    expect(h.bridge.counters().reconciled ?? 0).toBe(0);
    // The conversation has two messages: its latest page is short, so nothing older exists to read; and it is
    // there, so our contact inbox's conversations are not searched.
    expect(messageReads(conversation!.id).length).toBeGreaterThanOrEqual(1);
    if (!reconnected()) expect(messageReads(conversation!.id, "older")).toEqual([]);
    expect(sourceIdSearches()).toEqual([]);
    expect(h.sim.countRequests({ method: "POST", path: /\/messages$/ })).toBe(2);
  });

  it("a saved message that a full page of agent notes buried before the retry is found on an older page: it exists once", async () => {
    const { chatwootApi, lose } = lossyApi();
    h = await startRoutingHarness({ bridge: { chatwootApi } });
    await h.ingest(textEvent({ phone: "5511933330002", text: "warm" }));
    await eventually(() => totalMessages(h!) === 1);
    await settled();
    const [conversation] = conversationsOf(h);
    // Saved, then 20 notes while the answer is lost: the latest page holds only the notes.
    lose.message = async (conversationId) => {
      for (let i = 0; i < 20; i++) note(conversationId, `note ${i}`);
    };
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: "5511933330002", text: "buried", id: "3EB0EDGEBURIED001" }));
    await eventually(() => h!.bridge.counters().reconciled === 1, { what: "the retry reconciled" });
    await settled();
    expect(ofSource(conversation!.id, "WAID:3EB0EDGEBURIED001")).toHaveLength(1);
    expect(h.sim.countRequests({ method: "POST", path: /\/messages$/ })).toBe(1);
    expect(messageReads(conversation!.id, "older").length).toBeGreaterThanOrEqual(1);
    // It is mapped: a quote of it threads to it.
    const buried = ofSource(conversation!.id, "WAID:3EB0EDGEBURIED001")[0]!;
    await h.ingest(textEvent({ phone: "5511933330002", text: "see above", quoted: "3EB0EDGEBURIED001" }));
    await eventually(() => totalMessages(h!) === 3);
    expect(chatMessages(h, conversation!.id).at(-1)).toMatchObject({
      content: "see above",
      content_attributes: { in_reply_to: buried.id, in_reply_to_external_id: "WAID:3EB0EDGEBURIED001" },
    });
  });

  it("the look-up goes no further back than the work's age: a full page of older messages ends it", async () => {
    // The bridge's clock runs 10 minutes ahead: every message in Chatwoot is older than the work minus the 5 minutes
    // of clock margin.
    const ahead = 10 * 60_000;
    h = await startRoutingHarness({ bridge: { clock: { now: () => new Date(Date.now() + ahead) } } });
    await h.ingest(textEvent({ phone: "5511933330003", text: "warm" }));
    await eventually(() => totalMessages(h!) === 1);
    await settled();
    const [conversation] = conversationsOf(h);
    for (let i = 0; i < 25; i++) note(conversation!.id, `old note ${i}`);
    h.sim.faults.inject({ method: "POST", path: /\/messages$/, times: 1, status: 503, body: "Unavailable" });
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: "5511933330003", text: "after the notes", id: "3EB0EDGEAGED00001" }));
    await eventually(() => totalMessages(h!) === 2, { what: "the retried message" });
    await settled();
    expect(ofSource(conversation!.id, "WAID:3EB0EDGEAGED00001")).toHaveLength(1);
    expect(h.sim.countRequests({ method: "POST", path: /\/messages$/ })).toBe(2);
    expect(messageReads(conversation!.id).length).toBeGreaterThanOrEqual(1);
    if (!reconnected()) expect(messageReads(conversation!.id, "older")).toEqual([]);
  });

  it("when the chat's conversation was deleted with its contact, the retry searches the contact inbox, then opens a new one", async () => {
    h = await startRoutingHarness();
    const jid = "5511933330004@s.whatsapp.net";
    await h.ingest(textEvent({ phone: "5511933330004", text: "warm" }));
    await eventually(() => totalMessages(h!) === 1);
    await settled();
    const [contact] = h.sim.contacts(h.accountId);
    const res = await fetch(`${h.sim.url}/api/v1/accounts/${h.accountId}/contacts/${contact!["id"]}`, {
      method: "DELETE",
      headers: { api_access_token: h.agent.accessToken },
    });
    expect(res.status).toBe(200);
    expect(conversationsOf(h)).toEqual([]);
    h.sim.faults.inject({ method: "POST", path: /\/messages$/, times: 1, status: 503, body: "Unavailable" });
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: "5511933330004", text: "anyone?", id: "3EB0EDGEGONE00001" }));
    await eventually(() => totalMessages(h!) === 1, { what: "the message in a new conversation" });
    await settled();
    // The conversation answered 404: the earlier attempt may have opened another one for our contact inbox.
    expect(sourceIdSearches().map((request) => request.query["source_id"])).toEqual([jid]);
    const [conversation] = conversationsOf(h);
    expect(chatMessages(h, conversation!.id).map((message) => message.source_id)).toEqual([
      "WAID:3EB0EDGEGONE00001",
    ]);
  });
});

describe("WhatsApp → Chatwoot: a retry looks a lost conversation create up among the contact inbox's conversations", () => {
  it("it takes the newest conversation, whatever order Chatwoot lists them in, and reads no messages when its card shows ours", async () => {
    const { chatwootApi, lose } = lossyApi();
    h = await startRoutingHarness({ flags: { reopenResolved: false }, bridge: { chatwootApi } });
    const phone = "5511933330005";
    const jid = `${phone}@s.whatsapp.net`;
    // Two earlier conversations, both resolved.
    await h.ingest(textEvent({ phone, text: "first visit" }));
    await eventually(() => totalMessages(h!) === 1);
    await settled();
    const first = conversationsOf(h)[0]!.id;
    await resolveAndForget(jid, first);
    await h.ingest(textEvent({ phone, text: "second visit" }));
    await eventually(() => totalMessages(h!) === 2);
    await settled();
    const second = conversationsOf(h).find((conversation) => conversation.id !== first)!.id;
    await resolveAndForget(jid, second);
    // The third one is opened, then a note in the first makes it the most recently active.
    let opened = 0;
    lose.conversation = async (conversationId) => {
      opened = conversationId;
      await sleep(5);
      note(first, "a note on an old case");
    };
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone, text: "third visit", id: "3EB0EDGENEWEST001" }));
    await eventually(() => h!.bridge.counters().reconciled === 1, { what: "the retry reconciled" });
    await settled();
    expect(opened).toBeGreaterThan(second);
    expect(conversationsOf(h).map((conversation) => [conversation.id, conversation.status])).toEqual([
      [first, "resolved"],
      [second, "resolved"],
      [opened, "open"],
    ]);
    expect(ofSource(opened, "WAID:3EB0EDGENEWEST001")).toHaveLength(1);
    expect(h.sim.countRequests({ method: "POST", path: /\/conversations$/ })).toBe(1);
    // The search's answer showed the message in the conversation's card: no read of its messages.
    if (!reconnected()) expect(messageReads(opened)).toEqual([]);
    // The chat follows it: the next message lands there.
    await h.ingest(textEvent({ phone, text: "still me" }));
    await eventually(() => totalMessages(h!) === 4);
    expect(chatMessages(h, opened).map((message) => message.content)).toEqual(["third visit", "still me"]);
  });

  it("a conversation an agent resolved before the retry is not followed (reopenResolved off): the next message opens another", async () => {
    const { chatwootApi, lose } = lossyApi();
    h = await startRoutingHarness({ flags: { reopenResolved: false }, bridge: { chatwootApi } });
    const phone = "5511933330006";
    let opened = 0;
    lose.conversation = async (conversationId) => {
      opened = conversationId;
      h!.sim.clearBroadcasts();
      h!.sim.setConversationStatus(h!.accountId, conversationId, "resolved", { userId: h!.agent.id });
      // The bridge hears of it (nothing follows that conversation yet) before the retry.
      await h!.sim.waitForBroadcasts({ event: "conversation.status_changed", conversationId });
      await sleep(300);
    };
    await h.ingest(textEvent({ phone, text: "hello", id: "3EB0EDGERESOLVED1" }));
    await eventually(() => h!.bridge.counters().reconciled === 1, { what: "the retry reconciled" });
    await settled();
    expect(ofSource(opened, "WAID:3EB0EDGERESOLVED1")).toHaveLength(1);
    await h.ingest(textEvent({ phone, text: "a new question" }));
    await eventually(() => totalMessages(h!) === 2);
    const conversations = conversationsOf(h);
    expect(conversations.map((conversation) => conversation.status)).toEqual(["resolved", "open"]);
    expect(conversations[0]!.id).toBe(opened);
    expect(chatMessages(h, conversations[1]!.id).map((message) => message.content)).toEqual([
      "a new question",
    ]);
  });

  it("a phone-typed first message whose card shows a later note is found by reading the messages, and a quote threads to it", async () => {
    const { chatwootApi, lose } = lossyApi();
    h = await startRoutingHarness({ bridge: { chatwootApi } });
    const phone = "5511933330007";
    let opened = 0;
    // Nothing incoming is unread: the conversation's card shows its last message only, the note.
    lose.conversation = async (conversationId) => {
      opened = conversationId;
      note(conversationId, "customer called us first");
    };
    await h.ingest(
      textEvent({ phone, text: "typed on the phone", direction: "outgoing", id: "3EB0EDGEPHONE0001" }),
    );
    await eventually(() => h!.bridge.counters().reconciled === 1, { what: "the retry reconciled" });
    await settled();
    expect(conversationsOf(h)).toHaveLength(1);
    const typed = ofSource(opened, "WAID:3EB0EDGEPHONE0001");
    expect(typed).toHaveLength(1);
    await h.ingest(textEvent({ phone, text: "what you said", quoted: "3EB0EDGEPHONE0001" }));
    await eventually(() => totalMessages(h!) === 2);
    expect(chatMessages(h, opened).at(-1)).toMatchObject({
      content: "what you said",
      content_attributes: { in_reply_to: typed[0]!.id, in_reply_to_external_id: "WAID:3EB0EDGEPHONE0001" },
    });
  });
});

describe("WhatsApp → Chatwoot: echoes of our sends and replayed events", () => {
  it("our send's echo that arrives before the gateway answers waits for the send to be recorded: the reply shows once", async () => {
    const inner = createSimulatedWhatsAppGateway();
    let echo: ((id: string, to: string, text: string) => Promise<unknown>) | null = null;
    // The phone reports the message it just sent before the gateway's answer (with its id) is back.
    const gateway: WhatsAppGateway = {
      supportsRevoke: true,
      async send(message) {
        const result = await inner.send(message);
        await echo?.(result.id, message.to, message.text ?? "");
        await sleep(50);
        return result;
      },
    };
    h = await startRoutingHarness({ bridge: { gateway } });
    echo = (id, to, text) =>
      h!.ingest(textEvent({ phone: to.split("@")[0]!, text, direction: "outgoing", id }));
    await h.ingest(textEvent({ phone: "5511933330008", text: "hi" }));
    await eventually(() => totalMessages(h!) === 1);
    await settled();
    const [conversation] = conversationsOf(h);
    h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId: conversation!.id,
      userId: h.agent.id,
      content: "hello from the team",
    });
    await eventually(() => h!.bridge.counters().echo_skipped === 1, { what: "the echo recognised as ours" });
    await settled();
    expect(inner.sent("suporte")).toHaveLength(1);
    expect(chatMessages(h, conversation!.id).map((message) => message.content)).toEqual([
      "hi",
      "hello from the team",
    ]);
    expect(h.bridge.counters().duplicate_skipped ?? 0).toBe(0);
  });

  it("a customer's message is not held back by the wait for echoes of our sends", async () => {
    h = await startRoutingHarness({ bridge: { echoWaitMs: 10_000 } });
    await h.ingest(textEvent({ phone: "5511933330009", text: "quick one" }));
    await eventually(() => totalMessages(h!) === 1, { what: "the message, at once", timeoutMs: 3_000 });
  });

  it("a WhatsApp event replayed after the outbox forgot it is recognised by its mapping: nothing is created again", async () => {
    h = await startRoutingHarness({ bridge: { retention: { doneMs: 1, intervalMs: 50 } } });
    const event = textEvent({ phone: "5511933330010", text: "once", id: "3EB0EDGEREPLAY001" });
    await h.ingest(event);
    await eventually(() => totalMessages(h!) === 1);
    const id = await integrationId();
    // Gone from the outbox: not claimed any more (the message shows a moment before its item is done), and pruned.
    await eventually(
      async () => {
        const counts = await h!.store.outbox.count(id);
        return counts.pending + counts.claimed + counts.done === 0;
      },
      { what: "the item pruned" },
    );
    await expect(h.ingest(event)).resolves.toMatchObject({ duplicate: false });
    await eventually(() => h!.bridge.counters().duplicate_skipped === 1, { what: "the replay skipped" });
    expect(totalMessages(h)).toBe(1);
    expect(h.bridge.counters().echo_skipped ?? 0).toBe(0);
  });
});

describe("WhatsApp → Chatwoot: quotes, reactions, groups and missing files", () => {
  const PHONE = "5511933330011";

  function reaction(targetId: string, emoji: string) {
    const event = textEvent({ phone: PHONE, text: "" });
    (event.data.message as Record<string, unknown>)["reaction"] = { targetId, emoji };
    return event;
  }

  it("a reaction removed on WhatsApp shows as such, threaded to its message", async () => {
    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: PHONE, text: "nice?", id: "3EB0EDGEREACTED01" }));
    await eventually(() => totalMessages(h!) === 1);
    await h.ingest(reaction("3EB0EDGEREACTED01", "👍"));
    await h.ingest(reaction("3EB0EDGEREACTED01", ""));
    await eventually(() => totalMessages(h!) === 3);
    const [conversation] = conversationsOf(h);
    const [original, liked, removed] = chatMessages(h, conversation!.id);
    expect(liked).toMatchObject({ content: "👍", content_attributes: { in_reply_to: original!.id } });
    expect(removed).toMatchObject({
      content: "(reaction removed)",
      content_attributes: { in_reply_to: original!.id },
    });
  });

  it("a reaction in a chat whose conversation was resolved and forgotten opens no conversation", async () => {
    h = await startRoutingHarness({ flags: { reopenResolved: false } });
    await h.ingest(textEvent({ phone: PHONE, text: "thanks, bye", id: "3EB0EDGELASTWORD1" }));
    await eventually(() => totalMessages(h!) === 1);
    await settled();
    const [conversation] = conversationsOf(h);
    await resolveAndForget(`${PHONE}@s.whatsapp.net`, conversation!.id);
    await h.ingest(reaction("3EB0EDGELASTWORD1", "❤️"));
    await eventually(() => h!.bridge.counters().annotation_without_conversation === 1, {
      what: "the reaction skipped",
    });
    await settled();
    expect(conversationsOf(h).map((entry) => [entry.id, entry.status])).toEqual([
      [conversation!.id, "resolved"],
    ]);
    expect(totalMessages(h)).toBe(1);
  });

  it("a customer's quote of an agent's reply threads to that reply", async () => {
    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: PHONE, text: "can you help?" }));
    await eventually(() => totalMessages(h!) === 1);
    await settled();
    const [conversation] = conversationsOf(h);
    const reply = h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId: conversation!.id,
      userId: h.agent.id,
      content: "sure, what is it?",
    });
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    await settled();
    const [sent] = h.gateway.sent("suporte");
    await h.ingest(textEvent({ phone: PHONE, text: "this one", quoted: sent!.id }));
    await eventually(() => totalMessages(h!) === 3);
    expect(chatMessages(h, conversation!.id).at(-1)).toMatchObject({
      content: "this one",
      content_attributes: { in_reply_to: reply["id"] },
    });
  });

  it("in a group, a message typed on the phone has no sender prefix, and a message without a sender is from *unknown*", async () => {
    h = await startRoutingHarness();
    const group = { jid: "120363000000000077@g.us", subject: "Team" };
    await h.ingest(textEvent({ phone: PHONE, text: "hi all", group, name: "Ana" }));
    await eventually(() => totalMessages(h!) === 1);
    await h.ingest(textEvent({ phone: PHONE, text: "typed on the phone", group, direction: "outgoing" }));
    await eventually(() => totalMessages(h!) === 2);
    const anonymous = textEvent({ phone: PHONE, text: "who am I?", group });
    delete (anonymous.data.message as Record<string, unknown>)["sender"];
    await h.ingest(anonymous);
    await eventually(() => totalMessages(h!) === 3);
    const [conversation] = conversationsOf(h);
    expect(
      chatMessages(h, conversation!.id).map((message) => [message.content, message.message_type]),
    ).toEqual([
      ["*Ana*:\nhi all", 0],
      ["typed on the phone", 1],
      ["*unknown*:\nwho am I?", 0],
    ]);
  });

  it("a media message that carries neither its bytes nor a URL arrives as a note saying so", async () => {
    h = await startRoutingHarness();
    const event = textEvent({ phone: PHONE, text: "" });
    const message = event.data.message as Record<string, unknown>;
    message["content"] = undefined;
    message["media"] = { type: "image", mimetype: "image/jpeg", caption: "the receipt" };
    await h.ingest(event);
    await eventually(() => totalMessages(h!) === 1);
    const [conversation] = conversationsOf(h);
    const [photo] = chatMessages(h, conversation!.id);
    expect(photo!.content).toBe(
      "the receipt\n[image from WhatsApp not delivered: the event carries neither base64 nor url]",
    );
    expect(photo!.attachments ?? []).toEqual([]);
    expect(h.bridge.counters().media_unavailable).toBe(1);
  });
});

describe("WhatsApp → Chatwoot: history in the gap (docs/history.md)", () => {
  it("a history message newer than the chat's last routed one is routed like a live one, counted and logged as history", async () => {
    const logged: Array<{ msg: string; fields: object }> = [];
    const info = (fields: object, msg?: string) => void logged.push({ msg: msg ?? "", fields });
    h = await startRoutingHarness({ bridge: { logger: { debug() {}, info, warn() {}, error() {} } } });
    const phone = "5511933330012";
    await h.ingest(textEvent({ phone, text: "live" }));
    await eventually(() => totalMessages(h!) === 1);
    await settled();
    const history = textEvent({ phone, text: "from the history sync", id: "3EB0EDGEHISTORY01" });
    history.data.message["history"] = true;
    await h.ingest(history);
    await eventually(() => totalMessages(h!) === 2);
    await settled();
    const [conversation] = conversationsOf(h);
    expect(chatMessages(h, conversation!.id).map((message) => message.content)).toEqual([
      "live",
      "from the history sync",
    ]);
    // Only the history message counts as history routed; the sync has caught up.
    expect(h.bridge.counters().history_routed).toBe(1);
    expect(logged.filter((line) => line.msg.startsWith("whatsapp: history sync")).at(-1)).toEqual({
      msg: "whatsapp: history sync caught up",
      fields: { instance: "suporte", imported: 1, skipped: 0, pending: 0 },
    });
  });
});
