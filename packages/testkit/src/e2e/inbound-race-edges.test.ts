// WhatsApp → Chatwoot races of one person known by two addresses (docs/identity.md): work of the person's LID queue
// (`in:<lid>`, queued before the link was known) runs beside the phone JID's queue (`in:<phone JID>`), where the link's
// work merges the person's two chats. Each test holds a Chatwoot answer so the steps happen in the order that once
// went wrong, and checks what an agent sees: one contact, one open conversation.
//
// Chatwoot facts used: `POST …/actions/contact_merge` merges the mergee's conversations and contact inboxes into the
// base contact (app/actions/contact_merge_action.rb); an incoming message reopens a resolved conversation
// (`Message#reopen_conversation`, app/models/message.rb).
import { randomBytes } from "node:crypto";
import type { WhatsAppEvent } from "@ryze/chatwoot-core";
import { type ChatwootApi, createChatwootApi } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness } from "./harness.js";
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
const statuses = () =>
  Object.fromEntries(conversationsOf(h!).map((conversation) => [conversation.id, conversation.status]));

let sequence = 0;
/** An incoming text in a private chat, addressed as given (`lid` in the chat and sender: both forms known). */
function addressed(
  content: string,
  address: { jid: string; lid?: string },
): WhatsAppEvent & { data: { id: string } } {
  const id = `3EB0RC${String(++sequence).padStart(6, "0")}${randomBytes(3).toString("hex").toUpperCase()}`;
  return {
    event: "message.exchange",
    data: {
      id,
      message: {
        id,
        direction: "incoming",
        chat: { ...address, type: "private" },
        sender: address,
        content: { text: content },
      },
    },
  };
}

/** A Chatwoot call the test holds: `reached` when the bridge made it, which goes on when `release` is called. */
interface Held {
  reached: Promise<void>;
  release(): void;
}

/**
 * The bridge's Chatwoot client, whose next call of one kind can be held: a conversation create for a given contact
 * inbox (`source_id`) after Chatwoot answered (the conversation exists in Chatwoot, the bridge has not seen the
 * answer yet), a contact merge before it is sent.
 */
function holdingApi() {
  const real = createChatwootApi();
  api = real;
  const gates = new Map<string, { gate: Promise<void>; arrived(): void }>();
  /** Waits at the gate set for `key`, if any (once). */
  async function pass(key: string): Promise<void> {
    const entry = gates.get(key);
    if (!entry) return;
    gates.delete(key);
    entry.arrived();
    await entry.gate;
  }
  const chatwootApi: ChatwootApi = {
    ...real,
    async createConversation(target, input, options) {
      const answer = await real.createConversation(target, input, options);
      await pass(`conversation:${input.sourceId}`);
      return answer;
    },
    async mergeContacts(target, baseId, mergeeId, options) {
      await pass("merge");
      return real.mergeContacts(target, baseId, mergeeId, options);
    },
  };
  function hold(key: string): Held {
    let release!: () => void;
    let arrived!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    gates.set(key, { gate, arrived });
    releaseAll.push(release);
    return { reached, release };
  }
  return {
    chatwootApi,
    /** The answer of the next conversation create for this contact inbox. */
    holdConversationAnswer: (sourceId: string) => hold(`conversation:${sourceId}`),
    /** The next contact merge, before it is sent. */
    holdMerge: () => hold("merge"),
  };
}

describe("the link merges a person's two chats while the LID chat's first conversation is being opened", () => {
  // Found as a flaky run of identity.test.ts ("the same link learned twice at once", it was a bug): the link's work
  // read the LID chat before its first message had recorded the conversation it opened, so the merge resolved nothing
  // and then wrote the LID chat's conversation off; that message, the one that made the LID chat, never looked again.
  // Now a LID-only message that made its chat is checked like one delivered into an existing LID chat
  // (`afterLidOnly` in packages/core/src/routing/inbound.ts).
  it("a LID's first message answered while the merge runs: its conversation is resolved, one conversation stays open", async () => {
    const { chatwootApi, holdConversationAnswer, holdMerge } = holdingApi();
    h = await startRoutingHarness({ bridge: { chatwootApi } });
    const lid = "230000000000901@lid";
    const pn = "14155550901@s.whatsapp.net";
    const id = await integrationId();
    await h.ingest(addressed("by phone", { jid: pn }));
    await eventually(() => conversationsOf(h!).length === 1 || null, {
      what: "the phone chat's conversation",
    });
    await drained();
    const phoneConversation = conversationsOf(h)[0]!.id;

    // 1. The person's first message by LID: Chatwoot opens its conversation (with a new contact), and its answer is
    // on the way back. The next LID-only message queues behind it (`in:<lid>`: the link is not known yet).
    const answer = holdConversationAnswer(lid);
    const first = addressed("by LID", { jid: lid });
    await h.ingest(first);
    await answer.reached;
    const lidConversation = conversationsOf(h).find(
      (conversation) => conversation.id !== phoneConversation,
    )!.id;
    await h.ingest(addressed("LID again", { jid: lid }));

    // 2. WhatsApp tells who the LID is. The link's work (`in:<phone JID>`) reads the two chats (the LID chat has no
    // conversation yet) and is about to merge the contacts.
    const merge = holdMerge();
    await h.ingest({ event: "contact.identity", data: { lid, jid: pn } });
    await merge.reached;

    // 3. Chatwoot's answer reaches the first message: it records its conversation and is done. "LID again" finds the
    // link and moves to the phone JID's queue, behind the link's work.
    answer.release();
    await eventually(async () => (await h!.store.outbox.find(id, `wa:${first.data.id}`))?.status === "done", {
      what: "the first LID message done",
    });

    // 4. The merge goes on: one contact; the LID chat's conversation, unknown to it, is written off.
    merge.release();
    await eventually(async () => (await h!.store.outbox.find(id, `id:${lid}:${pn}`))?.status === "done", {
      what: "the link's work done",
    });
    await h.ingest(addressed("both forms", { jid: pn, lid }));
    await drained();

    expect(statuses()).toEqual({ [phoneConversation]: "open", [lidConversation]: "resolved" });
    expect(contents(lidConversation)).toEqual(["by LID"]);
    expect(contents(phoneConversation)).toEqual(["by phone", "LID again", "both forms"]);
    expect(contactsOf()).toEqual([expect.objectContaining({ phone_number: "+14155550901" })]);
    expect(counter("contacts_merged")).toBe(1);
    expect(counter("late_conversation_resolved")).toBe(1);
  });
});
