import { afterEach, describe, expect, it } from "vitest";
import {
  type ChatwootSimulator,
  type ChatwootSimulatorOptions,
  startChatwootSimulator,
  webhookSignature,
} from "./index.js";
import {
  type AnyJson,
  call,
  openConversation,
  type ReceivedWebhook,
  type Seed,
  seed,
  startWebhookReceiver,
} from "./test-support.js";

let sim: ChatwootSimulator;
let s: Seed;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

async function start(
  options: ChatwootSimulatorOptions = {},
  respond?: (hook: ReceivedWebhook) => { status?: number; delayMs?: number },
) {
  receiver = await startWebhookReceiver(respond);
  // 4.10 unless a test says otherwise (the version matrix itself is in versions.test.ts).
  sim = await startChatwootSimulator({ version: "4.10", ...options });
  s = seed(sim, { channel: { webhook_url: receiver.url } });
}

afterEach(async () => {
  await sim.close();
  await receiver.close();
});

const postMessage = (conversationId: number, body: Record<string, unknown>) =>
  call(sim, "POST", s.path(`/conversations/${conversationId}/messages`), {
    token: s.admin.accessToken,
    body,
  });

describe("API inbox webhooks (4.10)", () => {
  it("POSTs conversation_created and message_created with string message_type, unsigned", async () => {
    await start();
    const { conversationId } = await openConversation(sim, s, "jid-1");
    await postMessage(conversationId, {
      content: "hi <b>&</b>",
      message_type: "incoming",
      source_id: "WAMID.1",
    });
    const [created, message] = await sim.waitForWebhookDeliveries({}, { count: 2 });
    expect(created).toMatchObject({
      event: "conversation_created",
      status: 200,
      error: null,
      signing: "off",
    });
    expect(created?.payload).toMatchObject({
      event: "conversation_created",
      id: conversationId,
      channel: "Channel::Api",
      contact_inbox: { source_id: "jid-1", inbox_id: s.inboxId },
      meta: { sender: { name: "Alice", type: "contact" } },
    });
    const hook = receiver.received.find((r) => r.json.event === "message_created") as ReceivedWebhook;
    expect(hook.json).toMatchObject({
      event: "message_created",
      content: "hi <b>&</b>",
      message_type: "incoming",
      content_type: "text",
      private: false,
      source_id: "WAMID.1",
      account: { id: s.accountId, name: "Acme" },
      inbox: { id: s.inboxId, name: "WhatsApp" },
      conversation: { id: conversationId, contact_inbox: { source_id: "jid-1" } },
    });
    // Contact senders have no "type" in webhook data; times are ISO strings.
    expect(hook.json.sender).toMatchObject({ name: "Alice", avatar: "", account: { id: s.accountId } });
    expect(hook.json.sender).not.toHaveProperty("type");
    expect(hook.json.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Rails' to_json escapes <, > and &; there are no signature headers before 4.13.
    expect(hook.body).toContain("hi \\u003cb\\u003e\\u0026\\u003c/b\\u003e");
    expect(hook.headers).toMatchObject({ "content-type": "application/json", accept: "application/json" });
    expect(hook.headers).not.toHaveProperty("x-chatwoot-signature");
    expect(message?.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("includes private notes and template messages, excludes activity messages", async () => {
    await start();
    const { conversationId } = await openConversation(sim, s);
    sim.postAgentMessage({
      accountId: s.accountId,
      conversationId,
      userId: s.agent.id,
      content: "note",
      private: true,
    });
    sim.setConversationStatus(s.accountId, conversationId, "resolved", { userId: s.agent.id });
    await postMessage(conversationId, { content: "tpl", message_type: "template" });
    await sim.waitForWebhookDeliveries({}, { count: 5 });
    expect(
      sim.webhookDeliveries.map((d) => [d.event, d.payload["message_type"] ?? d.payload["status"]]),
    ).toEqual([
      ["conversation_created", "open"],
      ["message_created", "outgoing"],
      ["conversation_status_changed", "resolved"],
      // `status` is in `Conversation#list_of_keys`: the change is also a conversation_updated.
      ["conversation_updated", "resolved"],
      ["message_created", "template"],
    ]);
    const note = sim.webhookDeliveries[1]?.payload as AnyJson;
    expect(note).toMatchObject({
      private: true,
      sender: { id: s.agent.id, type: "user", email: s.agent.email },
    });
    expect(sim.webhookDeliveries[2]?.payload).toMatchObject({
      changed_attributes: [{ status: { previous_value: "open", current_value: "resolved" } }],
    });
  });

  it("marks the message failed with external_error when the receiver answers non-2xx (no retry)", async () => {
    await start({}, (hook) => ({ status: hook.json.event === "message_created" ? 500 : 200 }));
    const { conversationId } = await openConversation(sim, s);
    const message = sim.postAgentMessage({
      accountId: s.accountId,
      conversationId,
      userId: s.admin.id,
      content: "x",
    });
    const [failed] = await sim.waitForWebhookDeliveries({ event: "message_created" });
    expect(failed).toMatchObject({ status: 500, error: "500 Internal Server Error" });
    await sim.waitForBroadcasts({ event: "message.updated" });
    const stored = sim.messages(s.accountId, conversationId).find((m) => m["id"] === message["id"]);
    expect(stored).toMatchObject({
      status: "failed",
      content_attributes: { external_error: "500 Internal Server Error" },
    });
    // The status change is itself a message_updated webhook; nothing is retried.
    await sim.waitForWebhookDeliveries({ event: "message_updated" });
    expect(receiver.received.filter((r) => r.json.event === "message_created")).toHaveLength(1);
  });

  it("times out after webhookTimeoutMs and marks the message failed", async () => {
    await start({ webhookTimeoutMs: 100 }, (hook) => ({
      delayMs: hook.json.event === "message_created" ? 2000 : 0,
    }));
    const { conversationId } = await openConversation(sim, s);
    const message = sim.postAgentMessage({
      accountId: s.accountId,
      conversationId,
      userId: s.admin.id,
      content: "slow",
    });
    const [timedOut] = await sim.waitForWebhookDeliveries({
      event: "message_created",
      messageId: message["id"] as number,
    });
    expect(timedOut).toMatchObject({ status: null, error: "Timed out reading data from server" });
    await sim.waitForBroadcasts({ event: "message.updated" });
    expect(sim.messages(s.accountId, conversationId).at(-1)).toMatchObject({ status: "failed" });
  });

  it("reports a refused connection with Net::HTTP's text", async () => {
    await start();
    await receiver.close();
    const { conversationId } = await openConversation(sim, s);
    sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.admin.id, content: "x" });
    const [refused] = await sim.waitForWebhookDeliveries({ event: "message_created" });
    expect(refused?.error).toMatch(/^Failed to open TCP connection to 127\.0\.0\.1:\d+ \(Connection refused/);
    receiver = await startWebhookReceiver();
  });
});

describe("signed deliveries (4.13)", () => {
  it("signs with the inbox secret, which administrators see in the inbox JSON", async () => {
    await start({ webhookSigning: "secret" });
    const inbox = sim.getInbox(s.accountId, s.inboxId) as AnyJson;
    expect(inbox.secret).toMatch(/^[1-9A-HJ-NP-Za-km-z]{24}$/);
    const asAgent = (await call(sim, "GET", s.path(`/inboxes/${s.inboxId}`), { token: s.agent.accessToken }))
      .json;
    expect(asAgent).not.toHaveProperty("secret");
    await openConversation(sim, s);
    const [delivery] = await sim.waitForWebhookDeliveries();
    const hook = receiver.received[0] as ReceivedWebhook;
    const timestamp = hook.headers["x-chatwoot-timestamp"] as string;
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(5);
    expect(hook.headers["x-chatwoot-signature"]).toBe(webhookSignature(inbox.secret, timestamp, hook.body));
    expect(hook.headers["x-chatwoot-delivery"]).toBe(delivery?.id);
    expect(delivery?.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("can sign per inbox, with the hmac_token (issue #13809), and resets secrets", async () => {
    await start();
    expect(sim.getInbox(s.accountId, s.inboxId)).not.toHaveProperty("secret");
    sim.setWebhookSigning(s.inboxId, "hmac_token");
    const inbox = sim.getInbox(s.accountId, s.inboxId) as AnyJson;
    await openConversation(sim, s);
    await sim.waitForWebhookDeliveries();
    const hook = receiver.received[0] as ReceivedWebhook;
    const timestamp = hook.headers["x-chatwoot-timestamp"] as string;
    expect(hook.headers["x-chatwoot-signature"]).toBe(
      webhookSignature(inbox.hmac_token, timestamp, hook.body),
    );
    expect(hook.headers["x-chatwoot-signature"]).not.toBe(
      webhookSignature(inbox.secret, timestamp, hook.body),
    );
    const next = sim.resetInboxSecret(s.inboxId);
    expect(next).not.toBe(inbox.secret);
    expect(sim.getInbox(s.accountId, s.inboxId)).toMatchObject({ secret: next });
  });
});

describe("message_updated webhooks", () => {
  it("carry Message#webhook_data: no status and no previous_changes; a retry sends two", async () => {
    await start();
    const { conversationId } = await openConversation(sim, s);
    const message = sim.postAgentMessage({
      accountId: s.accountId,
      conversationId,
      userId: s.admin.id,
      content: "x",
    });
    const messageId = message["id"] as number;
    await call(sim, "PATCH", s.path(`/conversations/${conversationId}/messages/${messageId}`), {
      token: s.admin.accessToken,
      body: { status: "failed", external_error: "offline" },
    });
    sim.retryMessage({ accountId: s.accountId, conversationId, messageId });
    const updates = await sim.waitForWebhookDeliveries({ event: "message_updated", messageId }, { count: 3 });
    for (const update of updates) {
      expect(update.payload).not.toHaveProperty("status");
      expect(update.payload).not.toHaveProperty("previous_changes");
      expect(update.payload).not.toHaveProperty("updated_at");
      expect(update.payload).toMatchObject({ id: messageId, message_type: "outgoing", content: "x" });
    }
    // The failure shows only in content_attributes; the retry's two saves are dispatched once both committed.
    expect(updates.map((update) => JSON.parse(update.body).content_attributes)).toEqual([
      { external_error: "offline" },
      {},
      {},
    ]);
  });
});

describe("delivery faults (sim.webhooks)", () => {
  /** Starts with a receiver that notes when each message webhook arrived and may hold its answer. */
  async function startTiming(options: ChatwootSimulatorOptions = {}, holdMs = 0) {
    const arrivals: Array<{ content: unknown; at: number }> = [];
    await start(options, (hook) => {
      if (hook.json.event !== "message_created") return {};
      arrivals.push({ content: hook.json.content, at: Date.now() });
      return { delayMs: holdMs };
    });
    const { conversationId } = await openConversation(sim, s);
    await sim.waitForWebhookDeliveries({ event: "conversation_created" });
    const post = (content: string) =>
      sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.admin.id, content })[
        "id"
      ] as number;
    return { arrivals, conversationId, post };
  }

  it("duplicateNext(n) POSTs the next n deliveries twice, the copy after the first attempt, same id", async () => {
    const { arrivals, post } = await startTiming({ webhookSigning: "secret" }, 150);
    sim.webhooks.duplicateNext(1);
    const twice = post("twice");
    const once = post("once");
    const [first, copy] = await sim.waitForWebhookDeliveries(
      { event: "message_created", messageId: twice },
      { count: 2 },
    );
    await sim.waitForWebhookDeliveries({ event: "message_created", messageId: once });
    expect(arrivals.map((arrival) => arrival.content).sort()).toEqual(["once", "twice", "twice"]);
    expect(first).toMatchObject({ attempt: 1, status: 200 });
    expect(copy).toMatchObject({ attempt: 2, status: 200, id: first!.id, body: first!.body });
    // Same delivery id; the timestamp and signature are those of the copy's own sending (`Time.now.to_i`).
    expect(copy!.headers["x-chatwoot-delivery"]).toBe(first!.id);
    const secret = (sim.getInbox(s.accountId, s.inboxId) as AnyJson).secret as string;
    for (const attempt of [first!, copy!]) {
      const timestamp = attempt.headers["x-chatwoot-timestamp"]!;
      expect(attempt.headers["x-chatwoot-signature"]).toBe(webhookSignature(secret, timestamp, attempt.body));
    }
    const [firstArrival, copyArrival] = arrivals.filter((arrival) => arrival.content === "twice");
    // The receiver held its answer 150 ms: the copy came only after that.
    expect(copyArrival!.at - firstArrival!.at).toBeGreaterThanOrEqual(140);
    const hooks = receiver.received.filter((hook) => hook.json.content === "twice");
    expect(hooks[1]!.headers["x-chatwoot-delivery"]).toBe(hooks[0]!.headers["x-chatwoot-delivery"]);
    expect(hooks[1]!.body).toBe(hooks[0]!.body);
    expect(
      sim.webhookDeliveries.filter((delivery) => delivery.payload["id"] === once).map((d) => d.attempt),
    ).toEqual([1]);
  });

  it("delayNext(n, ms) holds the next n deliveries, without holding later ones or shortening the timeout", async () => {
    const { arrivals, conversationId, post } = await startTiming({ webhookTimeoutMs: 200 });
    sim.webhooks.delayNext(1, 400);
    const late = post("late");
    post("on time");
    const [held] = await sim.waitForWebhookDeliveries(
      { event: "message_created", messageId: late },
      { timeoutMs: 2_000 },
    );
    expect(arrivals.map((arrival) => arrival.content)).toEqual(["on time", "late"]);
    // The 200 ms timeout counts from the POST, not from the queueing: held twice as long as the timeout, the
    // delivery was still answered, not timed out (a timeout would have set `error` and marked the message failed).
    expect(held).toMatchObject({ delayMs: 400, done: true, status: 200, error: null });
    expect(arrivals[1]!.at - held!.at.getTime()).toBeGreaterThanOrEqual(390);
    expect(sim.messages(s.accountId, conversationId).find((m) => m["id"] === late)).toMatchObject({
      status: "sent",
    });
    expect(sim.webhookDeliveries.filter((d) => d.event === "message_created").map((d) => d.delayMs)).toEqual([
      400, 0,
    ]);
  });

  it("refuses invalid counts and delays", async () => {
    await start();
    expect(() => sim.webhooks.duplicateNext(-1)).toThrow(TypeError);
    expect(() => sim.webhooks.duplicateNext(1.5)).toThrow(TypeError);
    expect(() => sim.webhooks.delayNext(-1, 10)).toThrow(TypeError);
    expect(() => sim.webhooks.delayNext(1, -10)).toThrow(TypeError);
    expect(() => sim.webhooks.delayNext(1, Number.POSITIVE_INFINITY)).toThrow(TypeError);
    expect(() => sim.webhooks.delayNext(Number.POSITIVE_INFINITY, 10)).not.toThrow();
  });
});
