import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "./index.js";
import { type AnyJson, CableClient, call, openConversation, type Seed, seed } from "./test-support.js";

let sim: ChatwootSimulator;
let s: Seed;
const clients: CableClient[] = [];

beforeEach(async () => {
  sim = await startChatwootSimulator({ cablePingIntervalMs: 40 });
  s = seed(sim);
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await sim.close();
});

async function connect() {
  const client = await CableClient.connect(sim.url);
  clients.push(client);
  return client;
}

/**
 * Frames on one socket arrive in order: once a ping arrives that the server sent after it read our last command,
 * nothing that command caused is pending. The first ping after now may have crossed the command on the wire (one
 * timer pings every socket), the second cannot have.
 */
async function drained(client: CableClient) {
  const pings = client.frames.filter((f) => f.type === "ping").length;
  await client.waitFor((f) => f.type === "ping", { count: pings + 2 });
}

const isConfirm = (identifier: string) => (f: AnyJson) => f.identifier === identifier && f.type !== undefined;

describe("connection", () => {
  it("negotiates actioncable-v1-json, sends welcome, then pings with unix seconds", async () => {
    const client = await connect();
    expect(client.socket.protocol).toBe("actioncable-v1-json");
    await client.waitFor((f) => f.type === "ping", { count: 2 });
    expect(client.frames[0]).toEqual({ type: "welcome" });
    const ping = client.frames.find((f) => f.type === "ping") as AnyJson;
    expect(Math.abs(ping.message - Date.now() / 1000)).toBeLessThan(5);
    expect(sim.cable.connections()).toBe(1);
  });

  it("confirms a valid RoomChannel subscription, echoing the identifier verbatim", async () => {
    const client = await connect();
    // Spacing and key order are the client's; the identifier must come back byte for byte.
    const identifier = `{"channel": "RoomChannel", "user_id": ${s.admin.id}, "account_id": ${s.accountId}, "pubsub_token": "${s.admin.pubsubToken}"}`;
    client.send({ command: "subscribe", identifier });
    const [confirm] = await client.waitFor(isConfirm(identifier));
    expect(confirm).toEqual({ identifier, type: "confirm_subscription" });
    client.send({ command: "message", identifier, data: JSON.stringify({ action: "update_presence" }) });
    await drained(client);
    expect(sim.cable.subscriptions()).toEqual([
      {
        identifier,
        pubsubToken: s.admin.pubsubToken,
        userId: s.admin.id,
        accountId: s.accountId,
        confirmed: true,
        deaf: false,
      },
    ]);
  });

  it("stays silent (no confirm, no reject) for a wrong token, user, account or channel", async () => {
    const client = await connect();
    const bad = [
      client.subscribe({ pubsub_token: "wrong", account_id: s.accountId, user_id: s.admin.id }),
      client.subscribe({ pubsub_token: s.admin.pubsubToken, account_id: s.accountId, user_id: s.agent.id }),
      client.subscribe({
        pubsub_token: s.admin.pubsubToken,
        account_id: s.otherAccountId,
        user_id: s.admin.id,
      }),
    ];
    const otherChannel = JSON.stringify({
      channel: "NotificationChannel",
      pubsub_token: s.admin.pubsubToken,
    });
    client.send({ command: "subscribe", identifier: otherChannel });
    await client.subscribeAs(s.admin, s.accountId);
    await drained(client);
    for (const identifier of [...bad, otherChannel])
      expect(client.frames.filter(isConfirm(identifier))).toEqual([]);
    expect(sim.cable.subscriptions().map((sub) => sub.confirmed)).toEqual([false, false, false, true]);
  });

  it("ignores a repeated subscribe with the same identifier; unsubscribe removes it", async () => {
    const client = await connect();
    const identifier = await client.subscribeAs(s.admin, s.accountId);
    client.send({ command: "subscribe", identifier });
    await drained(client);
    expect(client.frames.filter(isConfirm(identifier))).toHaveLength(1);
    client.send({ command: "unsubscribe", identifier });
    await drained(client);
    expect(sim.cable.subscriptions()).toEqual([]);
  });
});

describe("broadcasts", () => {
  it("sends message.created with Chatwoot's push data to inbox members and administrators only", async () => {
    const [admin, agent, outsider] = [await connect(), await connect(), await connect()];
    await admin.subscribeAs(s.admin, s.accountId);
    await agent.subscribeAs(s.agent, s.accountId);
    await outsider.subscribeAs(s.outsider, s.accountId);
    const { conversationId } = await openConversation(sim, s, "jid-1");
    const sent = await call(sim, "POST", s.path(`/conversations/${conversationId}/messages`), {
      token: s.admin.accessToken,
      body: { content: "hello", message_type: "incoming", source_id: "WAMID.1", echo_id: "e-1" },
    });
    const [frame] = await agent.waitFor((f) => f.message?.event === "message.created");
    const data = (frame as AnyJson).message.data;
    expect(data).toMatchObject({
      id: (sent.json as AnyJson).id,
      content: "hello",
      message_type: 0,
      conversation_id: conversationId,
      account_id: s.accountId,
      inbox_id: s.inboxId,
      source_id: "WAMID.1",
      echo_id: "e-1",
      sender_type: "Contact",
      sender: { name: "Alice", type: "contact" },
      conversation: { contact_inbox: { source_id: "jid-1" }, unread_count: 1, assignee_id: null },
      performer: { id: s.admin.id, type: "user" },
    });
    expect(typeof data.created_at).toBe("number");
    await admin.waitFor((f) => f.message?.event === "message.created");
    await drained(outsider);
    expect(outsider.events()).toEqual([]);
    const [broadcast] = await sim.waitForBroadcasts({ event: "message.created", conversationId });
    expect(broadcast?.userIds.sort()).toEqual([s.admin.id, s.agent.id].sort());
    expect(broadcast?.frames).toBe(2);
  });

  it("sends conversation.created, conversation.status_changed and message.updated", async () => {
    const client = await connect();
    await client.subscribeAs(s.agent, s.accountId);
    const { conversationId } = await openConversation(sim, s);
    sim.setConversationStatus(s.accountId, conversationId, "resolved", { userId: s.admin.id });
    const message = sim.postAgentMessage({
      accountId: s.accountId,
      conversationId,
      userId: s.agent.id,
      content: "hi",
    });
    await call(sim, "PATCH", s.path(`/conversations/${conversationId}/messages/${message["id"]}`), {
      token: s.admin.accessToken,
      body: { status: "delivered" },
    });
    await client.waitFor((f) => f.message?.event === "message.updated");
    expect(client.events().map((e) => [e.event, e.data.message_type ?? e.data.status])).toEqual([
      ["conversation.created", "open"],
      ["conversation.status_changed", "resolved"],
      ["message.created", 2], // the activity message
      ["message.created", 1],
      ["message.updated", 1],
    ]);
    const [, statusChanged, , , updated] = client.events();
    expect(statusChanged.data).toMatchObject({ id: conversationId, performer: { id: s.admin.id } });
    expect(updated.data).toMatchObject({
      status: "delivered",
      previous_changes: { status: ["sent", "delivered"] },
    });
  });

  it("follows pubsub token rotation: the old subscription stops receiving", async () => {
    const client = await connect();
    await client.subscribeAs(s.admin, s.accountId);
    sim.rotatePubsubToken(s.admin.id);
    const { conversationId } = await openConversation(sim, s);
    sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.admin.id, content: "hi" });
    await sim.waitForBroadcasts({ event: "message.created" });
    await drained(client);
    expect(client.events()).toEqual([]);
  });
});

describe("cable controls", () => {
  it("dropAll closes every socket abruptly", async () => {
    const [a, b] = [await connect(), await connect()];
    await a.waitFor((f) => f.type === "welcome");
    await b.waitFor((f) => f.type === "welcome");
    sim.cable.dropAll();
    await Promise.all([a.waitClosed(), b.waitClosed()]);
    expect(sim.cable.connections()).toBe(0);
  });

  it("disconnectAll sends Rails' disconnect frame, then closes", async () => {
    const client = await connect();
    await client.waitFor((f) => f.type === "welcome");
    sim.cable.disconnectAll();
    await client.waitClosed();
    expect(client.frames.at(-1)).toEqual({ type: "disconnect", reason: "server_restart", reconnect: true });
  });

  it("pausePings stalls open sockets (broadcasts lost); resumePings restarts the frames", async () => {
    const client = await connect();
    await client.subscribeAs(s.admin, s.accountId);
    const { conversationId } = await openConversation(sim, s);
    await client.waitFor((f) => f.message?.event === "conversation.created");
    sim.cable.pausePings();
    const before = client.frames.length;
    sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.admin.id, content: "lost" });
    const [lost] = await sim.waitForBroadcasts({ event: "message.created" });
    expect(lost?.frames).toBe(0);
    // A socket opened meanwhile works normally.
    const fresh = await connect();
    await fresh.waitFor((f) => f.type === "ping");
    expect(client.frames.length).toBe(before);
    sim.cable.resumePings();
    await client.waitFor((f) => f.type === "ping", {
      count: client.frames.filter((f) => f.type === "ping").length + 1,
    });
    expect(client.events("message.created")).toEqual([]);
  });

  it("duplicateNext(n) sends the next n broadcasts twice", async () => {
    const client = await connect();
    await client.subscribeAs(s.admin, s.accountId);
    const { conversationId } = await openConversation(sim, s);
    await client.waitFor((f) => f.message?.event === "conversation.created");
    sim.cable.duplicateNext(1);
    sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.admin.id, content: "twice" });
    sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.admin.id, content: "once" });
    await client.waitFor((f) => f.message?.data?.content === "once");
    expect(client.events("message.created").map((e) => e.data.content)).toEqual(["twice", "twice", "once"]);
  });

  it("closePort closes cable sockets; reopenPort serves /cable again", async () => {
    const client = await connect();
    await client.waitFor((f) => f.type === "welcome");
    await sim.closePort();
    await client.waitClosed();
    await expect(CableClient.connect(sim.url)).rejects.toThrow();
    await sim.reopenPort();
    const again = await connect();
    await again.subscribeAs(s.admin, s.accountId);
    expect(sim.cable.connections()).toBe(1);
    expect(sim.countRequests({ path: "/cable", status: 101 })).toBe(2);
  });

  it("applies faults to the upgrade request (e.g. 503 while Chatwoot restarts)", async () => {
    sim.faults.inject({ path: "/cable", status: 503, times: 1 });
    await expect(CableClient.connect(sim.url)).rejects.toThrow(/503/);
    const client = await connect();
    await client.waitFor((f) => f.type === "welcome");
  });
});

// Real ActionCable (app/channels/room_channel.rb `ensure_stream`: `stream_from @pubsub_token`; actioncable's
// `Server::Connections#setup_heartbeat_timer`; `Channel::Streams#stream_from` confirms once the pub/sub subscribed).
describe("as real ActionCable streams, pings and confirms", () => {
  it("confirms only after the pub/sub round trip (at least 100 ms after subscribe)", async () => {
    const client = await connect();
    await client.waitFor((f) => f.type === "welcome");
    const identifier = JSON.stringify({
      channel: "RoomChannel",
      pubsub_token: s.admin.pubsubToken,
      account_id: s.accountId,
      user_id: s.admin.id,
    });
    const sentAt = Date.now();
    client.send({ command: "subscribe", identifier });
    await client.waitFor(isConfirm(identifier));
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(95);
  });

  it("pings every socket from one timer: sockets opened apart get their pings in the same instant", async () => {
    const first = await connect();
    await first.waitFor((f) => f.type === "ping");
    await new Promise((resolve) => setTimeout(resolve, 15));
    const second = await connect();
    const [ping] = await second.waitFor((f) => f.type === "ping");
    // The same heartbeat frame reached the first socket too.
    expect(first.frames.filter((f) => f.type === "ping").map((f) => f.message)).toContain(ping!.message);
  });

  it("a subscription hears the user's events of every account (one stream per user token)", async () => {
    const client = await connect();
    sim.setAccountRole(s.otherAccountId, s.admin.id, "administrator");
    await client.subscribeAs(s.admin, s.accountId);
    const otherInbox = sim.createInbox(s.otherAccountId, { name: "Other", channel: { type: "api" } });
    const other = { ...s, accountId: s.otherAccountId, inboxId: otherInbox["id"] as number };
    other.path = (suffix) => `/api/v1/accounts/${s.otherAccountId}${suffix}`;
    await openConversation(sim, other, "jid-other");
    const [frame] = await client.waitFor((f) => f.message?.event === "conversation.created");
    expect((frame as AnyJson).message.data).toMatchObject({ account_id: s.otherAccountId });
  });

  it("deafen keeps the socket, pings and confirmation, loses broadcasts; a new subscription hears again", async () => {
    const client = await connect();
    const identifier = await client.subscribeAs(s.admin, s.accountId);
    expect(sim.cable.deafen()).toBe(1);
    const { conversationId } = await openConversation(sim, s);
    const [lost] = await sim.waitForBroadcasts({ event: "conversation.created" });
    expect(lost?.frames).toBe(0);
    await drained(client);
    expect(client.events()).toEqual([]);
    expect(sim.cable.subscriptions()).toMatchObject([{ confirmed: true, deaf: true }]);
    client.send({ command: "unsubscribe", identifier });
    client.send({ command: "subscribe", identifier });
    await client.waitFor(isConfirm(identifier), { count: 2 });
    sim.postAgentMessage({ accountId: s.accountId, conversationId, userId: s.admin.id, content: "heard" });
    await client.waitFor((f) => f.message?.data?.content === "heard");
  });

  it("removeInboxMember stops the inbox's broadcasts to that agent; its subscription stays confirmed", async () => {
    const client = await connect();
    await client.subscribeAs(s.agent, s.accountId);
    sim.removeInboxMember(s.inboxId, s.agent.id);
    await openConversation(sim, s);
    await sim.waitForBroadcasts({ event: "conversation.created" });
    await drained(client);
    expect(client.events()).toEqual([]);
    expect(sim.cable.subscriptions()).toMatchObject([{ confirmed: true }]);
  });
});
