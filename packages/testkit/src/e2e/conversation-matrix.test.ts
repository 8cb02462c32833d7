import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { conversationsOf, totalMessages } from "./inspect.js";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const PHONE = "5511944443333";
const send = async (text: string, expectedTotal: number) => {
  await h!.ingest(textEvent({ phone: PHONE, text }));
  await eventually(() => totalMessages(h!) === expectedTotal, { what: `${expectedTotal} messages` });
  // A conversation is created with its first message: the message is in Chatwoot a moment before the chat mapping
  // points at the conversation. Wait for the delivery to finish before an agent acts on it.
  const integration = await h!.store.integrations.get("suporte");
  await eventually(async () => {
    const counts = await h!.store.outbox.count(integration!.id);
    return counts.pending === 0 && counts.claimed === 0;
  });
};
const chatConversation = async () => {
  const integration = await h!.store.integrations.get("suporte");
  return (
    (await h!.store.mappings.getChat(integration!.id, `${PHONE}@s.whatsapp.net`))?.conversationId ?? null
  );
};

const combinations = [
  { startAsPending: false, reopenResolved: false },
  { startAsPending: false, reopenResolved: true },
  { startAsPending: true, reopenResolved: false },
  { startAsPending: true, reopenResolved: true },
];

describe.each(combinations)("startAsPending=$startAsPending reopenResolved=$reopenResolved", (flags) => {
  const initial = flags.startAsPending ? "pending" : "open";

  it(`a new contact gets a conversation that starts ${initial}`, async () => {
    h = await startRoutingHarness({ flags });
    await send("first", 1);
    expect(conversationsOf(h).map((c) => c.status)).toEqual([initial]);
  });

  it("an open conversation is reused and its status is left alone", async () => {
    h = await startRoutingHarness({ flags });
    await send("first", 1);
    const [conversation] = conversationsOf(h);
    h.sim.setConversationStatus(h.accountId, conversation!.id, "open", { userId: h.agent.id });
    await send("second", 2);
    expect(conversationsOf(h).map((c) => [c.id, c.status])).toEqual([[conversation!.id, "open"]]);
  });

  it(
    flags.reopenResolved
      ? "a resolved conversation is reopened by the next message"
      : "a resolved conversation stays resolved and the next message starts a new one",
    async () => {
      h = await startRoutingHarness({ flags });
      await send("first", 1);
      const [conversation] = conversationsOf(h);
      h.sim.setConversationStatus(h.accountId, conversation!.id, "resolved", { userId: h.agent.id });
      if (!flags.reopenResolved)
        await eventually(async () => (await chatConversation()) === null, {
          what: "mapping to forget the conversation",
        });
      await send("after resolve", 2);
      const statuses = conversationsOf(h).map((c) => [c.id, c.status]);
      if (flags.reopenResolved) {
        expect(statuses).toEqual([[conversation!.id, "open"]]);
      } else {
        expect(statuses).toHaveLength(2);
        expect(statuses).toContainEqual([conversation!.id, "resolved"]);
        expect(statuses.find(([id]) => id !== conversation!.id)![1]).toBe(initial);
      }
    },
  );
});
