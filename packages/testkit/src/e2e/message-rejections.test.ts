import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

// A 422 from messages#create is Chatwoot's answer to any StandardError there
// (app/controllers/api/v1/accounts/conversations/messages_controller.rb): the per-conversation flood guard
// (`Message#prevent_message_flooding`, app/models/message.rb: 200 messages per conversation per rolling minute),
// database, storage and Redis errors — the latter possibly after the message was committed (`after_create_commit`).
// Only a 422 that validates our own body is permanent (docs/routing.md, "Failures and retries").

const PHONE = "5511966660000";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function integrationId(): Promise<string> {
  return (await h!.store.integrations.get("suporte"))!.id;
}

/** What `list` shows the operator ("" when nothing went wrong). */
async function lastError(): Promise<string> {
  const answer = await h!.bridge.http.handle({
    method: "GET",
    path: "/api/chatwoot/list/suporte",
    headers: { token: "t" },
  });
  return (JSON.parse(answer!.body!) as { last_error: string }).last_error;
}

const messageCreates = () => h!.sim.countRequests({ method: "POST", path: /\/messages$/ });

async function firstMessage(): Promise<number> {
  await h!.ingest(textEvent({ phone: PHONE, text: "first" }));
  await eventually(() => totalMessages(h!) === 1);
  // Delivered to the end (the message is in Chatwoot a moment before its delivery is recorded).
  const id = await integrationId();
  await eventually(async () => (await h!.store.outbox.count(id)).done === 1);
  return conversationsOf(h!)[0]!.id;
}

describe("422 from a message create", () => {
  it("the flood guard ('Too many messages') is retried with backoff until the rolling minute lets the message in", async () => {
    h = await startRoutingHarness();
    const conversationId = await firstMessage();
    // The conversation is flooded: Chatwoot refuses every further message for now (the simulator's real guard).
    h.sim.setMessageFloodLimit(1);
    const before = messageCreates();
    await h.ingest(textEvent({ phone: PHONE, text: "during the flood", id: "3EB0FLOODED00001" }));
    await h.ingest(textEvent({ phone: PHONE, text: "right after" }));
    await h.sim.waitForRequests({ method: "POST", path: /\/messages$/, status: 422 }, { count: 3 });
    const id = await integrationId();
    const waiting = await h.store.outbox.count(id);
    expect(waiting).toMatchObject({ dead: 0 });
    expect(waiting.pending + waiting.claimed).toBe(2);
    // The minute has passed.
    h.sim.setMessageFloodLimit(200);
    await eventually(() => totalMessages(h!) === 3, { what: "both messages, once the flood is over" });
    expect(chatMessages(h, conversationId).map((message) => [message.content, message.source_id])).toEqual([
      ["first", expect.stringMatching(/^WAID:/)],
      ["during the flood", "WAID:3EB0FLOODED00001"],
      ["right after", expect.stringMatching(/^WAID:/)],
    ]);
    // Refused at least three times, then created once each: never given up, nothing reported.
    expect(messageCreates() - before).toBeGreaterThanOrEqual(5);
    await eventually(async () => (await h!.store.outbox.count(id)).done === 3);
    expect(await h.store.outbox.count(id)).toMatchObject({ dead: 0 });
    expect(await lastError()).toBe("");
  });

  it("an error raised after the message was saved is retried by looking the message up first: it exists once", async () => {
    h = await startRoutingHarness();
    const conversationId = await firstMessage();
    // Redis is down when the message's after_create_commit callbacks run: committed, yet answered 422.
    h.sim.faults.inject({
      method: "POST",
      path: /\/messages$/,
      afterHandling: true,
      times: 1,
      status: 422,
      body: { error: "Error connecting to Redis on 127.0.0.1:6379 (Errno::ECONNREFUSED)" },
    });
    const before = messageCreates();
    await h.ingest(textEvent({ phone: PHONE, text: "saved anyway", id: "3EB0AFTERSAVE001" }));
    const id = await integrationId();
    await eventually(async () => (await h!.store.outbox.count(id)).done === 2, {
      what: "the retried item done",
    });
    expect(chatMessages(h, conversationId).map((message) => message.source_id)).toEqual([
      expect.stringMatching(/^WAID:/),
      "WAID:3EB0AFTERSAVE001",
    ]);
    expect(messageCreates() - before).toBe(1);
    expect(h.bridge.counters()).toMatchObject({ reconciled: 1 });
    expect(await h.store.outbox.count(id)).toMatchObject({ dead: 0 });
    expect(await lastError()).toBe("");
  });

  it("a validation of our own body is permanent: one attempt, a dead letter, and last_error says why", async () => {
    h = await startRoutingHarness();
    await firstMessage();
    h.sim.faults.inject({
      method: "POST",
      path: /\/messages$/,
      times: 1,
      status: 422,
      body: { error: "Validation failed: Content is too long (maximum is 150000 characters)" },
    });
    const before = messageCreates();
    await h.ingest(textEvent({ phone: PHONE, text: "refused", id: "3EB0TOOLONG00001" }));
    await h.ingest(textEvent({ phone: PHONE, text: "next one" }));
    await eventually(() => totalMessages(h!) === 2, { what: "the next message, after the dead letter" });
    expect(messageCreates() - before).toBe(2);
    expect(await lastError()).toMatch(
      /^WhatsApp message 3EB0TOOLONG00001 could not be delivered to Chatwoot: .*HTTP 422: .*Content is too long/,
    );
    expect((await h.store.outbox.count(await integrationId())).dead).toBe(1);
  });
});
