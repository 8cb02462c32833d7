import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const PHONE = "5511933332222";
const JID = `${PHONE}@s.whatsapp.net`;

async function withConversation(flags: Parameters<typeof startRoutingHarness>[0] = {}): Promise<number> {
  h = await startRoutingHarness(flags);
  await h.ingest(textEvent({ phone: PHONE, text: "hello, I need help" }));
  await eventually(() => totalMessages(h!) === 1);
  return conversationsOf(h)[0]!.id;
}

const reply = (conversationId: number, content: string, extra: { private?: boolean } = {}) =>
  h!.sim.postAgentMessage({
    accountId: h!.accountId,
    conversationId,
    userId: h!.agent.id,
    content,
    ...extra,
  }) as {
    id: number;
  };

describe("Chatwoot → WhatsApp", () => {
  it("forwards an agent reply once, even when Chatwoot sends the event twice", async () => {
    const conversationId = await withConversation();
    // On a loaded machine the 200 ms pings can be missed and the socket reconnects: post once it is subscribed.
    await eventually(() => h!.sim.cable.subscriptions().some((subscription) => subscription.confirmed));
    h!.sim.cable.duplicateNext(1);
    const first = reply(conversationId, "How can I help?");
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    // The duplicate really went out: the reply's message.created reached our socket as two frames (each socket
    // subscribed at that moment got it twice: during a reconnect the old one may still count).
    const broadcast = h!.sim.broadcasts.find(
      (b) => b.event === "message.created" && b.data["id"] === first.id,
    );
    expect(broadcast).toMatchObject({ sent: true });
    expect(broadcast!.frames).toBeGreaterThanOrEqual(2);
    expect(broadcast!.frames % 2).toBe(0);
    // A second reply proves the first event's duplicate was processed (events are handled in order).
    reply(conversationId, "Still there?");
    await eventually(() => h!.gateway.sent("suporte").length === 2);
    expect(h!.gateway.sent("suporte").map((sent) => [sent.to, sent.type, sent.text])).toEqual([
      [JID, "text", "How can I help?"],
      [JID, "text", "Still there?"],
    ]);
  });

  it("applies the signature prefix and never forwards private notes", async () => {
    const conversationId = await withConversation({ flags: { signMessages: true } });
    reply(conversationId, "internal: VIP customer", { private: true });
    reply(conversationId, "Hi! Let me check.");
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    expect(h!.gateway.sent("suporte")[0]!.text).toBe("*Jane*:\nHi! Let me check.");
    // The echo of our send (an outgoing message with our WhatsApp id) is not mirrored back into Chatwoot.
    const [sent] = h!.gateway.sent("suporte");
    await h!.ingest(
      textEvent({ phone: PHONE, text: "*Jane*:\nHi! Let me check.", direction: "outgoing", id: sent!.id }),
    );
    await h!.ingest(textEvent({ phone: PHONE, text: "thanks" }));
    await eventually(() => chatMessages(h!, conversationId).some((m) => m.content === "thanks"));
    expect(chatMessages(h!, conversationId).filter((m) => m.content?.includes("Let me check"))).toHaveLength(
      1,
    );
  });

  it("fetches replies posted while the socket was down after it reconnects", async () => {
    const conversationId = await withConversation();
    await h!.sim.closePort();
    reply(conversationId, "sent while you were away");
    await h!.sim.reopenPort();
    await eventually(() => h!.gateway.sent("suporte").length === 1, {
      timeoutMs: 15_000,
      what: "backfilled reply",
    });
    expect(h!.gateway.sent("suporte")[0]!.text).toBe("sent while you were away");
  });

  it("detects a stale socket (no pings), reconnects and fetches what it missed", async () => {
    const conversationId = await withConversation();
    h!.sim.cable.pausePings();
    reply(conversationId, "during the silence");
    h!.sim.cable.resumePings();
    await eventually(() => h!.gateway.sent("suporte").length === 1, {
      timeoutMs: 15_000,
      what: "reply after staleness",
    });
    expect(h!.gateway.sent("suporte").map((sent) => sent.text)).toEqual(["during the silence"]);
  });

  it("re-reads the profile when the subscription is not confirmed (the pubsub token rotated) and catches up", async () => {
    const conversationId = await withConversation();
    // A password change rotates the pubsub token; the next reconnect's subscription is then met with silence.
    h!.sim.rotatePubsubToken(h!.agent.id);
    const profileReads = h!.sim.countRequests({ method: "GET", path: "/api/v1/profile" });
    h!.sim.cable.dropAll();
    reply(conversationId, "after the password change");
    await eventually(() => h!.gateway.sent("suporte").length === 1, {
      timeoutMs: 20_000,
      what: "reply after resubscribe",
    });
    expect(h!.gateway.sent("suporte")[0]!.text).toBe("after the password change");
    expect(h!.sim.countRequests({ method: "GET", path: "/api/v1/profile" })).toBeGreaterThan(profileReads);
    const token = h!.sim.getUser(h!.agent.id)!.pubsubToken;
    expect(h!.sim.cable.subscriptions().map((subscription) => subscription.pubsubToken)).toContain(token);
  });

  it("shares one socket among the integrations of one Chatwoot user", async () => {
    await withConversation();
    const second = await h!.bridge.activate("vendas", {
      chatwootBaseUrl: h!.sim.url,
      chatwootAccountId: h!.accountId,
      chatwootApiToken: h!.agent.accessToken,
    });
    expect(second.status).toBe("active");
    // One socket for both (a reconnect after missed pings may leave the old one open for a moment, never two for good).
    await eventually(() => h!.sim.cable.connections() === 1, { what: "a single socket" });
  });

  it("marks a reply failed with a private note after its retries, and Chatwoot's retry sends it once", async () => {
    const conversationId = await withConversation();
    h!.gateway.failNext("suporte", 3, "phone offline");
    const message = reply(conversationId, "are you there?");
    await eventually(
      () => chatMessages(h!, conversationId).find((m) => m.id === message.id)?.status === "failed",
      {
        what: "failed status",
      },
    );
    const failed = chatMessages(h!, conversationId).find((m) => m.id === message.id)!;
    expect(failed.content_attributes).toMatchObject({
      external_error: "Not delivered to WhatsApp: phone offline",
    });
    await eventually(() =>
      chatMessages(h!, conversationId).some((m) => m.private && m.content?.includes("phone offline")),
    );
    expect(h!.gateway.sent("suporte")).toEqual([]);

    h!.sim.retryMessage({ accountId: h!.accountId, conversationId, messageId: message.id });
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    await eventually(
      () => chatMessages(h!, conversationId).find((m) => m.id === message.id)?.status === "sent",
    );
    expect(h!.gateway.sent("suporte")[0]!.text).toBe("are you there?");
  });

  it("pauses the integration when Chatwoot rejects the stored token, keeping its work however long it waits", async () => {
    // The dispatcher's clock, moved forward by hand: a paused integration's work is looked at again every minute.
    let offsetMs = 0;
    const clock = { now: () => new Date(Date.now() + offsetMs) };
    const store = createMemoryStore();
    const unfinished = (integrationId: string) =>
      [...store.raw.outbox.values()].filter(
        (item) =>
          item.integrationId === integrationId && (item.status === "pending" || item.status === "claimed"),
      );
    h = await startRoutingHarness({
      store,
      bridge: { clock, realtime: { pingIntervalMs: 200, subscribeTimeoutMs: 2_000, leaseTtlMs: 900 } },
    });
    await h.ingest(textEvent({ phone: PHONE, text: "hello, I need help" }));
    await eventually(() => totalMessages(h!) === 1);
    const conversationId = conversationsOf(h)[0]!.id;
    const newToken = h.sim.revokeAccessToken(h.agent.id);
    await h.ingest(textEvent({ phone: PHONE, text: "anyone?" }));
    const integration = await eventually(async () => {
      const row = await h!.store.integrations.get("suporte");
      return row?.status === "paused" ? row : null;
    });
    expect(integration.lastError).toMatch(/^Chatwoot rejected the stored API token/);
    // A paused integration leaves its realtime subscription; an agent answers after that, while nobody listens.
    await eventually(() => h!.sim.cable.subscriptions().length === 0, { what: "the subscription left" });
    reply(conversationId, "sorry for the wait");

    // Far more minutes than the 3 attempts an agent reply gets: nothing is given up, nothing is sent.
    for (let minute = 1; minute <= 6; minute++) {
      offsetMs = minute * 61_000;
      // Each item was looked at again and put back for another minute.
      await eventually(() =>
        unfinished(integration.id).every((item) => item.availableAt.getTime() > clock.now().getTime()),
      );
    }
    const waiting = unfinished(integration.id);
    expect(waiting.map((item) => item.direction)).toEqual(["inbound"]);
    expect(waiting.every((item) => item.attempts === 0 && item.lastError === "integration is paused")).toBe(
      true,
    );
    expect((await h.store.outbox.count(integration.id)).dead).toBe(0);
    expect(h.gateway.sent("suporte")).toEqual([]);

    // Re-activated with the new token: the customer's message arrives once, the reply posted meanwhile is fetched
    // and sent once.
    const again = await h.bridge.activate("suporte", {
      chatwootBaseUrl: h.sim.url,
      chatwootAccountId: h.accountId,
      chatwootApiToken: newToken,
    });
    expect(again.status).toBe("active");
    offsetMs += 61_000;
    await eventually(() => h!.gateway.sent("suporte").length === 1 && totalMessages(h!) === 3, {
      timeoutMs: 10_000,
      what: "the paused work delivered",
    });
    expect(h.gateway.sent("suporte").map((sent) => sent.text)).toEqual(["sorry for the wait"]);
    expect(
      chatMessages(h, conversationId)
        .filter((m) => m.message_type === 0)
        .map((m) => m.content),
    ).toEqual(["hello, I need help", "anyone?"]);
    // The last item is completed just after its effect is visible.
    await eventually(async () => (await h!.store.outbox.count(integration.id)).claimed === 0, {
      what: "the last item to be completed",
    });
    expect(await h.store.outbox.count(integration.id)).toMatchObject({ pending: 0, claimed: 0, dead: 0 });
  });

  it("stops everything for the instance on deactivation", async () => {
    const conversationId = await withConversation();
    await h!.bridge.deactivate("suporte");
    reply(conversationId, "too late");
    await expect(h!.ingest(textEvent({ phone: PHONE, text: "hello?" }))).resolves.toMatchObject({
      duplicate: false,
      ignored: "no_integration",
    });
    // The realtime link is gone: the socket of this token user is closed.
    await eventually(() => h!.sim.cable.connections() === 0);
    expect(h!.gateway.sent("suporte")).toEqual([]);
  });
});
