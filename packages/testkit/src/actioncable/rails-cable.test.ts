/**
 * The real Rails ActionCable server with our port of Chatwoot's RoomChannel (packages/testkit/actioncable): what
 * @anycable/core and raw clients see from it. These tests record ActionCable's actual behaviour (the simulator
 * and the hub are checked against it elsewhere); the frames of a refused subscribe are also written down at the
 * top of packages/testkit/actioncable/app/channels/room_channel.rb.
 */
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
// @anycable/core is a dependency of packages/core (the realtime hub's client), resolved from there.
import { type Cable, createCable, NoopLogger } from "../../../core/node_modules/@anycable/core/index.js";
import { eventually } from "../eventually.js";
import { type AnyJson, CableClient } from "../simulator/test-support.js";
import { type RailsCable, railsCableAvailable, railsCableGate, startRailsCable } from "./launcher.js";
import { describeRailsCable, sleep } from "./test-support.js";

describe("railsCableGate", () => {
  it("runs when Ruby, ActionCable and puma are there", () => {
    expect(railsCableGate(true, { CI_REQUIRE_ACTIONCABLE: "1" })).toEqual({ mode: "run", message: "" });
  });

  it("skips loudly when they are missing, and fails instead under CI_REQUIRE_ACTIONCABLE=1", () => {
    const skip = railsCableGate(false, {});
    expect(skip.mode).toBe("skip");
    expect(skip.message).toContain("SKIPPED");
    expect(skip.message).toContain("apt-get install -y ruby-actioncable puma");
    const fail = railsCableGate(false, { CI_REQUIRE_ACTIONCABLE: "1" });
    expect(fail.mode).toBe("fail");
    expect(fail.message).toContain("CI_REQUIRE_ACTIONCABLE=1");
  });

  it("reports a missing Ruby as unavailable", () => {
    expect(railsCableAvailable({ ruby: "/nonexistent/ruby", puma: "/nonexistent/puma" })).toBe(false);
  });
});

describeRailsCable("a real Rails ActionCable server with Chatwoot's RoomChannel", () => {
  let server: RailsCable;
  const cables: Cable[] = [];
  const clients: CableClient[] = [];
  let user: { id: number; pubsubToken: string };
  const accountId = 1;

  beforeAll(async () => {
    server = await startRailsCable();
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(async () => {
    await server.reset();
    user = { id: 7, pubsubToken: randomBytes(12).toString("base64url") };
    await server.upsertUser({ ...user, accounts: [{ id: accountId, role: "administrator" }, { id: 2 }] });
  });
  afterEach(() => {
    for (const cable of cables.splice(0)) cable.disconnect();
    for (const client of clients.splice(0)) client.socket.terminate();
  });

  const params = (overrides: Record<string, unknown> = {}) => ({
    pubsub_token: user.pubsubToken,
    account_id: accountId,
    user_id: user.id,
    ...overrides,
  });

  function anycable(subscribeRetryInterval = 5_000): Cable {
    const cable = createCable(server.url, {
      protocol: "actioncable-v1-json",
      websocketImplementation: WebSocket,
      protocolOptions: { subscribeRetryInterval },
      logger: new NoopLogger(),
    });
    cables.push(cable);
    return cable;
  }

  async function raw(): Promise<CableClient> {
    const client = await CableClient.connect(server.httpUrl);
    clients.push(client);
    await client.waitFor((frame) => frame.type === "welcome");
    return client;
  }

  const framesOf = (client: CableClient, identifier: string) =>
    client.frames.filter((frame) => frame.identifier === identifier);

  it("@anycable/core connects, subscribes to RoomChannel, is confirmed and receives a broadcast", async () => {
    const cable = anycable();
    const channel = cable.subscribeTo("RoomChannel", params());
    const received: AnyJson[] = [];
    channel.on("message", (message) => received.push(message));
    await channel.ensureSubscribed();
    expect(channel.state).toBe("connected");

    const event = {
      event: "message.created",
      data: { id: 1, account_id: accountId, inbox_id: 3, content: "hi" },
    };
    await server.broadcast(user.pubsubToken, event);
    await eventually(() => received.some((message) => message.event === "message.created"), {
      timeoutMs: 3_000,
      what: "the broadcast",
    });
    expect(received.find((message) => message.event === "message.created")).toEqual(event);
    expect(await server.stats()).toMatchObject({ subscribed: 1, subscribed_ok: 1 });
  });

  it("streams per user token: another account's event reaches the subscription of account 1", async () => {
    const client = await raw();
    const identifier = client.subscribe(params());
    await client.waitFor((frame) => frame.identifier === identifier && frame.type === "confirm_subscription");
    // A broadcast right after the confirmation is delivered: the stream was set up before it was confirmed.
    await server.broadcast(user.pubsubToken, {
      event: "conversation.created",
      data: { account_id: 2, id: 9 },
    });
    await server.broadcastTo(`account_${accountId}`, { event: "contact.updated", data: { account_id: 1 } });
    // (The presence.update RoomChannel broadcasts on subscribing may come too, before or after the confirmation.
    // Two streams: their frames go out on ActionCable's worker pool, in either order.)
    const frames = await client.waitFor(
      (frame) => frame.message?.event !== undefined && frame.message.event !== "presence.update",
      { count: 2, timeoutMs: 3_000 },
    );
    const other = frames.find((frame) => frame.message.event === "conversation.created");
    const contact = frames.find((frame) => frame.message.event === "contact.updated");
    expect(other).toEqual({
      identifier,
      message: { event: "conversation.created", data: { account_id: 2, id: 9 } },
    });
    expect(contact?.message.event).toBe("contact.updated");
  });

  it("refuses a wrong token, user or account by saying nothing at all", async () => {
    const client = await raw();
    const wrong = [
      client.subscribe(params({ pubsub_token: "wrong" })),
      client.subscribe(params({ user_id: 8 })),
      client.subscribe(params({ account_id: 3 })),
    ];
    const good = client.subscribe(params());
    await client.waitFor((frame) => frame.identifier === good && frame.type === "confirm_subscription");
    await sleep(300);
    for (const identifier of wrong) expect(framesOf(client, identifier)).toEqual([]);
    // Rails keeps all four registered: the refused ones too.
    const [connection] = await server.connections();
    expect(connection?.identifiers.sort()).toEqual([...wrong, good].sort());
  });

  it("a subscribe whose `subscribed` raised: no answer, identifier kept, same subscribe ignored until unsubscribe", async () => {
    const client = await raw();
    await server.failNextSubscribes(1);
    const identifier = client.subscribe(params());
    await eventually(async () => (await server.stats()).raised === 1, {
      timeoutMs: 3_000,
      what: "the failure",
    });
    expect((await server.connections())[0]?.identifiers).toEqual([identifier]);

    // The same subscribe again on the same socket: Rails does not even call `subscribed`.
    client.send({ command: "subscribe", identifier });
    await sleep(500);
    expect(framesOf(client, identifier)).toEqual([]);
    expect(await server.stats()).toMatchObject({ subscribed: 1, raised: 1 });
    expect(client.frames.every((frame) => frame.type === "welcome" || frame.type === "ping")).toBe(true);

    // unsubscribe (unanswered) forgets it; the next subscribe runs `subscribed` again and is confirmed.
    client.send({ command: "unsubscribe", identifier });
    await eventually(async () => (await server.connections())[0]?.identifiers.length === 0, {
      timeoutMs: 3_000,
      what: "the unsubscribe",
    });
    client.send({ command: "subscribe", identifier });
    const [confirm] = await client.waitFor((frame) => frame.identifier === identifier);
    expect(confirm).toEqual({ identifier, type: "confirm_subscription" });
    expect(await server.stats()).toMatchObject({ subscribed: 2, subscribed_ok: 1, raised: 1 });
  });

  it("a failure after the streams were set up (Redis): never confirmed, yet broadcasts arrive", async () => {
    const client = await raw();
    await server.failNextSubscribes(1, { at: "presence" });
    const identifier = client.subscribe(params());
    await eventually(async () => (await server.stats()).raised === 1, {
      timeoutMs: 3_000,
      what: "the failure",
    });
    // The stream's Redis SUBSCRIBE completes on the subscription adapter's listener thread, after `subscribed` ran
    // (actioncable/lib/action_cable/subscription_adapter/redis.rb); with no confirmation to wait for, a broadcast
    // sent before it is lost, as in production: broadcast until one arrives.
    const message = await eventually(
      async () => {
        await server.broadcast(user.pubsubToken, { event: "message.created", data: { id: 1 } });
        return client.frames.find((frame) => frame.message?.event === "message.created");
      },
      { timeoutMs: 5_000, intervalMs: 100, what: "a broadcast on the unconfirmed subscription" },
    );
    expect(message).toEqual({ identifier, message: { event: "message.created", data: { id: 1 } } });
    expect(client.frames.some((frame) => frame.type === "confirm_subscription")).toBe(false);
  });

  it("@anycable/core alone retries with the same identifier and stays unconfirmed on that socket", async () => {
    const cable = anycable(300);
    await server.failNextSubscribes(1);
    const first = cable.subscribeTo("RoomChannel", params());
    // anycable resends the subscribe after 300 ms and gives up after 600 ms, without sending unsubscribe.
    await expect(first.ensureSubscribed()).rejects.toThrow(/subscription ack/);
    const again = cable.subscribeTo("RoomChannel", params());
    await expect(again.ensureSubscribed()).rejects.toThrow(/subscription ack/);
    expect(cable.state).toBe("connected");
    // Four subscribe frames reached Rails; `subscribed` ran once.
    expect(await server.stats()).toMatchObject({ subscribed: 1, raised: 1 });
  });

  it("pings from one global 3 s timer: the first 0–3 s after the welcome, then every 3 s", async () => {
    const times: { type: string; at: number }[] = [];
    const socket = new WebSocket(server.url, ["actioncable-v1-json"]);
    socket.on("message", (data) => times.push({ type: JSON.parse(data.toString()).type, at: Date.now() }));
    try {
      await eventually(() => times.filter((frame) => frame.type === "ping").length >= 2, {
        timeoutMs: 7_500,
        what: "two pings",
      });
    } finally {
      socket.terminate();
    }
    const [welcome, first, second] = times;
    expect(welcome?.type).toBe("welcome");
    expect(first!.at - welcome!.at).toBeLessThanOrEqual(3_300);
    expect(second!.at - first!.at).toBeGreaterThan(2_700);
    expect(second!.at - first!.at).toBeLessThan(3_300);
  });
});
