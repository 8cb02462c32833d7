// History sync edges (docs/history.md, "Older history: only when asked"): what `importOlder` in
// packages/core/src/routing/inbound.ts does with a history message older than the chat's gap, seen from outside:
// which requests reach Chatwoot, what `bridge.counters()` and `list` count, what the message mappings say, and how a
// failed or lost answer is recovered without a second note. These tests came from mutation testing (docs/testing.md,
// "Mutation report"): each pins a behaviour a surviving mutant changed.
//
// Chatwoot facts used: `POST …/conversations` with a `message` answers the conversation with its `messages`
// (app/controllers/api/v1/accounts/conversations_controller.rb, `create`); a private outgoing note never reopens a
// resolved conversation (`Message#reopen_conversation`, app/models/message.rb).
import { randomBytes } from "node:crypto";
import type { Clock, WhatsAppEvent } from "@ryze/chatwoot-core";
import { type ChatwootApi, ChatwootRequestError, createChatwootApi } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, type SeenMessage } from "./inspect.js";

let h: RoutingHarness | undefined;
let releaseAll: Array<() => void> = [];
afterEach(async () => {
  for (const release of releaseAll) release();
  releaseAll = [];
  await h?.close();
  h = undefined;
});

const DAY = 86_400_000;

/** A unique WhatsApp message id. */
const waId = (tag: string) => `3EB0HE${tag}${randomBytes(4).toString("hex").toUpperCase()}`;

/** A history-sync message (`message.history: true`) of `phone`'s chat, written at `at`. */
function historyEvent(phone: string, text: string, at: Date, id = waId("H")) {
  const event = textEvent({ phone, text, id, name: "Maria" });
  event.data.message.timestamp = at.toISOString();
  event.data.message.history = true;
  return event;
}

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

async function historyOfList(): Promise<unknown> {
  const answer = await h!.bridge.http.handle({
    method: "GET",
    path: "/api/chatwoot/list/suporte",
    headers: { token: "t" },
  });
  return JSON.parse(answer!.body!).history;
}

/** A live message of `phone`'s chat, routed: its conversation is the person's open one. */
async function liveMessage(phone: string, at = new Date()): Promise<number> {
  const event = textEvent({ phone, text: "live", id: waId("L"), name: "Maria" });
  event.data.message.timestamp = at.toISOString();
  await h!.ingest(event);
  await eventually(() => conversationsOf(h!).length === 1 || null, { what: "the live conversation" });
  await drained();
  return conversationsOf(h!)[0]!.id;
}

const resolvedConversations = () =>
  conversationsOf(h!).filter((conversation) => conversation.status === "resolved");

const counter = (name: string) => h!.bridge.counters()[name] ?? 0;

/** Every non-activity message of the account with this `source_id`. */
const withSource = (sourceId: string): Array<SeenMessage & { conversation: number }> =>
  conversationsOf(h!).flatMap((conversation) =>
    chatMessages(h!, conversation.id)
      .filter((message) => message.source_id === sourceId)
      .map((message) => ({ ...message, conversation: conversation.id })),
  );

/** The message mappings of a WhatsApp id, as the store holds them. */
async function mappingsOf(waMessageId: string) {
  return (await h!.store.mappings.getMessagesByWa(await integrationId(), waMessageId)).map((entry) => ({
    part: entry.part,
    chatwootMessageId: entry.chatwootMessageId,
    conversationId: entry.conversationId,
    direction: entry.direction,
  }));
}

/** The searches of our contact inbox's conversations (`GET …/conversations?source_id=`). */
const sourceIdSearches = () =>
  h!.sim.requests.filter(
    (request) =>
      request.method === "GET" &&
      /\/conversations$/.test(request.path) &&
      request.query["source_id"] !== undefined,
  );

/** Reads of a conversation's messages (`GET …/conversations/{id}/messages`); any conversation when omitted. */
const messageReads = (conversationId?: number) =>
  h!.sim.requests.filter(
    (request) =>
      request.method === "GET" &&
      (conversationId === undefined
        ? /\/conversations\/[^/]+\/messages$/.test(request.path)
        : request.path.endsWith(`/conversations/${conversationId}/messages`)),
  );

/** A realtime reconnection happened (its catch-up may read messages of its own). */
const reconnected = () => h!.sim.requests.some((request) => request.path === "/cable");

/** A Chatwoot request the test holds back until it says so (the bridge's own client, delayed; nothing else changes). */
interface Hold {
  /** Resolves when the bridge made the held call. */
  reached: Promise<void>;
  release(): void;
}

/**
 * The bridge's Chatwoot client, whose next conversation create (or message create in a conversation) can be held,
 * and whose next conversation create can be saved with its answer lost.
 */
function holdingApi() {
  const real = createChatwootApi();
  let lose: (() => Promise<void>) | null = null;
  const holds: Array<{
    kind: "conversation" | "message";
    conversationId?: number;
    gate: Promise<void>;
    arrived(): void;
  }> = [];
  function hold(kind: "conversation" | "message", conversationId?: number): Hold {
    let release!: () => void;
    let arrived!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    holds.push({ kind, ...(conversationId === undefined ? {} : { conversationId }), gate, arrived });
    releaseAll.push(release);
    return { reached, release };
  }
  async function wait(kind: "conversation" | "message", conversationId?: number): Promise<void> {
    const index = holds.findIndex(
      (entry) =>
        entry.kind === kind &&
        (entry.conversationId === undefined || entry.conversationId === conversationId),
    );
    if (index < 0) return;
    const [entry] = holds.splice(index, 1);
    entry!.arrived();
    await entry!.gate;
  }
  const chatwootApi: ChatwootApi = {
    ...real,
    async createMessage(target, conversationId, input, options) {
      await wait("message", conversationId);
      return real.createMessage(target, conversationId, input, options);
    },
    async createConversation(target, input, options) {
      await wait("conversation");
      const created = await real.createConversation(target, input, options);
      const meanwhile = lose;
      if (!meanwhile) return created;
      lose = null;
      await meanwhile();
      // The answer is lost on the way back (a timeout), after Chatwoot saved the conversation.
      throw new ChatwootRequestError({
        kind: "transport",
        method: "POST",
        url: `${target.baseUrl}/conversations`,
        cause: "timed out after 15000ms",
        code: "TIMEOUT",
      });
    },
  };
  /** The next conversation create is saved, then `meanwhile` runs, then its answer is lost. */
  const loseNextConversation = (meanwhile: () => Promise<void>) => {
    lose = meanwhile;
  };
  return { chatwootApi, hold, loseNextConversation };
}

/** A logger that keeps the info lines. */
function infoLog() {
  const lines: Array<{ msg: string; fields: object }> = [];
  const logger = {
    debug() {},
    info: (fields: object, msg?: string) => void lines.push({ msg: msg ?? "", fields }),
    warn() {},
    error() {},
  };
  return { lines, logger };
}

let sequence = 0;
/** An incoming text in a private chat, addressed as given (a LID, a phone JID, or both). */
function addressed(content: string, chat: { jid: string } & Record<string, unknown>): WhatsAppEvent {
  const id = `3EB0HEID${String(++sequence).padStart(8, "0")}${randomBytes(2).toString("hex").toUpperCase()}`;
  return {
    event: "message.exchange",
    data: {
      id,
      message: {
        id,
        direction: "incoming",
        chat: { ...chat, type: "private" },
        sender: chat,
        content: { text: content },
      },
    },
  };
}

/** The conversation holding a message with this content. */
const conversationWith = (content: string) =>
  conversationsOf(h!).find((conversation) =>
    chatMessages(h!, conversation.id).some((message) => message.content === content),
  )!;

describe("older history imported as notes: requests, counts and mappings", () => {
  it("the first imported note opens the history conversation in one request, is counted, and is mapped to the note", async () => {
    h = await startRoutingHarness({ flags: { importHistoryDays: 30 } });
    const phone = "5511966660001";
    const live = await liveMessage(phone);
    h.sim.clearRequests();

    const id = waId("I");
    await h.ingest(historyEvent(phone, "from last week", new Date(Date.now() - 7 * DAY), id));
    await drained();

    // One conversations#create carrying the note; no message create, no look-up of any kind.
    expect(h.sim.countRequests({ method: "POST", path: /\/conversations$/ })).toBe(1);
    expect(h.sim.countRequests({ method: "POST", path: /\/messages$/ })).toBe(0);
    expect(sourceIdSearches()).toEqual([]);
    if (!reconnected()) expect(messageReads()).toEqual([]);
    const [history] = resolvedConversations();
    expect(history!.id).not.toBe(live);
    const [note] = withSource(`WAID:${id}`);
    expect(note).toMatchObject({ conversation: history!.id, private: true, message_type: 1 });
    // The mapping names the note, so a later live or history copy of it is recognised.
    expect(await mappingsOf(id)).toEqual([
      { part: 0, chatwootMessageId: note!.id, conversationId: history!.id, direction: "inbound" },
    ]);
    expect(counter("history_imported")).toBe(1);
    expect(counter("history_skipped")).toBe(0);

    // The next one goes into the same history conversation with one message create.
    h.sim.clearRequests();
    const next = waId("I");
    await h.ingest(historyEvent(phone, "from six days ago", new Date(Date.now() - 6 * DAY), next));
    await drained();
    expect(h.sim.countRequests({ method: "POST", path: /\/conversations$/ })).toBe(0);
    expect(h.sim.countRequests({ method: "POST", path: /\/messages$/ })).toBe(1);
    expect(withSource(`WAID:${next}`).map((message) => message.conversation)).toEqual([history!.id]);
    expect(counter("history_imported")).toBe(2);
  });

  it("a history message older than importHistoryDays is skipped: counted, nothing sent to Chatwoot", async () => {
    h = await startRoutingHarness({ flags: { importHistoryDays: 30 } });
    const phone = "5511966660002";
    await liveMessage(phone);
    h.sim.clearRequests();
    await h.ingest(historyEvent(phone, "from two months ago", new Date(Date.now() - 60 * DAY)));
    await drained();
    expect(h.sim.requests.filter((request) => request.method !== "GET")).toEqual([]);
    expect(conversationsOf(h)).toHaveLength(1);
    expect(counter("history_skipped")).toBe(1);
    expect(counter("history_imported")).toBe(0);
    expect(await historyOfList()).toEqual({ imported: 0, skipped: 1, pending: 0 });
  });

  it("edits, reactions and revokes of older history are skipped even when importHistoryDays asks for older history", async () => {
    h = await startRoutingHarness({ flags: { importHistoryDays: 30 } });
    const phone = "5511966660003";
    await liveMessage(phone);
    const target = waId("T");
    const yesterday = new Date(Date.now() - DAY);
    const edit = historyEvent(phone, "edited text", yesterday);
    edit.data.message.edit = { targetId: target };
    const reaction = historyEvent(phone, "", yesterday);
    reaction.data.message.reaction = { targetId: target, emoji: "👍" };
    const revoke = historyEvent(phone, "", yesterday);
    revoke.data.message.revoke = { targetId: target };
    for (const event of [edit, reaction, revoke]) await h.ingest(event);
    await drained();
    expect(conversationsOf(h)).toHaveLength(1);
    expect(resolvedConversations()).toEqual([]);
    expect(counter("history_skipped")).toBe(3);
    expect(await historyOfList()).toEqual({ imported: 0, skipped: 3, pending: 0 });
  });

  it("without importHistoryDays, older history is skipped even when the phone's clock runs ahead of ours", async () => {
    h = await startRoutingHarness();
    const phone = "5511966660004";
    // The live message is stamped two hours ahead (the phone's clock): the chat's gap starts there.
    await liveMessage(phone, new Date(Date.now() + 2 * 3_600_000));
    // A history message stamped one hour ahead: older than the chat's last routed message, newer than our now.
    await h.ingest(historyEvent(phone, "before the live one", new Date(Date.now() + 3_600_000)));
    await drained();
    expect(conversationsOf(h)).toHaveLength(1);
    expect(resolvedConversations()).toEqual([]);
    expect(counter("history_skipped")).toBe(1);
    expect(await historyOfList()).toEqual({ imported: 0, skipped: 1, pending: 0 });
  });

  it("a history message exactly importHistoryDays old is imported; one a second older is skipped", async () => {
    // Our clock stands still for this test, so "exactly 30 days before now" is one instant.
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const clock: Clock = { now: () => new Date(now) };
    h = await startRoutingHarness({ flags: { importHistoryDays: 30 }, bridge: { clock } });
    const phone = "5511966660005";
    const edge = waId("E");
    const past = waId("P");
    await h.ingest(historyEvent(phone, "exactly 30 days", new Date(now.getTime() - 30 * DAY), edge));
    await h.ingest(
      historyEvent(phone, "30 days and a second", new Date(now.getTime() - 30 * DAY - 1000), past),
    );
    await drained();
    expect(withSource(`WAID:${edge}`)).toHaveLength(1);
    expect(withSource(`WAID:${past}`)).toEqual([]);
    expect(await historyOfList()).toEqual({ imported: 1, skipped: 1, pending: 0 });
  });
});

describe("older history: failures and lost answers", () => {
  it("a note whose create failed, and one whose answer was lost, each end once in the history conversation, mapped", async () => {
    h = await startRoutingHarness({ flags: { importHistoryDays: 30 } });
    const phone = "5511966660006";
    await liveMessage(phone);
    const first = waId("A");
    await h.ingest(historyEvent(phone, "first", new Date(Date.now() - 3 * DAY), first));
    await drained();
    const [history] = resolvedConversations();
    h.sim.clearRequests();

    // Chatwoot fails before saving (500): the retry looks in the history conversation, finds nothing, adds it.
    const failed = h.sim.faults.inject({
      method: "POST",
      path: `/api/v1/accounts/${h.accountId}/conversations/${history!.id}/messages`,
      times: 1,
      status: 500,
      body: { error: "Internal Server Error" },
    });
    const second = waId("B");
    await h.ingest(historyEvent(phone, "second", new Date(Date.now() - 2 * DAY), second));
    await drained();
    expect(failed.hits).toBe(1);
    // Chatwoot saves it, and the answer is lost: the retry finds it there and does not add it again.
    const lost = h.sim.faults.inject({
      method: "POST",
      path: `/api/v1/accounts/${h.accountId}/conversations/${history!.id}/messages`,
      times: 1,
      afterHandling: true,
      reset: true,
    });
    const third = waId("C");
    await h.ingest(historyEvent(phone, "third", new Date(Date.now() - DAY), third));
    await drained();
    expect(lost.hits).toBe(1);

    expect(chatMessages(h, history!.id).map((message) => message.source_id)).toEqual([
      `WAID:${first}`,
      `WAID:${second}`,
      `WAID:${third}`,
    ]);
    expect(resolvedConversations()).toHaveLength(1);
    // The history conversation is known: the retries look in it, never among the contact inbox's conversations.
    expect(sourceIdSearches()).toEqual([]);
    for (const id of [second, third]) {
      const [note] = withSource(`WAID:${id}`);
      expect(await mappingsOf(id)).toEqual([
        { part: 0, chatwootMessageId: note!.id, conversationId: history!.id, direction: "inbound" },
      ]);
    }
    expect(await historyOfList()).toEqual({ imported: 3, skipped: 0, pending: 0 });
  });

  it("a lost history-conversation create is found among the resolved conversations only; the open one is not read", async () => {
    const { chatwootApi, loseNextConversation } = holdingApi();
    h = await startRoutingHarness({ flags: { importHistoryDays: 30 }, bridge: { chatwootApi } });
    const phone = "5511966660007";
    const live = await liveMessage(phone);
    // Chatwoot opens the history conversation, then an agent writes in the live one (so it is listed first, by
    // latest activity), and the answer is lost.
    loseNextConversation(async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      h!.sim.postAgentMessage({
        accountId: h!.accountId,
        conversationId: live,
        userId: h!.agent.id,
        content: "a note meanwhile",
        private: true,
      });
    });
    h.sim.clearRequests();
    const id = waId("R");
    await h.ingest(historyEvent(phone, "lost answer", new Date(Date.now() - DAY), id));
    await drained();

    const [history] = resolvedConversations();
    expect(resolvedConversations()).toHaveLength(1);
    expect(sourceIdSearches()).toHaveLength(1);
    // The person's open conversation cannot hold a note of ours: its messages are not read.
    if (!reconnected()) expect(messageReads(live)).toEqual([]);
    const [note] = withSource(`WAID:${id}`);
    expect(note!.conversation).toBe(history!.id);
    expect(await mappingsOf(id)).toEqual([
      { part: 0, chatwootMessageId: note!.id, conversationId: history!.id, direction: "inbound" },
    ]);
    // The found conversation is the chat's history conversation from now on.
    const next = waId("R");
    await h.ingest(historyEvent(phone, "after it", new Date(Date.now() - DAY / 2), next));
    await drained();
    expect(withSource(`WAID:${next}`).map((message) => message.conversation)).toEqual([history!.id]);
    expect(resolvedConversations()).toHaveLength(1);
  });

  it("a history conversation that answers 404 (deleted) is replaced by a new resolved one", async () => {
    h = await startRoutingHarness({ flags: { importHistoryDays: 30 } });
    const phone = "5511966660008";
    await liveMessage(phone);
    const first = waId("D");
    await h.ingest(historyEvent(phone, "first", new Date(Date.now() - 3 * DAY), first));
    await drained();
    const [gone] = resolvedConversations();
    h.sim.faults.inject({
      method: "POST",
      path: `/api/v1/accounts/${h.accountId}/conversations/${gone!.id}/messages`,
      times: 1,
      status: 404,
      body: { error: "Resource could not be found" },
    });
    const second = waId("D");
    await h.ingest(historyEvent(phone, "second", new Date(Date.now() - 2 * DAY), second));
    await drained();

    const replacement = resolvedConversations().find((conversation) => conversation.id !== gone!.id);
    expect(replacement).toBeDefined();
    expect(chatMessages(h, replacement!.id).map((message) => message.source_id)).toEqual([`WAID:${second}`]);
    expect(withSource(`WAID:${second}`)).toHaveLength(1);
    // Later notes follow the replacement.
    const third = waId("D");
    await h.ingest(historyEvent(phone, "third", new Date(Date.now() - DAY), third));
    await drained();
    expect(withSource(`WAID:${third}`).map((message) => message.conversation)).toEqual([replacement!.id]);
  });
});

describe("older history: a Chatwoot that answers too late", () => {
  it("a create whose answer comes after the attempt gave up is not counted twice: the retry's find is the only one", async () => {
    // An attempt may take 400 ms: then its Chatwoot calls are aborted and it is retried (the dispatcher's deadline).
    h = await startRoutingHarness({
      flags: { importHistoryDays: 30 },
      bridge: { dispatcher: { pollIntervalMs: 20, itemTimeoutMs: 400 } },
    });
    const phone = "5511966660017";
    await liveMessage(phone);
    /** Chatwoot saves at once and answers after 1.8 s, past the deadline and the second the dispatcher waits. */
    const lateAnswer = async (path: string | RegExp, event: WhatsAppEvent) => {
      const late = h!.sim.faults.inject({
        method: "POST",
        path,
        times: 1,
        afterHandling: true,
        delayMs: 1_800,
      });
      await h!.ingest(event);
      await drained();
      // The late answer arrives meanwhile; an attempt still waiting for it would record the note a second time.
      await new Promise((resolve) => setTimeout(resolve, 2_300));
      expect(late.hits).toBe(1);
    };
    const first = waId("S");
    await lateAnswer(/\/conversations$/, historyEvent(phone, "first", new Date(Date.now() - 2 * DAY), first));
    const [history] = resolvedConversations();
    const second = waId("S");
    await lateAnswer(
      `/api/v1/accounts/${h.accountId}/conversations/${history!.id}/messages`,
      historyEvent(phone, "second", new Date(Date.now() - DAY), second),
    );
    expect(chatMessages(h, history!.id).map((message) => message.source_id)).toEqual([
      `WAID:${first}`,
      `WAID:${second}`,
    ]);
    expect(counter("history_imported")).toBe(2);
    expect(await historyOfList()).toEqual({ imported: 2, skipped: 0, pending: 0 });
  }, 20_000);
});

describe("older history: the note's text", () => {
  it("names who wrote it (you, the sender's name or phone, the chat's name, or Contact) and when, then the text or the file's kind", async () => {
    h = await startRoutingHarness({ flags: { importHistoryDays: 30 } });
    const phone = "5511966660009";
    const jid = `${phone}@s.whatsapp.net`;
    // 2 days before now, at hh:mm:42.123: the seconds never show.
    const at = new Date(Math.floor((Date.now() - 2 * DAY) / 60_000) * 60_000 + 42_123);
    const pad = (n: number) => String(n).padStart(2, "0");
    const when =
      `${at.getUTCFullYear()}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())} ` +
      `${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())} UTC`;
    const shapes: Array<[string, (message: Record<string, unknown>) => void, string]> = [
      [
        "outgoing",
        (message) => {
          message.direction = "outgoing";
        },
        `🕘 You, ${when}:\nsaid by me`,
      ],
      [
        "sender without a name",
        (message) => {
          message.sender = { jid };
        },
        `🕘 +${phone}, ${when}:\nsaid by me`,
      ],
      [
        "no sender",
        (message) => {
          message.sender = null;
          message.chat = { jid, name: "Maria's chat", type: "private" };
        },
        `🕘 Maria's chat, ${when}:\nsaid by me`,
      ],
      [
        "a voice note",
        (message) => {
          message.content = null;
          message.media = { type: "ptt", url: "http://127.0.0.1:9/voice.ogg" };
        },
        `🕘 Maria, ${when}:\n[voice note]`,
      ],
      [
        "an image with a caption",
        (message) => {
          message.content = null;
          message.media = { type: "image", url: "http://127.0.0.1:9/photo.jpg", caption: "look" };
        },
        `🕘 Maria, ${when}:\n[image] look`,
      ],
    ];
    const ids: string[] = [];
    for (const [, shape] of shapes) {
      const event = historyEvent(phone, "said by me", at);
      shape(event.data.message);
      ids.push(event.data.id);
      await h.ingest(event);
    }
    // A chat known by LID only, without names: "Contact".
    const lid = "230000000000099@lid";
    const anonymous = addressed("said by someone", { jid: lid });
    (anonymous as { data: { message: Record<string, unknown> } }).data.message.timestamp = at.toISOString();
    (anonymous as { data: { message: Record<string, unknown> } }).data.message.history = true;
    (anonymous as { data: { message: Record<string, unknown> } }).data.message.sender = null;
    await h.ingest(anonymous);
    await drained();

    expect(ids.map((id) => withSource(`WAID:${id}`)[0]?.content)).toEqual(shapes.map(([, , text]) => text));
    expect(withSource(`WAID:${(anonymous as { data: { id: string } }).data.id}`)[0]?.content).toBe(
      `🕘 Contact, ${when}:\nsaid by someone`,
    );
    // Nothing was downloaded nor attached: history is imported without files.
    expect(
      ids.flatMap((id) => withSource(`WAID:${id}`)).flatMap((message) => message.attachments ?? []),
    ).toEqual([]);
  });
});

describe("older history: progress in the logs", () => {
  it("says where the sync is every 100 history messages, and when it caught up", async () => {
    const { chatwootApi, hold } = holdingApi();
    const { lines, logger } = infoLog();
    h = await startRoutingHarness({ bridge: { chatwootApi, logger } });
    const createdAt = (await h.store.integrations.get("suporte"))!.createdAt.getTime();
    const phone = "5511966660010";
    // The chat's live message is held in Chatwoot, so that the whole history batch is queued behind it.
    const held = hold("conversation");
    await h.ingest(textEvent({ phone, text: "live", name: "Maria" }));
    await held.reached;
    for (let n = 0; n < 150; n++)
      await h.ingest(historyEvent(phone, `old ${n}`, new Date(createdAt - DAY + n * 1000)));
    held.release();
    await drained();
    expect(lines.filter((line) => line.msg.startsWith("whatsapp: history sync"))).toEqual([
      {
        msg: "whatsapp: history sync progress",
        fields: { instance: "suporte", imported: 0, skipped: 100, pending: 50 },
      },
      {
        msg: "whatsapp: history sync caught up",
        fields: { instance: "suporte", imported: 0, skipped: 150, pending: 0 },
      },
    ]);
    expect(counter("history_skipped")).toBe(150);
  });
});

describe("LID ↔ phone links learned while a message is on its way", () => {
  it("a LID-only message that lands in the conversation the merge just resolved resolves it again: one open conversation", async () => {
    const { chatwootApi, hold } = holdingApi();
    h = await startRoutingHarness({ bridge: { chatwootApi } });
    const lid = "230000000000011@lid";
    const pn = "14155550311@s.whatsapp.net";
    await h.ingest(addressed("by LID", { jid: lid }));
    await eventually(() => conversationsOf(h!).length === 1 || null);
    await drained();
    await h.ingest(addressed("by phone", { jid: pn }));
    await eventually(() => conversationsOf(h!).length === 2 || null);
    await drained();
    const lidConversation = conversationWith("by LID").id;
    const phoneConversation = conversationWith("by phone").id;

    // The next LID-only message is on its way to the LID chat's conversation when the link arrives.
    const held = hold("message", lidConversation);
    await h.ingest(addressed("late, by LID", { jid: lid }));
    await held.reached;
    await h.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => h!.bridge.counters()["contacts_merged"] === 1 || null, { what: "the merge" });
    await eventually(
      () =>
        conversationsOf(h!).find((conversation) => conversation.id === lidConversation)!.status ===
        "resolved",
      { what: "the merge resolved the LID chat's conversation" },
    );
    held.release();
    await drained();

    expect(chatMessages(h, lidConversation).map((message) => message.content)).toContain("late, by LID");
    const statuses = Object.fromEntries(
      conversationsOf(h).map((conversation) => [conversation.id, conversation.status]),
    );
    expect(statuses).toEqual({ [lidConversation]: "resolved", [phoneConversation]: "open" });
    expect(counter("late_conversation_resolved")).toBe(1);
  });

  it("a LID-only message that lands in the conversation its chat just moved to the phone JID with leaves it open", async () => {
    const { chatwootApi, hold } = holdingApi();
    h = await startRoutingHarness({ bridge: { chatwootApi } });
    const lid = "230000000000012@lid";
    const pn = "14155550312@s.whatsapp.net";
    await h.ingest(addressed("by LID", { jid: lid }));
    await eventually(() => conversationsOf(h!).length === 1 || null);
    await drained();
    const [conversation] = conversationsOf(h);

    const held = hold("message", conversation!.id);
    await h.ingest(addressed("late, by LID", { jid: lid }));
    await held.reached;
    await h.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await eventually(() => h!.bridge.counters()["chat_moved_to_phone"] === 1 || null, { what: "the move" });
    held.release();
    await drained();

    expect(conversationsOf(h)).toEqual([expect.objectContaining({ id: conversation!.id, status: "open" })]);
    expect(chatMessages(h, conversation!.id).map((message) => message.content)).toEqual([
      "by LID",
      "late, by LID",
    ]);
    expect(h.sim.contacts(h.accountId)).toEqual([expect.objectContaining({ phone_number: "+14155550312" })]);
    expect(counter("late_conversation_resolved")).toBe(0);
  });

  it("a link for a person without a chat creates nothing; their first message by LID then gets the phone number", async () => {
    h = await startRoutingHarness();
    const lid = "230000000000013@lid";
    const pn = "14155550313@s.whatsapp.net";
    h.sim.clearRequests();
    await h.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await drained();
    expect(counter("identity_without_chat")).toBe(1);
    expect(h.sim.requests.filter((request) => request.method !== "GET")).toEqual([]);
    await h.ingest(addressed("first, by LID", { jid: lid }));
    await eventually(() => conversationsOf(h!).length === 1 || null);
    await drained();
    expect(h.sim.contacts(h.accountId)).toEqual([
      expect.objectContaining({ phone_number: "+14155550313", identifier: pn }),
    ]);
  });
});

describe("the rest of inbound delivery", () => {
  it("a receipt of a customer's own message changes nothing in Chatwoot", async () => {
    h = await startRoutingHarness();
    const phone = "5511966660014";
    const id = waId("M");
    await h.ingest(textEvent({ phone, text: "hello", id }));
    await eventually(() => conversationsOf(h!).length === 1 || null);
    await drained();
    h.sim.clearRequests();
    await h.ingest({
      event: "message.status",
      data: { id, chat: { jid: `${phone}@s.whatsapp.net` }, status: "read" },
    });
    await drained();
    expect(counter("receipt_ignored")).toBe(1);
    expect(h.sim.countRequests({ method: "PATCH" })).toBe(0);
  });

  it("a conversation create refused with `source_id should be unique` finds the contact again and opens it, once", async () => {
    h = await startRoutingHarness();
    const phone = "5511966660015";
    // Chatwoot's answer when our contact inbox belongs to another contact (conversations_controller#create).
    const refused = h.sim.faults.inject({
      method: "POST",
      path: /\/conversations$/,
      times: 1,
      status: 422,
      body: { error: "source_id should be unique" },
    });
    await h.ingest(textEvent({ phone, text: "hello" }));
    await drained();
    expect(refused.hits).toBe(1);
    expect(counter("contact_resolved_again")).toBe(1);
    expect(conversationsOf(h)).toHaveLength(1);
    expect(chatMessages(h, conversationsOf(h)[0]!.id).map((message) => message.content)).toEqual(["hello"]);
  });

  it("another 422 to a conversation create is not taken for a contact inbox of another contact", async () => {
    h = await startRoutingHarness();
    const refused = h.sim.faults.inject({
      method: "POST",
      path: /\/conversations$/,
      times: 1,
      status: 422,
      body: { message: "Validation failed: Contact can't be blank", attributes: ["contact"] },
    });
    await h.ingest(textEvent({ phone: "5511966660016", text: "hello" }));
    const id = await integrationId();
    await eventually(async () => (await h!.store.outbox.count(id)).dead === 1 || null, {
      what: "a dead letter",
    });
    expect(refused.hits).toBe(1);
    expect(counter("contact_resolved_again")).toBe(0);
    expect(conversationsOf(h)).toEqual([]);
  });
});
