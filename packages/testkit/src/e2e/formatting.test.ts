import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";
import { type DeliveryMode, startModeHarness } from "./modes.js";

// Chatwoot's editor stores Markdown, Shift+Enter as a backslash hard break ("\\\n", issues #13458/#13938; only the
// 4.13+ webhook strips it, app/services/messages/webhook_content_normalizer.rb). Its WhatsApp channel converts the
// Markdown (app/services/messages/markdown_renderers/whats_app_renderer.rb); an API inbox gets it raw.

const PHONE = "5511900003333";
let running: { close(): Promise<void> } | undefined;
let h: RoutingHarness;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function withConversation(mode: DeliveryMode, flags: { signMessages?: boolean } = {}) {
  running = await startModeHarness(mode, { flags });
  h = (running as Awaited<ReturnType<typeof startModeHarness>>).h;
  await h.ingest(textEvent({ phone: PHONE, text: "hello" }));
  await eventually(() => totalMessages(h) === 1);
  return conversationsOf(h)[0]!.id;
}

const reply = (conversationId: number, content: string) =>
  h.sim.postAgentMessage({ accountId: h.accountId, conversationId, userId: h.agent.id, content });
const sentTexts = () => h.gateway.sent("suporte").map((sent) => sent.text);

describe.each(["realtime", "webhook"] as const)("agent formatting on WhatsApp (%s)", (mode) => {
  it("turns the editor's Markdown into WhatsApp markup, without the backslash of Shift+Enter", async () => {
    const conversationId = await withConversation(mode);
    reply(
      conversationId,
      "**Order shipped** for *you*: ~~tomorrow~~ today.\\\nCode: `AB-12`\\\nTrack it [here](https://t.example/AB-12)\n\n1. open the link\n2. sign in",
    );
    reply(conversationId, "Run this:\n\n```\nnpm start\n```");
    await eventually(() => h.gateway.sent("suporte").length === 2);
    expect(sentTexts()).toEqual([
      "*Order shipped* for _you_: ~tomorrow~ today.\nCode: `AB-12`\nTrack it https://t.example/AB-12\n\n1. open the link\n2. sign in",
      "Run this:\n\n```npm start```",
    ]);
    // Chatwoot keeps what the agent wrote.
    expect(chatMessages(h, conversationId).at(-1)!.content).toBe("Run this:\n\n```\nnpm start\n```");
  });

  it("leaves plain text alone", async () => {
    const conversationId = await withConversation(mode);
    reply(conversationId, "Olá! Your order 1234 (R$ 50,00) ships today - 2 * 3 = 6, snake_case stays.");
    await eventually(() => h.gateway.sent("suporte").length === 1);
    expect(sentTexts()).toEqual([
      "Olá! Your order 1234 (R$ 50,00) ships today - 2 * 3 = 6, snake_case stays.",
    ]);
  });
});

describe("WhatsApp text shown in Chatwoot", () => {
  it("keeps text typed on the phone as typed, {{…}} included, though Chatwoot renders Liquid in outgoing messages", async () => {
    const conversationId = await withConversation("realtime");
    const typed = [
      "Your code is {{1234}}, {{contact.name}} `{{kept}}` {{ still }}",
      "Olá {{nome}}, seu pedido {{ pedido }} chegou",
      "{% if x %} and Bye {{",
    ];
    for (const text of typed) await h.ingest(textEvent({ phone: PHONE, text, direction: "outgoing" }));
    await eventually(() => totalMessages(h) === 4, { what: "all mirrored" });
    expect(
      chatMessages(h, conversationId)
        .filter((m) => m.message_type === 1)
        .map((m) => m.content),
    ).toEqual(typed);
    // Mirrored messages are never sent back to WhatsApp.
    expect(h.gateway.sent("suporte")).toEqual([]);
  });

  it("stores the customer's WhatsApp formatting as Chatwoot's WhatsApp channel does: unchanged", async () => {
    const conversationId = await withConversation("realtime");
    await h.ingest(textEvent({ phone: PHONE, text: "*urgent* _please_ ~not~ ```code``` {{x}}" }));
    await eventually(() => totalMessages(h) === 2);
    expect(chatMessages(h, conversationId).at(-1)!.content).toBe("*urgent* _please_ ~not~ ```code``` {{x}}");
  });
});
