import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { HttpHandler } from "@ryze/chatwoot-core/adapter";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

// docs/routing.md: with `reopenResolved: false` the chat mapping forgets a conversation when Chatwoot reports it
// resolved — realtime event, webhook, or the backfill after an outage — so the next customer message starts a new
// conversation and the resolved one stays resolved. (The realtime event is covered by conversation-matrix.test.ts.)

const PHONE = "5511988885555";

let h: RoutingHarness | undefined;
let server: Server | undefined;
afterEach(async () => {
  await h?.close();
  server?.closeAllConnections();
  server?.close();
  h = undefined;
  server = undefined;
});

async function host(): Promise<{ url: string; mount(handler: HttpHandler): void }> {
  let handler: HttpHandler | null = null;
  const started = createServer((req, res) => {
    void (async () => {
      const answer = await handler?.handle({
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers: req.headers,
        stream: req,
      });
      if (!answer) return void res.writeHead(404).end();
      res.writeHead(answer.status, answer.headers).end(answer.body ?? undefined);
    })();
  });
  server = started;
  started.listen(0, "127.0.0.1");
  await once(started, "listening");
  return {
    url: `http://127.0.0.1:${(started.address() as AddressInfo).port}`,
    mount(next) {
      handler = next;
    },
  };
}

/** The conversation the chat mapping holds for the phone (null once forgotten). */
async function mappedConversation(): Promise<number | null> {
  const integration = await h!.store.integrations.get("suporte");
  return (
    (await h!.store.mappings.getChat(integration!.id, `${PHONE}@s.whatsapp.net`))?.conversationId ?? null
  );
}

async function firstConversation(): Promise<number> {
  await h!.ingest(textEvent({ phone: PHONE, text: "first" }));
  await eventually(() => totalMessages(h!) === 1);
  const conversationId = conversationsOf(h!)[0]!.id;
  await eventually(async () => (await mappedConversation()) === conversationId);
  return conversationId;
}

/** The next customer message: a new conversation (open), the resolved one untouched. */
async function expectNewConversation(resolvedId: number): Promise<void> {
  await h!.ingest(textEvent({ phone: PHONE, text: "a new question" }));
  await eventually(() => totalMessages(h!) === 2);
  const conversations = conversationsOf(h!).map((conversation) => [conversation.id, conversation.status]);
  expect(conversations).toHaveLength(2);
  expect(conversations).toContainEqual([resolvedId, "resolved"]);
  const fresh = conversations.find(([id]) => id !== resolvedId)!;
  expect(fresh[1]).toBe("open");
  expect(chatMessages(h!, resolvedId).map((message) => message.content)).toEqual(["first"]);
  expect(chatMessages(h!, fresh[0] as number).map((message) => message.content)).toEqual(["a new question"]);
}

describe("reopenResolved: false — a resolved conversation is not reused (docs/routing.md)", () => {
  it("when the conversation was resolved during a realtime outage, the backfill after the reconnect forgets it", async () => {
    h = await startRoutingHarness({ flags: { reopenResolved: false } });
    const conversationId = await firstConversation();
    // The socket is down while an agent resolves the conversation: the realtime event is lost.
    await h.sim.closePort();
    h.sim.setConversationStatus(h.accountId, conversationId, "resolved", { userId: h.agent.id });
    await h.sim.reopenPort();
    // The moment the backfill has run is only visible in the mapping; the outcome that matters is checked below.
    await eventually(async () => (await mappedConversation()) === null, { timeoutMs: 15_000 }).catch(
      () => {},
    );
    await expectNewConversation(conversationId);
  });

  it("in webhook mode, the conversation_status_changed webhook makes it forget the resolved conversation", async () => {
    const site = await host();
    h = await startRoutingHarness({
      flags: { reopenResolved: false },
      bridge: { delivery: "webhook", publicUrl: site.url },
    });
    site.mount(h.bridge.http);
    const conversationId = await firstConversation();
    h.sim.setConversationStatus(h.accountId, conversationId, "resolved", { userId: h.agent.id });
    const [delivery] = await h.sim.waitForWebhookDeliveries({ event: "conversation_status_changed" });
    expect(delivery).toMatchObject({ status: 200 });
    await eventually(async () => (await mappedConversation()) === null).catch(() => {});
    await expectNewConversation(conversationId);
  });
});
