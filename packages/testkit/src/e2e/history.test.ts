// History without holes (docs/history.md): WhatsApp's history sync (`message.history: true`) is routed like live
// messages in the gap after a chat's last routed message, older history only when `importHistoryDays` asks for it.
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { allMessages, chatMessages, conversationsOf } from "./inspect.js";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** mulberry32: a small seeded generator, so that a failing interleaving can be replayed with HISTORY_SEED. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Planned {
  chat: number;
  n: number;
  id: string;
  phone: string;
  at: Date;
}

function messageEvent(message: Planned, history: boolean) {
  const event = textEvent({
    phone: message.phone,
    text: `chat ${message.chat} #${message.n}`,
    id: message.id,
    name: `Customer ${message.chat}`,
  });
  event.data.message.timestamp = message.at.toISOString();
  if (history) event.data.message.history = true;
  return event;
}

async function list(): Promise<{ status: number; body: Record<string, unknown> }> {
  const answer = await h!.bridge.http.handle({
    method: "GET",
    path: "/api/chatwoot/list/suporte",
    headers: { token: "t" },
  });
  return { status: answer!.status, body: JSON.parse(answer!.body!) };
}

async function drained(): Promise<boolean> {
  const counts = await h!.store.outbox.count((await h!.store.integrations.get("suporte"))!.id);
  return counts.pending === 0 && counts.claimed === 0;
}

const DAY = 86_400_000;
const phoneOf = (chat: number) => `55119${String(20_000_000 + chat)}`;

describe("history sync", () => {
  it("a batch of 500 messages across 20 chats, delivered twice and interleaved with live copies, leaves exactly 500 messages in per-chat timestamp order", async () => {
    const seed = Number(process.env.HISTORY_SEED ?? Date.now() % 1_000_000);
    console.log(`history interleaving seed: ${seed} (HISTORY_SEED=${seed} replays it)`);
    const next = random(seed);
    h = await startRoutingHarness();
    const createdAt = (await h.store.integrations.get("suporte"))!.createdAt.getTime();

    // 25 messages per chat written while the bridge was offline (after the integration began), and 3 older ones
    // from before it: history, not the gap, so not routed with the default `importHistoryDays: 0`.
    const gap: Planned[] = [];
    const older: Planned[] = [];
    for (let chat = 0; chat < 20; chat++) {
      for (let n = 0; n < 25; n++)
        gap.push({
          chat,
          n,
          id: `3EB0HIST${String(chat).padStart(2, "0")}${String(n).padStart(4, "0")}`,
          phone: phoneOf(chat),
          // Whole seconds, as WhatsApp's timestamps are; two messages of a chat may share one.
          at: new Date(Math.floor(createdAt / 1000) * 1000 + 1000 + Math.floor(n / 2) * 1000),
        });
      for (let n = 0; n < 3; n++)
        older.push({
          chat,
          n: -3 + n,
          id: `3EB0OLD${String(chat).padStart(2, "0")}${String(n).padStart(4, "0")}`,
          phone: phoneOf(chat),
          at: new Date(createdAt - 2 * DAY + n * 60_000),
        });
    }
    // A history batch as the Baileys attachment passes it: oldest first (ties in batch order).
    const batch = [...older, ...gap].sort((a, b) => a.at.getTime() - b.at.getTime());
    const liveCopies = gap.filter(() => next() < 0.3);

    // Three streams interleaved at random: the batch, the batch again, and live copies of some of its messages. A
    // live message of a chat arrives only after the chat's earlier messages did (WhatsApp sends a chat in order).
    const streams: Array<{ items: Planned[]; history: boolean }> = [
      { items: [...batch], history: true },
      { items: [...batch], history: true },
      { items: [...liveCopies], history: false },
    ];
    const arrived = new Map<number, number>(); // chat → messages of the gap ingested by any stream
    const seen = new Set<string>();
    const results: Array<{ history: boolean; old: boolean; duplicate: boolean }> = [];
    while (streams.some((stream) => stream.items.length > 0)) {
      const ready = streams.filter((stream) => {
        const head = stream.items[0];
        if (!head) return false;
        return stream.history || head.n <= (arrived.get(head.chat) ?? 0);
      });
      const stream = ready[Math.floor(next() * ready.length)]!;
      const message = stream.items.shift()!;
      const answer = await h.ingest(messageEvent(message, stream.history));
      results.push({ history: stream.history, old: message.n < 0, duplicate: answer.duplicate });
      if (message.n >= 0 && !seen.has(message.id)) {
        seen.add(message.id);
        arrived.set(message.chat, (arrived.get(message.chat) ?? 0) + 1);
      }
    }

    await eventually(drained, { what: "the outbox drained", timeoutMs: 60_000 });
    const messages = allMessages(h.sim, h.accountId);
    expect(messages).toHaveLength(500);
    expect(new Set(messages.map((message) => message.source_id)).size).toBe(500);
    const conversations = conversationsOf(h);
    expect(conversations).toHaveLength(20);
    for (const conversation of conversations) {
      const texts = chatMessages(h, conversation.id).map((message) => message.content!);
      const chat = texts[0]!.split(" #")[0]!;
      expect(texts).toEqual(Array.from({ length: 25 }, (_, n) => `${chat} #${n}`));
      expect(conversation.status).toBe("open");
    }

    // list shows the progress: every history message stored once is imported (routed) or skipped (older).
    const queued = results.filter((result) => result.history && !result.duplicate);
    const { status, body } = await list();
    expect(status).toBe(200);
    expect(body.history).toEqual({
      imported: queued.filter((result) => !result.old).length,
      skipped: 60,
      pending: 0,
    });
  }, 120_000);

  it("older history is imported only when asked: private notes in a resolved conversation, oldest first, never reopened nor sent", async () => {
    const logged: Array<{ msg: string; fields: object }> = [];
    const info = (fields: object, msg?: string) => void logged.push({ msg: msg ?? "", fields });
    h = await startRoutingHarness({
      flags: { importHistoryDays: 30 },
      bridge: { logger: { debug() {}, info, warn() {}, error() {} } },
    });
    const createdAt = (await h.store.integrations.get("suporte"))!.createdAt.getTime();
    const phone = "5511977776666";
    await h.ingest(textEvent({ phone, text: "live, after activation", id: "3EB0LIVE00000001" }));
    await eventually(() => allMessages(h!.sim, h!.accountId).length === 1, { what: "the live message" });

    const planned = (n: number, daysAgo: number): Planned => ({
      chat: 1,
      n,
      id: `3EB0IMPORT000000${n}`,
      phone,
      at: new Date(createdAt - daysAgo * DAY),
    });
    // Oldest first, as the Baileys attachment orders a batch; the first is older than 30 days.
    for (const message of [planned(0, 45), planned(1, 20), planned(2, 10), planned(3, 1)]) {
      expect((await h.ingest(messageEvent(message, true))).duplicate).toBe(false);
    }
    await eventually(drained, { what: "the outbox drained" });

    const conversations = conversationsOf(h);
    expect(conversations).toHaveLength(2);
    const live = conversations.find((conversation) => conversation.status === "open")!;
    const imported = conversations.find((conversation) => conversation.status === "resolved")!;
    expect(chatMessages(h, live.id).map((message) => message.content)).toEqual(["live, after activation"]);
    const notes = chatMessages(h, imported.id);
    expect(notes.map((message) => [message.private, message.message_type])).toEqual([
      [true, 1],
      [true, 1],
      [true, 1],
    ]);
    expect(notes.map((message) => message.content!.split("\n")[1])).toEqual([
      "chat 1 #1",
      "chat 1 #2",
      "chat 1 #3",
    ]);
    expect(notes[0]!.content).toMatch(/^🕘 Customer 1, \d{4}-\d\d-\d\d \d\d:\d\d UTC:\n/);
    expect(notes.map((message) => message.source_id)).toEqual([
      "WAID:3EB0IMPORT0000001",
      "WAID:3EB0IMPORT0000002",
      "WAID:3EB0IMPORT0000003",
    ]);
    // Nothing went to WhatsApp, and the person's live conversation continues.
    expect(h.gateway.sent("suporte")).toEqual([]);
    await h.ingest(textEvent({ phone, text: "still here" }));
    await eventually(() => chatMessages(h!, live.id).length === 2, { what: "the next live message" });
    expect(conversationsOf(h).find((conversation) => conversation.id === imported.id)!.status).toBe(
      "resolved",
    );

    const { body } = await list();
    expect(body.import_history_days).toBe(30);
    expect(body.history).toEqual({ imported: 3, skipped: 1, pending: 0 });
    // The logs say when the sync caught up, with the same counts.
    expect(logged.filter((line) => line.msg.startsWith("whatsapp: history sync")).at(-1)).toEqual({
      msg: "whatsapp: history sync caught up",
      fields: { instance: "suporte", imported: 3, skipped: 1, pending: 0 },
    });
  });

  it("an import whose answer was lost is found again on retry: one history conversation, each note once", async () => {
    h = await startRoutingHarness({ flags: { importHistoryDays: 30 } });
    const createdAt = (await h.store.integrations.get("suporte"))!.createdAt.getTime();
    const phone = "5511955554444";
    const planned = (n: number): Planned => ({
      chat: 2,
      n,
      id: `3EB0LOST00000000${n}`,
      phone,
      at: new Date(createdAt - DAY + n * 60_000),
    });
    // Chatwoot saves the conversation (with the first note), then the answer is lost; the same for the next note.
    const opened = h.sim.faults.inject({
      method: "POST",
      path: /\/conversations$/,
      times: 1,
      afterHandling: true,
      reset: true,
    });
    const added = h.sim.faults.inject({
      method: "POST",
      path: /\/conversations\/\d+\/messages$/,
      times: 1,
      afterHandling: true,
      reset: true,
    });
    for (const n of [0, 1, 2]) await h.ingest(messageEvent(planned(n), true));
    await eventually(drained, { what: "the outbox drained" });
    expect([opened.hits, added.hits]).toEqual([1, 1]);

    const conversations = conversationsOf(h);
    expect(conversations.map((conversation) => conversation.status)).toEqual(["resolved"]);
    expect(chatMessages(h, conversations[0]!.id).map((message) => message.source_id)).toEqual([
      "WAID:3EB0LOST000000000",
      "WAID:3EB0LOST000000001",
      "WAID:3EB0LOST000000002",
    ]);
    expect((await list()).body.history).toEqual({ imported: 3, skipped: 0, pending: 0 });
  });

  it("importHistoryDays is validated with the field named", async () => {
    h = await startRoutingHarness();
    for (const [value, reason] of [
      [-1, "must be between 0 and 365"],
      [1.5, "must be an integer"],
      ["7", "must be an integer"],
      [366, "must be between 0 and 365"],
    ] as const) {
      const answer = await h.bridge.http.handle({
        method: "POST",
        path: "/api/chatwoot/set/vendas",
        headers: { token: "t", "content-type": "application/json" },
        body: {
          chatwootBaseUrl: h.sim.url,
          chatwootAccountId: h.accountId,
          chatwootApiToken: "x",
          importHistoryDays: value,
        },
      });
      expect(answer!.status).toBe(400);
      expect(JSON.parse(answer!.body!).error.message).toContain(`importHistoryDays: ${reason}`);
    }
  });
});
