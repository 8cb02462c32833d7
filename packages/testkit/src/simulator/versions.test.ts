import { afterEach, describe, expect, it } from "vitest";
import {
  CHATWOOT_VERSIONS,
  type ChatwootSimulator,
  type ChatwootVersion,
  startChatwootSimulator,
  webhookSignature,
} from "./index.js";
import {
  type AnyJson,
  CableClient,
  call,
  openConversation,
  type ReceivedWebhook,
  type Seed,
  seed,
  startWebhookReceiver,
} from "./test-support.js";

// The version matrix (docs/chatwoot-versions.md), each row from Chatwoot's source at the release commits read for
// /work/notes/chatwoot-facts.md: `app/controllers/api_controller.rb` (GET /api), `lib/webhooks/trigger.rb` and
// `app/listeners/webhook_listener.rb` (headers, signing, event list), `app/views/api/v1/models/_inbox.json.jbuilder`
// (`secret`), `config/routes.rb` (`reset_secret`), `app/services/messages/webhook_content_normalizer.rb` (4.13.0).

let sim: ChatwootSimulator | undefined;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>> | undefined;
afterEach(async () => {
  await sim?.close();
  await receiver?.close();
  sim = undefined;
  receiver = undefined;
});

async function start(version?: ChatwootVersion): Promise<{ sim: ChatwootSimulator; s: Seed }> {
  receiver = await startWebhookReceiver();
  sim = await startChatwootSimulator(version === undefined ? {} : { version });
  return { sim, s: seed(sim, { channel: { webhook_url: receiver.url } }) };
}

const RELEASES = { "4.10": "4.10.0", "4.11": "4.11.2", "4.12": "4.12.1", "4.13": "4.13.0" } as const;

describe("GET /api (ApiController#index)", () => {
  it.each(CHATWOOT_VERSIONS)("answers the %s release without authentication", async (version) => {
    const { sim } = await start(version);
    const answer = await call(sim, "GET", "/api");
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(answer.json).toEqual({
      version: RELEASES[version],
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
      queue_services: "ok",
      data_services: "ok",
    });
    expect(sim.version).toBe(version);
  });

  it("plays the newest version by default and refuses a version it does not play", async () => {
    const { sim } = await start();
    expect(sim.version).toBe("4.13");
    expect(((await call(sim, "GET", "/api")).json as AnyJson).version).toBe("4.13.0");
    await expect(startChatwootSimulator({ version: "4.9" as ChatwootVersion })).rejects.toThrow(
      /version must be one of 4\.10, 4\.11, 4\.12, 4\.13/,
    );
  });
});

describe("API-inbox webhook headers per version", () => {
  const chatwootHeaders = (hook: ReceivedWebhook) =>
    Object.keys(hook.headers)
      .filter((name) => name.startsWith("x-chatwoot-"))
      .sort();

  it.each([
    ["4.10", []],
    ["4.11", []],
    ["4.12", ["x-chatwoot-delivery"]],
    ["4.13", ["x-chatwoot-delivery", "x-chatwoot-signature", "x-chatwoot-timestamp"]],
  ] as const)("%s sends %j", async (version, expected) => {
    const { sim, s } = await start(version);
    await openConversation(sim, s);
    const [delivery] = await sim.waitForWebhookDeliveries({ event: "conversation_created" });
    const hook = receiver!.received[0]!;
    expect(chatwootHeaders(hook)).toEqual(expected);
    expect(delivery!.signing).toBe(version === "4.13" ? "secret" : "off");
    if (version === "4.12" || version === "4.13") {
      expect(hook.headers["x-chatwoot-delivery"]).toBe(delivery!.id);
      expect(delivery!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    if (version === "4.13") {
      const secret = (sim.getInbox(s.accountId, s.inboxId) as AnyJson).secret as string;
      const timestamp = hook.headers["x-chatwoot-timestamp"] as string;
      expect(timestamp).toMatch(/^\d{10}$/);
      expect(hook.headers["x-chatwoot-signature"]).toBe(webhookSignature(secret, timestamp, hook.body));
      expect(hook.headers["x-chatwoot-signature"]).toMatch(/^sha256=[0-9a-f]{64}$/);
    }
  });

  it("4.13: a redelivery keeps its X-Chatwoot-Delivery and body, with a timestamp and signature of its own time", async () => {
    const { sim, s } = await start("4.13");
    const { conversationId } = await openConversation(sim, s);
    sim.webhooks.duplicateNext(1);
    sim.webhooks.delayNext(1, 1_100);
    const id = sim.postAgentMessage({
      accountId: s.accountId,
      conversationId,
      userId: s.admin.id,
      content: "x",
    })["id"] as number;
    const [first, copy] = await sim.waitForWebhookDeliveries(
      { event: "message_created", messageId: id },
      { count: 2, timeoutMs: 5_000 },
    );
    const secret = (sim.getInbox(s.accountId, s.inboxId) as AnyJson).secret as string;
    expect(copy!.headers["x-chatwoot-delivery"]).toBe(first!.headers["x-chatwoot-delivery"]);
    expect(copy!.body).toBe(first!.body);
    for (const delivery of [first!, copy!]) {
      const timestamp = delivery.headers["x-chatwoot-timestamp"]!;
      expect(delivery.headers["x-chatwoot-signature"]).toBe(
        webhookSignature(secret, timestamp, delivery.body),
      );
      // Signed when sent (after the 1.1 s hold), not when queued.
      expect(Number(timestamp)).toBeGreaterThanOrEqual(Math.floor(delivery.at.getTime() / 1000));
    }
  });
});

describe("the inbox secret (4.13)", () => {
  it.each(CHATWOOT_VERSIONS)("%s: is shown to administrators only, from 4.13 on", async (version) => {
    const { sim, s } = await start(version);
    const read = async (path: string, token: string) =>
      (await call(sim, "GET", s.path(path), { token })).json as AnyJson;
    const asAdmin = await read(`/inboxes/${s.inboxId}`, s.admin.accessToken);
    const asAgent = await read(`/inboxes/${s.inboxId}`, s.agent.accessToken);
    const listed = await read("/inboxes", s.admin.accessToken);
    if (version === "4.13") {
      expect(asAdmin.secret).toMatch(/^[1-9A-HJ-NP-Za-km-z]{24}$/);
      expect(listed.payload[0].secret).toBe(asAdmin.secret);
      // `secret` comes right after `hmac_token`, as in the jbuilder partial.
      const keys = Object.keys(asAdmin);
      expect(keys[keys.indexOf("hmac_token") + 1]).toBe("secret");
    } else {
      expect(asAdmin).not.toHaveProperty("secret");
      expect(listed.payload[0]).not.toHaveProperty("secret");
    }
    expect(asAgent).not.toHaveProperty("secret");
    expect(asAgent).not.toHaveProperty("hmac_token");
  });

  it("is rotated by POST …/inboxes/:id/reset_secret (administrators only), and later deliveries use the new one", async () => {
    const { sim, s } = await start("4.13");
    const before = (sim.getInbox(s.accountId, s.inboxId) as AnyJson).secret as string;
    const path = s.path(`/inboxes/${s.inboxId}/reset_secret`);
    const denied = await call(sim, "POST", path, { token: s.agent.accessToken });
    expect(denied).toMatchObject({
      status: 401,
      json: { error: "You are not authorized to do this action" },
    });
    const reset = await call(sim, "POST", path, { token: s.admin.accessToken });
    expect(reset.status).toBe(200);
    const after = (reset.json as AnyJson).secret as string;
    expect(after).toMatch(/^[1-9A-HJ-NP-Za-km-z]{24}$/);
    expect(after).not.toBe(before);
    expect(sim.getInbox(s.accountId, s.inboxId)).toMatchObject({ secret: after });
    await openConversation(sim, s);
    await sim.waitForWebhookDeliveries({ event: "conversation_created" });
    const hook = receiver!.received[0]!;
    const timestamp = hook.headers["x-chatwoot-timestamp"] as string;
    expect(hook.headers["x-chatwoot-signature"]).toBe(webhookSignature(after, timestamp, hook.body));
  });

  it("cannot be rotated before 4.13: the route does not exist (404)", async () => {
    const { sim, s } = await start("4.12");
    const answer = await call(sim, "POST", s.path(`/inboxes/${s.inboxId}/reset_secret`), {
      token: s.admin.accessToken,
    });
    expect(answer).toMatchObject({ status: 404, json: { status: 404, error: "Not Found" } });
  });
});

describe("webhook event list (webhook_listener.rb, the same in every version)", () => {
  it("a status change is conversation_status_changed then conversation_updated; typing is conversation_typing_on/off", async () => {
    const { sim, s } = await start("4.10");
    const { conversationId } = await openConversation(sim, s);
    sim.setConversationStatus(s.accountId, conversationId, "resolved", { userId: s.admin.id });
    sim.toggleTyping({
      accountId: s.accountId,
      conversationId,
      userId: s.agent.id,
      status: "on",
      isPrivate: true,
    });
    sim.toggleTyping({ accountId: s.accountId, conversationId, userId: s.agent.id, status: "off" });
    const deliveries = await sim.waitForWebhookDeliveries({}, { count: 5 });
    expect(deliveries.map((delivery) => delivery.event)).toEqual([
      "conversation_created",
      "conversation_status_changed",
      "conversation_updated",
      "conversation_typing_on",
      "conversation_typing_off",
    ]);
    const changed = [{ status: { previous_value: "open", current_value: "resolved" } }];
    expect(deliveries[1]!.payload).toMatchObject({
      id: conversationId,
      status: "resolved",
      changed_attributes: changed,
    });
    expect(deliveries[2]!.payload).toMatchObject({
      id: conversationId,
      status: "resolved",
      changed_attributes: changed,
    });
    expect(deliveries[3]!.payload).toEqual({
      event: "conversation_typing_on",
      user: { id: s.agent.id, name: "Sam Agent", email: s.agent.email, type: "user" },
      conversation: expect.objectContaining({ id: conversationId, inbox_id: s.inboxId }),
      is_private: true,
    });
    expect(deliveries[4]!.payload).toMatchObject({ event: "conversation_typing_off", is_private: false });
  });

  it("typing is broadcast on the cable to everyone but the typer", async () => {
    const { sim, s } = await start("4.13");
    const { conversationId } = await openConversation(sim, s);
    sim.toggleTyping({ accountId: s.accountId, conversationId, userId: s.agent.id, status: "on" });
    const [typing] = await sim.waitForBroadcasts({ event: "conversation.typing_on" });
    expect(typing!.userIds).toEqual([s.admin.id]);
    expect(typing!.data).toMatchObject({
      conversation: { id: conversationId },
      user: { id: s.agent.id, type: "user" },
      is_private: false,
      account_id: s.accountId,
    });
    expect(() =>
      sim.toggleTyping({ accountId: s.accountId, conversationId, userId: s.outsider.id, status: "on" }),
    ).toThrow(/cannot see inbox/);
  });
});

describe("webhook content: the dashboard's hard breaks (`\\` before a newline)", () => {
  it.each([
    ["4.12", "line 1\\\nline 2\\\r\nline 3"],
    ["4.13", "line 1\nline 2\nline 3"],
  ] as const)("%s sends %j; cable and REST keep the backslash", async (version, expected) => {
    const { sim, s } = await start(version);
    const { conversationId } = await openConversation(sim, s);
    const typed = "line 1\\\nline 2\\\r\nline 3";
    const id = sim.postAgentMessage({
      accountId: s.accountId,
      conversationId,
      userId: s.admin.id,
      content: typed,
    })["id"] as number;
    const [delivery] = await sim.waitForWebhookDeliveries({ event: "message_created", messageId: id });
    expect(delivery!.payload["content"]).toBe(expected);
    expect((delivery!.payload["conversation"] as AnyJson).messages[0].content).toBe(expected);
    sim.setConversationStatus(s.accountId, conversationId, "pending", { userId: s.admin.id });
    const [changed] = await sim.waitForWebhookDeliveries({ event: "conversation_status_changed" });
    expect((changed!.payload as AnyJson).messages[0].content).toBe(expected);
    const [broadcast] = await sim.waitForBroadcasts({ event: "message.created" });
    expect(broadcast!.data["content"]).toBe(typed);
    expect(sim.messages(s.accountId, conversationId).find((m) => m["id"] === id)?.["content"]).toBe(typed);
  });
});

describe("realtime is the same in every version", () => {
  it.each(CHATWOOT_VERSIONS)("%s: an agent reply reaches a subscribed administrator", async (version) => {
    const { sim, s } = await start(version);
    const client = await CableClient.connect(sim.url);
    try {
      await client.subscribeAs(s.admin, s.accountId);
      const { conversationId } = await openConversation(sim, s);
      sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.agent.id, content: "hi" });
      const [frame] = await client.waitFor((entry) => entry.message?.event === "message.created");
      expect(frame!.message.data).toMatchObject({ content: "hi", conversation_id: conversationId });
    } finally {
      client.close();
    }
  });
});

describe("contacts/search (contacts_controller.rb, 4.11.0: PRs #12956 and #13376)", () => {
  it.each([
    ["4.10", ["Acme buyer", "With phone"], { count: 2, current_page: 1 }],
    ["4.11", ["Name only", "With phone"], { count: 2, current_page: 1, has_more: false }],
  ] as const)("%s finds %j", async (version, names, meta) => {
    const { sim, s } = await start(version);
    sim.createContact(s.accountId, { name: "Name only searchable" });
    sim.createContact(s.accountId, { name: "With phone searchable", phone_number: "+15550100" });
    sim.createContact(s.accountId, {
      name: "Acme buyer",
      email: "buyer@example.test",
      additional_attributes: { company_name: "searchable corp" },
    });
    const answer = await call(sim, "GET", s.path("/contacts/search?q=searchable"), {
      token: s.admin.accessToken,
    });
    const body = answer.json as AnyJson;
    expect(body.payload.map((contact: AnyJson) => contact.name.replace(" searchable", "")).sort()).toEqual(
      names,
    );
    expect(body.meta).toEqual(meta);
  });

  it("4.11: count is the rows of this page and has_more tells whether another page exists", async () => {
    const { sim, s } = await start("4.11");
    for (let i = 0; i < 17; i++) sim.createContact(s.accountId, { name: `Customer ${i}` });
    const page = async (n: number) =>
      (
        (
          await call(sim, "GET", s.path(`/contacts/search?q=customer&page=${n}`), {
            token: s.admin.accessToken,
          })
        ).json as AnyJson
      ).meta;
    expect(await page(1)).toEqual({ count: 15, current_page: "1", has_more: true });
    expect(await page(2)).toEqual({ count: 2, current_page: "2", has_more: false });
  });
});
