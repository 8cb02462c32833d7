import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { countContacts, totalMessages } from "./inspect.js";

// docs/routing.md: `status@broadcast` (WhatsApp statuses) and newsletters (channels) are dropped and counted;
// nothing of them reaches Chatwoot.

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A text event in another chat: the status broadcast, or a newsletter (by JID, and by chat type). */
function inChat(chat: { jid: string; type?: string; name?: string }, text: string) {
  const event = textEvent({ phone: "5511944445555", text });
  (event.data.message as Record<string, unknown>).chat = chat;
  return event;
}

/** Ingests `events`, then a normal message as a barrier, and waits until the outbox has nothing left to do. */
async function ingestThenDrain(events: unknown[]) {
  const results = [];
  for (const event of events) results.push(await h!.ingest(event));
  await h!.ingest(textEvent({ phone: "5511944446666", text: "barrier" }));
  await eventually(() => totalMessages(h!) >= 1, { what: "the barrier message" });
  const integrationId = (await h!.store.integrations.get("suporte"))!.id;
  await eventually(async () => {
    const counts = await h!.store.outbox.count(integrationId);
    return counts.pending === 0 && counts.claimed === 0 ? counts : null;
  });
  return { results, counts: await h!.store.outbox.count(integrationId) };
}

describe("chats that are never routed (docs/routing.md)", () => {
  it("drops messages of status@broadcast (WhatsApp statuses): counted, nothing stored, nothing in Chatwoot", async () => {
    h = await startRoutingHarness();
    const { results, counts } = await ingestThenDrain([
      inChat({ jid: "status@broadcast", type: "private" }, "my status"),
      inChat({ jid: "status@broadcast" }, "another status"),
    ]);
    expect(results.map((result) => result.ignored)).toEqual(["status_broadcast", "status_broadcast"]);
    expect(h.bridge.counters().status_broadcast).toBe(2);
    // Only the barrier was queued and delivered.
    expect(counts).toEqual({ pending: 0, claimed: 0, done: 1, dead: 0 });
    expect(totalMessages(h)).toBe(1);
    expect(countContacts(h)).toBe(1);
  });

  it("drops newsletter messages, recognised by the @newsletter JID or by the chat type", async () => {
    h = await startRoutingHarness();
    const { results, counts } = await ingestThenDrain([
      inChat({ jid: "120363012345678901@newsletter", type: "newsletter", name: "News" }, "by type and JID"),
      inChat(
        { jid: "120363012345678902@newsletter", name: "News" },
        "by JID only (type defaults to private)",
      ),
      inChat({ jid: "120363012345678903@newsletter", type: "private" }, "by JID, typed private"),
      inChat({ jid: "120363012345678904@g.us", type: "newsletter" }, "by type only"),
    ]);
    expect(results.map((result) => result.ignored)).toEqual([
      "newsletter",
      "newsletter",
      "newsletter",
      "newsletter",
    ]);
    expect(h.bridge.counters().newsletter).toBe(4);
    expect(counts).toEqual({ pending: 0, claimed: 0, done: 1, dead: 0 });
    expect(totalMessages(h)).toBe(1);
    expect(countContacts(h)).toBe(1);
  });
});
