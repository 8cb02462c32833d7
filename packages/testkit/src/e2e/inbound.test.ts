import type { WhatsAppEvent } from "@ryze/chatwoot-core";
import { type ChatwootApi, ChatwootRequestError, createChatwootApi } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import {
  chatMessages,
  conversationsOf,
  countContactInboxes,
  countContacts,
  totalMessages,
} from "./inspect.js";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const phones = Array.from({ length: 20 }, (_, i) => `55119${String(10_000_000 + i)}`);

describe("WhatsApp → Chatwoot", () => {
  it("a burst of 200 messages from 20 new contacts makes 20 contacts, inboxes and conversations, in per-chat order", async () => {
    h = await startRoutingHarness();
    const events = phones.flatMap((phone) =>
      Array.from({ length: 10 }, (_, n) => textEvent({ phone, text: `${phone} #${n}` })),
    );
    // All chats at once, each chat's messages in order.
    const results = await Promise.all(
      phones.map((_, i) => Promise.all(events.slice(i * 10, i * 10 + 10).map((e) => h!.ingest(e)))),
    );
    expect(results.flat().every((result) => !result.duplicate)).toBe(true);
    await eventually(() => totalMessages(h!) === 200, { what: "200 messages", timeoutMs: 20_000 });
    expect(countContacts(h)).toBe(20);
    expect(countContactInboxes(h)).toBe(20);
    const conversations = conversationsOf(h);
    expect(conversations).toHaveLength(20);
    for (const conversation of conversations) {
      const texts = chatMessages(h, conversation.id).map((message) => message.content);
      const phone = texts[0]!.split(" ")[0]!;
      expect(texts).toEqual(Array.from({ length: 10 }, (_, n) => `${phone} #${n}`));
    }
    // Every created message carries our source id.
    for (const conversation of conversations) {
      for (const message of chatMessages(h, conversation.id)) expect(message.source_id).toMatch(/^WAID:3EB0/);
    }

    // Replaying the same 200 events creates nothing new.
    const replay = await Promise.all(events.map((event) => h!.ingest(event)));
    expect(replay.every((result) => result.duplicate)).toBe(true);
    await eventually(async () => {
      const counts = await h!.store.outbox.count((await h!.store.integrations.get("suporte"))!.id);
      return counts.pending === 0 && counts.claimed === 0;
    });
    expect(totalMessages(h)).toBe(200);
    expect(countContacts(h)).toBe(20);
  });

  it("costs exactly one Chatwoot request per text message in a known chat, and at most three for a new contact", async () => {
    h = await startRoutingHarness();
    // Not the routing's requests: a realtime reconnect (on a loaded machine the 200 ms pings can be missed) makes its
    // socket upgrade, then a profile read and the backfill's reads (conversations, their messages), all GETs.
    let reconnected = false;
    const routing = (requests: readonly { path: string; method: string }[]) => {
      reconnected ||= requests.some((request) => request.path === "/cable");
      return requests.filter(
        (request) =>
          request.path !== "/cable" &&
          !(
            reconnected &&
            request.method === "GET" &&
            (request.path === "/api/v1/profile" || /\/conversations(\/\d+\/messages)?$/.test(request.path))
          ),
      );
    };
    h.sim.clearRequests();
    await h.ingest(textEvent({ phone: "5511988887777", text: "hello" }));
    await eventually(() => totalMessages(h!) === 1);
    const cold = routing(h.sim.requests).filter((request) => request.path.startsWith("/api/v1/accounts/"));
    // Contact and conversation; a Brazilian mobile number is first looked up under both of its forms (one search,
    // docs/identity.md).
    expect(cold.map((request) => `${request.method} ${request.path.replace(/\/\d+/g, "/:id")}`)).toEqual([
      "GET /api/v1/accounts/:id/contacts/search",
      "POST /api/v1/accounts/:id/contacts",
      "POST /api/v1/accounts/:id/conversations",
    ]);

    h.sim.clearRequests();
    for (let i = 0; i < 10; i++) await h.ingest(textEvent({ phone: "5511988887777", text: `warm ${i}` }));
    await eventually(() => totalMessages(h!) === 11);
    // Every HTTP request the simulator saw but the realtime link's own, profile reads included.
    const warm = routing(h.sim.requests);
    expect(warm).toHaveLength(10);
    expect(warm.every((request) => request.method === "POST" && /\/messages$/.test(request.path))).toBe(true);
  });

  it("drops groups with ignoreGroups, and prefixes the participant's name in groups otherwise", async () => {
    h = await startRoutingHarness({ flags: { ignoreGroups: true } });
    const group = { jid: "120363000000000001@g.us", subject: "Family" };
    const ignored = await h.ingest(textEvent({ phone: "5511911112222", text: "hi all", group, name: "Ana" }));
    expect(ignored.ignored).toBe("group_ignored");
    await h.close();

    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: "5511911112222", text: "hi all", group, name: "Ana" }));
    await eventually(() => totalMessages(h!) === 1);
    const [conversation] = conversationsOf(h);
    expect(chatMessages(h, conversation!.id)[0]!.content).toBe("*Ana*:\nhi all");
  });

  it("mirrors messages sent from the phone as outgoing, and never sends them back to WhatsApp", async () => {
    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: "5511977776666", text: "from the customer" }));
    await h.ingest(textEvent({ phone: "5511977776666", text: "typed on the phone", direction: "outgoing" }));
    await eventually(() => totalMessages(h!) === 2);
    const [conversation] = conversationsOf(h);
    const [, mirrored] = chatMessages(h, conversation!.id);
    expect(mirrored).toMatchObject({ content: "typed on the phone", message_type: 1 });
    // The mirrored message comes back over the realtime link as an outgoing message: it is not an agent reply.
    await h.ingest(textEvent({ phone: "5511977776666", text: "one more" }));
    await eventually(() => totalMessages(h!) === 3);
    expect(h.gateway.sent("suporte")).toEqual([]);
  });

  it("delivers, in order and once, what was ingested while Chatwoot refused connections", async () => {
    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: "5511955554444", text: "before" }));
    await eventually(() => totalMessages(h!) === 1);
    await h.sim.closePort();
    for (let i = 0; i < 10; i++) {
      await h.ingest(textEvent({ phone: "5511955554444", text: `down A${i}` }));
      await h.ingest(textEvent({ phone: "5511955553333", text: `down B${i}` }));
    }
    const integrationId = (await h.store.integrations.get("suporte"))!.id;
    // The dispatcher is failing and backing off, not dropping.
    await eventually(async () => (await h!.store.outbox.count(integrationId)).pending === 20);
    await h.sim.reopenPort();
    await eventually(() => totalMessages(h!) === 21, { timeoutMs: 20_000, what: "21 messages" });
    const byText = conversationsOf(h).map((conversation) =>
      chatMessages(h!, conversation.id).map((m) => m.content),
    );
    expect(byText).toContainEqual(["before", ...Array.from({ length: 10 }, (_, i) => `down A${i}`)]);
    expect(byText).toContainEqual(Array.from({ length: 10 }, (_, i) => `down B${i}`));
  });

  it("reconciles a create whose outcome is unknown (a timeout) through its source_id instead of creating it twice", async () => {
    const api = createChatwootApi();
    let lose = 0;
    // Chatwoot stores the message, but the answer is lost: the caller only sees a timeout.
    const chatwootApi: ChatwootApi = {
      ...api,
      async createMessage(target, conversationId, input, options) {
        const created = await api.createMessage(target, conversationId, input, options);
        if (lose > 0) {
          lose--;
          throw new ChatwootRequestError({
            kind: "transport",
            method: "POST",
            url: `${target.baseUrl}/api/v1/accounts/${target.accountId}/conversations/${conversationId}/messages`,
            cause: "timed out after 15000ms",
            code: "TIMEOUT",
          });
        }
        return created;
      },
    };
    try {
      h = await startRoutingHarness({ bridge: { chatwootApi } });
      await h.ingest(textEvent({ phone: "5511955551111", text: "warm" }));
      await eventually(() => totalMessages(h!) === 1);
      lose = 1;
      h.sim.clearRequests();
      await h.ingest(textEvent({ phone: "5511955551111", text: "answer lost" }));
      const integrationId = (await h.store.integrations.get("suporte"))!.id;
      await eventually(async () => (await h!.store.outbox.count(integrationId)).done === 2, {
        what: "the retried item done",
      });
      expect(lose).toBe(0);
      expect(h.bridge.counters().reconciled).toBe(1);
      // One create (whose answer was lost), then a look-up by source_id instead of a second create. A realtime
      // reconnect meanwhile (missed 200 ms pings on a loaded machine) adds a backfill: a conversation list, then at
      // most one read of this conversation's messages each.
      expect(h.sim.countRequests({ method: "POST", path: /\/messages$/ })).toBe(1);
      const backfills = h.sim.countRequests({ method: "GET", path: /\/conversations$/ });
      const reads = h.sim.countRequests({ method: "GET", path: /\/messages$/ });
      expect(reads).toBeGreaterThanOrEqual(1);
      expect(reads).toBeLessThanOrEqual(1 + backfills);
      const [conversation] = conversationsOf(h);
      expect(chatMessages(h, conversation!.id).map((m) => m.content)).toEqual(["warm", "answer lost"]);
    } finally {
      await h?.close();
      h = undefined;
      await api.close();
    }
  });

  it("stop() lets a delivery under way finish and records it as done", async () => {
    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: "5511955550000", text: "warm" }));
    await eventually(() => totalMessages(h!) === 1);
    h.sim.clearRequests();
    h.sim.faults.inject({ method: "POST", path: /\/messages$/, delayMs: 500, times: 1 });
    await h.ingest(textEvent({ phone: "5511955550000", text: "in flight at shutdown" }));
    await h.sim.waitForRequests({ method: "POST", path: /\/messages$/ });
    await h.bridge.stop();
    expect(chatMessages(h, conversationsOf(h)[0]!.id).map((m) => m.content)).toEqual([
      "warm",
      "in flight at shutdown",
    ]);
    const integrationId = (await h.store.integrations.get("suporte"))!.id;
    expect(await h.store.outbox.count(integrationId)).toEqual({ pending: 0, claimed: 0, done: 2, dead: 0 });
    await h.sim.close();
    h = undefined;
  });

  it("retries a create that Chatwoot answered with 5xx or 429 until it goes through, and stores the message once", async () => {
    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: "5511955551111", text: "first" }));
    await eventually(() => totalMessages(h!) === 1);
    const creates = () =>
      h!.sim.requests.filter((request) => request.method === "POST" && /\/messages$/.test(request.path))
        .length;
    const before = creates();
    for (const [status, body] of [
      [503, "Service Unavailable"],
      [500, { error: "boom" }],
      [429, "Retry later\n"],
    ] as const) {
      h.sim.faults.inject({ method: "POST", path: /\/messages$/, times: 1, status, body });
    }
    await h.ingest(textEvent({ phone: "5511955551111", text: "second", id: "3EB0RETRIED000001" }));
    await eventually(() => totalMessages(h!) === 2, { what: "the message after three transient failures" });
    // Three refused attempts, then the one that stored it; nothing is given up.
    expect(creates() - before).toBe(4);
    const [conversation] = conversationsOf(h);
    expect(chatMessages(h, conversation!.id).map((m) => [m.content, m.source_id])).toEqual([
      ["first", expect.stringMatching(/^WAID:/)],
      ["second", "WAID:3EB0RETRIED000001"],
    ]);
    // The item is completed once the create's answer is back, just after the simulator stored the message.
    const integrationId = (await h.store.integrations.get("suporte"))!.id;
    await eventually(async () => (await h!.store.outbox.count(integrationId)).claimed === 0, {
      what: "the retried item to be completed",
    });
    expect(await h.store.outbox.count(integrationId)).toEqual({ pending: 0, claimed: 0, done: 2, dead: 0 });
  });

  it("reports a message Chatwoot refuses for good (a dead letter) in the integration's last_error", async () => {
    h = await startRoutingHarness();
    await h.ingest(textEvent({ phone: "5511955552222", text: "first" }));
    await eventually(() => totalMessages(h!) === 1);
    h.sim.faults.inject({
      method: "POST",
      path: /\/messages$/,
      times: 1,
      status: 422,
      // A validation of our own body: permanent (the flood guard's "Too many messages" is retried instead).
      body: { error: "Validation failed: Content is too long (maximum is 150000 characters)" },
    });
    await h.ingest(textEvent({ phone: "5511955552222", text: "refused", id: "3EB0REFUSED000001" }));
    await h.ingest(textEvent({ phone: "5511955552222", text: "next one" }));
    await eventually(() => totalMessages(h!) === 2, { what: "the next message, after the dead letter" });
    const answer = await h.bridge.http.handle({
      method: "GET",
      path: "/api/chatwoot/list/suporte",
      headers: { token: "t" },
    });
    const body = JSON.parse(answer!.body!) as { status: string; last_error: string };
    expect(body.last_error).toMatch(
      /^WhatsApp message 3EB0REFUSED000001 could not be delivered to Chatwoot: .*HTTP 422: \{"error":"Validation failed: Content is too long \(maximum is 150000 characters\)"\}/,
    );
    const integrationId = (await h.store.integrations.get("suporte"))!.id;
    expect((await h.store.outbox.count(integrationId)).dead).toBe(1);
  });

  it("rejects a malformed event with an error that names the path", async () => {
    h = await startRoutingHarness();
    await expect(h.ingest({ event: "message.exchange", data: { message: { id: "x" } } })).rejects.toThrow(
      /^invalid event: data\.message\.direction: /,
    );
    await expect(h.ingest({ event: "presence.update", data: {} })).resolves.toMatchObject({
      ignored: "unknown_event",
    });
  });

  it("answers no_integration for an instance without one, after validating the event all the same", async () => {
    h = await startRoutingHarness();
    const bridge = h.bridge;
    // "vendas" is one of the account's instances, never activated: a host calls ingest for it anyway.
    const event = textEvent({ phone: "5511944443333", text: "hello", id: "3EB0NOINTEGRATION1" });
    await expect(bridge.ingest("vendas", event as WhatsAppEvent)).resolves.toEqual({
      id: "3EB0NOINTEGRATION1",
      duplicate: false,
      ignored: "no_integration",
    });
    const malformed = { event: "message.exchange", data: { message: { id: "x", direction: "sideways" } } };
    await expect(bridge.ingest("vendas", malformed as unknown as WhatsAppEvent)).rejects.toMatchObject({
      code: "INVALID_EVENT",
      message: expect.stringMatching(
        /^invalid event: data\.message\.direction: .*; data\.message\.chat: missing$/,
      ),
    });
    expect(bridge.counters()).toMatchObject({ no_integration: 1 });
    // Nothing was stored for it, under any integration.
    const suporte = (await h.store.integrations.get("suporte"))!;
    expect(await h.store.outbox.count(suporte.id)).toMatchObject({ pending: 0, claimed: 0, done: 0 });
  });
});
