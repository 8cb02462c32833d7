// The realtime link heals itself where real Chatwoot leaves it silent (issue "Chatwoot as it really behaves", items
// 1-4; issue "Truthful health", deafness): a refused subscribe, a rotated pubsub token, a revoked and restored role,
// a long socket outage, and a subscription that stays confirmed while its stream is cut. In each case an agent reply
// posted meanwhile reaches WhatsApp exactly once after the heal, and `list` shows the link unhealthy in between.
//
// Chatwoot's behaviour simulated here (4.10.0 to 4.13.0, unchanged): app/channels/room_channel.rb streams the user's
// pubsub token (`ensure_stream`); app/models/concerns/pubsubable.rb rotates it when the password changes
// (`rotate_pubsub_token`, `before_save` when `will_save_change_to_encrypted_password?`) without touching open subscriptions;
// app/listeners/action_cable_listener.rb sends an inbox's events to its members and the account's administrators;
// app/finders/message_finder.rb answers 20 messages per page (`before=`).
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

let h: RoutingHarness | undefined;
let sampler: { stop(): Promise<ListAnswer[]> } | undefined;
afterEach(async () => {
  await sampler?.stop();
  await h?.close();
  h = undefined;
  sampler = undefined;
});

interface ListAnswer {
  status: string;
  last_error: string;
  realtime: string | null;
}

const realtime = {
  pingIntervalMs: 200,
  subscribeTimeoutMs: 2_000,
  maxReconnectDelayMs: 1_000,
  // Ownership rounds (and so the profile checks) every 500 ms; deafness probes every second.
  leaseTtlMs: 1_500,
  deafProbeIntervalMs: 1_000,
};

async function list(harness: RoutingHarness): Promise<ListAnswer> {
  const answer = await harness.bridge.http.handle({
    method: "GET",
    path: "/api/chatwoot/list/suporte",
    headers: { token: "t" },
  });
  return JSON.parse(answer!.body!) as ListAnswer;
}

/** Reads `list` every 25 ms in the background; `stop()` answers every answer seen. */
function sampleList(harness: RoutingHarness) {
  const seen: ListAnswer[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      seen.push(await list(harness));
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return seen;
    },
  };
}

/** A harness whose conversation with one customer exists, and an agent (inbox member) who replies in it. */
async function started() {
  h = await startRoutingHarness({
    bridge: {
      realtime,
      // `list` is read every 25 ms (sampleList): more than the callers' default quota.
      rateLimit: { points: 100_000 },
      ...(process.env.DEBUG_HEAL ? { logger: debugLogger() } : {}),
    },
  });
  await h.ingest(textEvent({ phone: "5511900001234", text: "hello" }));
  await eventually(() => totalMessages(h!) === 1, { what: "the customer's message in Chatwoot" });
  const conversationId = conversationsOf(h)[0]!.id;
  const agent = h.sim.createUser({ name: "Sam", accounts: [{ accountId: h.accountId, role: "agent" }] });
  h.sim.addInboxMember(h.inboxId, agent.id);
  const harness = h;
  const reply = (content: string) =>
    harness.sim.postAgentMessage({ accountId: harness.accountId, conversationId, userId: agent.id, content });
  // The link is up and hears: a first reply arrives live.
  reply("first");
  await eventually(() => harness.gateway.sent("suporte").length === 1, { what: "the live reply" });
  return { h: harness, conversationId, reply };
}

function debugLogger(): never {
  const log = (level: string) => (a: unknown, b?: unknown) =>
    console.log(Date.now() % 100000, level, JSON.stringify(a), b ?? "");
  const logger = {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    child: () => logger,
  };
  return logger as never;
}

const texts = (harness: RoutingHarness) => harness.gateway.sent("suporte").map((sent) => sent.text);
const unhealthy = (answers: ListAnswer[]) => answers.filter((answer) => answer.status !== "active");

describe("the realtime link heals itself and fetches what it missed", () => {
  it("after a refused subscribe on a new socket: the reply posted meanwhile arrives once", async () => {
    const { h, reply } = await started();
    sampler = sampleList(h);
    // The socket drops; Chatwoot's `RoomChannel#subscribed` raises for the next subscribes (a database hiccup).
    h.sim.cable.failNextSubscribes(2);
    h.sim.cable.dropAll();
    await eventually(async () => (await list(h)).status !== "active", { what: "list to show the link down" });
    reply("while refused");
    await eventually(() => h.sim.cable.subscriptions().some((sub) => sub.confirmed), {
      timeoutMs: 30_000,
      what: "a confirmed subscription again",
    });
    await eventually(() => texts(h).includes("while refused"), { timeoutMs: 30_000, what: "the reply" });
    await eventually(
      async () => {
        const answer = await list(h);
        if (answer.status !== "active") throw new Error(JSON.stringify(answer));
        return true;
      },
      { what: "list healthy again" },
    );
    const answers = await sampler.stop();
    expect(unhealthy(answers).length).toBeGreaterThan(0);
    expect(texts(h)).toEqual(["first", "while refused"]);
  });

  it("after a pubsub token rotation (a password change): resubscribes with the new token and backfills", async () => {
    const { h, reply } = await started();
    sampler = sampleList(h);
    // The profile answers slowly for a while, so the window in which the link is known bad is wide enough to see.
    const slow = h.sim.faults.inject({ path: "/api/v1/profile", delayMs: 1_000 });
    h.sim.rotatePubsubToken(h.agent.id);
    reply("after rotation");
    await eventually(
      async () => {
        const answer = await list(h);
        return answer.status === "error" && answer.last_error.includes("pubsub token");
      },
      { what: "list to show the rotated token" },
    );
    slow.remove();
    await eventually(() => texts(h).includes("after rotation"), { timeoutMs: 30_000, what: "the reply" });
    const newToken = h.sim.getUser(h.agent.id)!.pubsubToken;
    expect(
      h.sim.cable
        .subscriptions()
        .filter((sub) => sub.confirmed)
        .map((sub) => sub.pubsubToken),
    ).toEqual([newToken]);
    // Live again on the new token.
    reply("live again");
    await eventually(() => texts(h).includes("live again"), { what: "a live reply on the new token" });
    await sampler.stop();
    expect(texts(h)).toEqual(["first", "after rotation", "live again"]);
  });

  it("after the token user's role is revoked and restored: list shows why, the reply arrives once after", async () => {
    const { h, reply } = await started();
    // An administrator downgraded to agent without the inbox: Chatwoot stops sending it the inbox's events, and
    // the subscription stays confirmed.
    h.sim.setAccountRole(h.accountId, h.agent.id, "agent");
    // (`list`'s own inbox check, cached 30 s, may say first that Chatwoot denied the request; the link's check tells why.)
    const down = await eventually(
      async () => {
        const answer = await list(h);
        return answer.last_error.includes(`cannot see inbox ${h.inboxId}`) ? answer : null;
      },
      { what: "list to show the lost membership" },
    );
    expect(down.status).toBe("error");
    reply("while revoked");
    await eventually(() => h.sim.broadcasts.some((b) => b.data["content"] === "while revoked" && b.sent), {
      what: "the broadcast Chatwoot did not send to the token user",
    });
    // Still unhealthy while revoked, and nothing was sent.
    expect((await list(h)).status).toBe("error");
    expect(texts(h)).toEqual(["first"]);

    h.sim.setAccountRole(h.accountId, h.agent.id, "administrator");
    await eventually(() => texts(h).includes("while revoked"), { timeoutMs: 30_000, what: "the reply" });
    await eventually(async () => !(await list(h)).last_error.includes("cannot see inbox"), {
      what: "the link's problem gone from list",
    });
    expect(texts(h)).toEqual(["first", "while revoked"]);
  });

  it("a reply in a conversation an agent started while the socket was down reaches the contact's chat", async () => {
    const { h } = await started();
    const jid = "5511900005678@s.whatsapp.net";
    const contact = h.sim.createContact(h.accountId, {
      name: "Bruna",
      phone_number: "+5511900005678",
      inbox_id: h.inboxId,
      source_id: jid,
    });
    const cable = h.sim.faults.inject({ path: "/cable", status: 503, body: "cable down" });
    h.sim.cable.dropAll();
    await eventually(async () => (await list(h)).status === "error", { what: "list to show the link down" });
    // Not in the bridge's chat mapping: the agent opened it from the contact's page.
    const conversation = h.sim.createConversation(
      h.accountId,
      { contact_id: contact["id"], inbox_id: h.inboxId, source_id: jid },
      { userId: h.agent.id },
    );
    h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId: conversation["id"] as number,
      userId: h.agent.id,
      content: "hi Bruna",
    });
    cable.remove();
    await eventually(() => texts(h).includes("hi Bruna"), { timeoutMs: 30_000, what: "the reply" });
    expect(h.gateway.sent("suporte").find((sent) => sent.text === "hi Bruna")?.to).toBe(jid);
  });

  it("50 agent replies posted while the socket is down all arrive after the reconnect, in order, once each", {
    timeout: 60_000,
  }, async () => {
    const { h, reply } = await started();
    const cable = h.sim.faults.inject({ path: "/cable", status: 503, body: "cable down" });
    h.sim.cable.dropAll();
    await eventually(async () => (await list(h)).status === "error", { what: "list to show the link down" });
    const contents = Array.from({ length: 50 }, (_, index) => `reply ${index + 1}`);
    for (const content of contents) reply(content);
    cable.remove();
    await eventually(() => texts(h).length === 51, { timeoutMs: 30_000, what: "all 50 replies" });
    expect(texts(h)).toEqual(["first", ...contents]);
    expect(await h.bridge.metrics.metrics()).toMatch(/realtime_backfilled_replies_total\S* 50$/m);
    // Once each: nothing more comes (the live link and the backfill overlap only through the outbox's dedupe).
    reply("after");
    await eventually(() => texts(h).includes("after"));
    expect(texts(h)).toEqual(["first", ...contents, "after"]);
  });

  it("a deaf subscription (confirmed, stream cut) is shown deaf, healed, told once, and the reply arrives once", {
    timeout: 180_000,
  }, async () => {
    const { h, reply, conversationId } = await started();
    // Deafness is judged on messages created a whole second (created_at has seconds) after the confirmation.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(h.sim.cable.deafen()).toBe(1);
    reply("while deaf");
    const deaf = await eventually(
      async () => {
        const answer = await list(h);
        return answer.realtime === "deaf" ? answer : null;
      },
      { timeoutMs: 120_000, what: "list to show the link deaf" },
    );
    expect(deaf.status).toBe("error");
    expect(deaf.last_error).toContain("deaf");
    await eventually(() => texts(h).includes("while deaf"), { timeoutMs: 30_000, what: "the reply" });
    await eventually(async () => (await list(h)).status === "active", { what: "list healthy again" });
    reply("live again");
    await eventually(() => texts(h).includes("live again"), { what: "a live reply after the heal" });
    expect(texts(h)).toEqual(["first", "while deaf", "live again"]);

    // One private note, in one status conversation of the inbox (not the customer's).
    const statusConversations = conversationsOf(h).filter(
      (conversation) => conversation.id !== conversationId,
    );
    expect(statusConversations).toHaveLength(1);
    const notes = chatMessages(h, statusConversations[0]!.id);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ private: true, content: expect.stringContaining("realtime events") });
    // An agent answering in the status conversation writes to nobody on WhatsApp.
    h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId: statusConversations[0]!.id,
      userId: h.agent.id,
      content: "thanks, bridge",
    });
    reply("after the note");
    await eventually(() => texts(h).includes("after the note"));
    expect(texts(h)).toEqual(["first", "while deaf", "live again", "after the note"]);
    // Counted for the operator's metrics (the hub's stats(), read at scrape time).
    const scraped = await h.bridge.metrics.metrics();
    expect(scraped).toMatch(/realtime_deaf_detections_total\S* 1$/m);
    expect(scraped).toMatch(/realtime_backfilled_replies_total\S* 1$/m);
  });
});
