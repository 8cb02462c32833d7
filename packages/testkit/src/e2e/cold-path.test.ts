import { afterEach, describe, expect, it } from "vitest";
import type { RecordedRequest } from "../simulator/index.js";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import {
  chatMessages,
  conversationsOf,
  countContactInboxes,
  countContacts,
  totalMessages,
} from "./inspect.js";

// docs/routing.md, "Chatwoot requests per message". Chatwoot's contact create takes `inbox_id` + `source_id` and
// answers the contact inbox with the contact (app/controllers/api/v1/accounts/contacts_controller.rb#create), and its
// conversation create takes the first message in the same request and transaction (`params[:message]` through
// `Messages::MessageBuilder`, app/controllers/api/v1/accounts/conversations_controller.rb#create, since v1.15.0;
// unchanged in 4.10.0 and 4.13.0). So a new contact costs 2 requests, a new conversation of a known contact 1, a
// message in a known conversation 1. The simulator's request log counts them (counts, not timings).

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/**
 * The routing's requests to the account API. A realtime reconnect (missed 200 ms pings on a loaded machine) adds its
 * socket upgrade, a profile read and the backfill's reads (conversations, their messages): not the routing's.
 */
function routingRequests(requests: readonly RecordedRequest[]) {
  const reconnected = requests.some((request) => request.path === "/cable");
  return requests
    .filter((request) => request.path.startsWith("/api/v1/accounts/"))
    .filter(
      (request) =>
        !(reconnected && request.method === "GET" && /\/conversations(\/\d+\/messages)?$/.test(request.path)),
    )
    .map((request) => `${request.method} ${request.path.replace(/\/\d+/g, "/:id")}`);
}

async function integrationId(): Promise<string> {
  return (await h!.store.integrations.get("suporte"))!.id;
}

/**
 * Waits until every stored event is delivered. The first message of a conversation is in Chatwoot a moment before
 * the chat mapping points at its conversation: an agent's action on it must wait for the delivery to finish.
 */
async function settled(): Promise<void> {
  const id = await integrationId();
  await eventually(async () => {
    const counts = await h!.store.outbox.count(id);
    return counts.pending === 0 && counts.claimed === 0;
  });
}

describe("the cold path in fewer Chatwoot requests", () => {
  it("a new contact's first text costs 2 requests: the contact with its contact inbox, the conversation with the message", async () => {
    h = await startRoutingHarness();
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: "14155550001", text: "hello", id: "3EB0COLD00000001" }));
    await eventually(() => totalMessages(h!) === 1);
    expect(routingRequests(h.sim.requests)).toEqual([
      "POST /api/v1/accounts/:id/contacts",
      "POST /api/v1/accounts/:id/conversations",
    ]);
    // The conversation is the contact's, with our contact inbox, and the message carries our source id.
    const [conversation] = conversationsOf(h);
    expect(chatMessages(h, conversation!.id)).toMatchObject([
      { content: "hello", message_type: 0, source_id: "WAID:3EB0COLD00000001" },
    ]);
    expect(countContacts(h)).toBe(1);
    expect(countContactInboxes(h)).toBe(1);
    // The message is mapped to its Chatwoot id (a quote of it threads to it), and the next one costs one request.
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: "14155550001", text: "and then", quoted: "3EB0COLD00000001" }));
    await eventually(() => totalMessages(h!) === 2);
    expect(routingRequests(h.sim.requests)).toEqual(["POST /api/v1/accounts/:id/conversations/:id/messages"]);
    const [hello, reply] = chatMessages(h, conversation!.id);
    expect(reply!.content_attributes).toMatchObject({
      in_reply_to: hello!.id,
      in_reply_to_external_id: "WAID:3EB0COLD00000001",
    });
  });

  it("a Brazilian mobile number's new contact costs one search more: a contact saved under its other form is reused", async () => {
    h = await startRoutingHarness();
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: "5511977770001", text: "olá" }));
    await eventually(() => totalMessages(h!) === 1);
    // Both forms (with and without the 9th digit) end with the same 8 digits: one search looks up both
    // (docs/identity.md).
    expect(routingRequests(h.sim.requests)).toEqual([
      "GET /api/v1/accounts/:id/contacts/search",
      "POST /api/v1/accounts/:id/contacts",
      "POST /api/v1/accounts/:id/conversations",
    ]);
    expect(h.sim.contacts(h.accountId)).toMatchObject([{ phone_number: "+5511977770001" }]);
  });

  it("a new conversation of a known contact costs 1 request", async () => {
    h = await startRoutingHarness({ flags: { reopenResolved: false } });
    await h.ingest(textEvent({ phone: "5511977770002", text: "first" }));
    await eventually(() => totalMessages(h!) === 1);
    await settled();
    const [first] = conversationsOf(h);
    h.sim.setConversationStatus(h.accountId, first!.id, "resolved", { userId: h.agent.id });
    const id = await integrationId();
    await eventually(
      async () =>
        (await h!.store.mappings.getChat(id, "5511977770002@s.whatsapp.net"))?.conversationId === null,
      { what: "the resolved conversation forgotten" },
    );
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: "5511977770002", text: "a new question" }));
    await eventually(() => totalMessages(h!) === 2);
    expect(routingRequests(h.sim.requests)).toEqual(["POST /api/v1/accounts/:id/conversations"]);
    const conversations = conversationsOf(h);
    expect(conversations.map((conversation) => conversation.status)).toEqual(["resolved", "open"]);
    expect(chatMessages(h, conversations[1]!.id).map((message) => message.content)).toEqual([
      "a new question",
    ]);
  });

  it("a new contact's first photo also costs 2 requests: the file travels with the conversation", async () => {
    h = await startRoutingHarness({ flags: { startAsPending: true } });
    const event = textEvent({ phone: "14155550003", text: "look" });
    const message = event.data.message as Record<string, unknown>;
    message.content = undefined;
    message.media = {
      type: "image",
      mimetype: "image/png",
      caption: "look",
      base64: Buffer.from("not really a png").toString("base64"),
    };
    h.sim.clearRequests();
    await h.ingest(event);
    await eventually(() => totalMessages(h!) === 1);
    expect(routingRequests(h.sim.requests)).toEqual([
      "POST /api/v1/accounts/:id/contacts",
      "POST /api/v1/accounts/:id/conversations",
    ]);
    const [conversation] = conversationsOf(h);
    expect(conversation!.status).toBe("pending");
    const [photo] = chatMessages(h, conversation!.id);
    expect(photo).toMatchObject({ content: "look", message_type: 0 });
    expect(photo!.attachments).toMatchObject([{ file_type: "image" }]);
  });

  it("a conversation create whose answer was lost is found again by source_id: one conversation, one message", async () => {
    h = await startRoutingHarness();
    // Chatwoot creates the conversation and its first message, but the answer never arrives.
    h.sim.faults.inject({
      method: "POST",
      path: /\/conversations$/,
      afterHandling: true,
      reset: true,
      times: 1,
    });
    await h.ingest(textEvent({ phone: "5511977770004", text: "hello", id: "3EB0COLD00000004" }));
    const id = await integrationId();
    await eventually(async () => (await h!.store.outbox.count(id)).done === 1, { what: "the item done" });
    expect(conversationsOf(h)).toHaveLength(1);
    expect(chatMessages(h, conversationsOf(h)[0]!.id).map((message) => message.source_id)).toEqual([
      "WAID:3EB0COLD00000004",
    ]);
    expect(h.bridge.counters()).toMatchObject({ reconciled: 1 });
    expect(h.sim.countRequests({ method: "POST", path: /\/conversations$/ })).toBe(1);
    // The chat now points at that conversation: the next message lands there, in one request.
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: "5511977770004", text: "still there?" }));
    await eventually(() => totalMessages(h!) === 2);
    expect(routingRequests(h.sim.requests)).toEqual(["POST /api/v1/accounts/:id/conversations/:id/messages"]);
    expect(conversationsOf(h)).toHaveLength(1);
  });
});
