/**
 * Issue 14, item 1: a refused subscribe must not leave the realtime link down for good. When RoomChannel#subscribed
 * raises, ActionCable answers nothing, keeps the identifier registered on the socket and ignores every later
 * subscribe with it; the hub must unsubscribe that identifier before subscribing again. The same scenarios run
 * against the real Rails ActionCable server and against our simulator, which must behave the same way.
 */
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
// The hub is internal to core: imported by path (core's tests cannot import the testkit).
import type { ChatwootApi } from "../../../core/src/chatwoot/index.js";
import type { Integration } from "../../../core/src/integrations/index.js";
import { silentLogger, systemClock } from "../../../core/src/observability/index.js";
import { createRealtimeHub, type RealtimeHub } from "../../../core/src/realtime/hub.js";
import { eventually } from "../eventually.js";
import { type ChatwootSimulator, startChatwootSimulator } from "../simulator/index.js";
import { openConversation, type Seed, seed } from "../simulator/test-support.js";
import { type RailsCable, startRailsCable } from "./launcher.js";
import { describeRailsCable } from "./test-support.js";

/** What a scenario needs from a Chatwoot cable: one user in one account with one inbox. */
interface Backend {
  baseUrl: string;
  userId: number;
  accountId: number;
  inboxId: number;
  pubsubToken: string;
  /** The server's ping interval: the hub expects pings at this rate. */
  pingIntervalMs: number;
  /** The hub's subscribeTimeoutMs: short, with room for a Ruby server on a busy CI machine. */
  subscribeTimeoutMs: number;
  failNextSubscribes(count: number): Promise<void>;
  /** Closes every socket the way a Chatwoot restart does (disconnect frame, reconnect true). */
  restart(): Promise<void>;
  /** Makes an event of the inbox reach the user's token; resolves to a marker found in the event. */
  emit(): Promise<string>;
  /** Subscriptions the server holds for the user (confirmed or not). */
  subscriptions(): Promise<string[]>;
  /** Gives the user a new pubsub token (a password change: `Pubsubable#rotate_pubsub_token`); `pubsubToken` follows. */
  rotate(): Promise<void>;
}

function integrationOf(backend: Backend): Integration {
  const now = new Date();
  return {
    id: `int_${randomBytes(6).toString("hex")}`,
    instance: "suporte",
    status: "active",
    version: 1,
    baseUrl: backend.baseUrl,
    accountId: backend.accountId,
    apiToken: "api-token",
    webhookSecret: null,
    inboxId: backend.inboxId,
    inboxName: "WhatsApp",
    chatwootUserId: backend.userId,
    deliveryMode: "realtime",
    signMessages: false,
    ignoreGroups: false,
    startAsPending: false,
    reopenResolved: false,
    lastError: "",
    provisioningUntil: null,
    createdAt: now,
    updatedAt: now,
  } as Integration;
}

function scenarios(name: string, open: () => Promise<Backend>) {
  describe(name, () => {
    let hub: RealtimeHub | undefined;
    afterEach(() => hub?.close());

    async function start() {
      const backend = await open();
      const events: { integrationId: string; event: string; data: unknown }[] = [];
      const reconnects: string[] = [];
      const chatwoot = {
        getProfile: async () => ({
          id: backend.userId,
          pubsub_token: backend.pubsubToken,
          accounts: [{ id: backend.accountId }],
        }),
      } as unknown as ChatwootApi;
      hub = createRealtimeHub({
        chatwoot,
        clock: systemClock,
        logger: silentLogger,
        onEvent: (integrationId, event, data) => events.push({ integrationId, event, data }),
        onReconnect: (integrationId) => reconnects.push(integrationId),
        pingIntervalMs: backend.pingIntervalMs,
        subscribeTimeoutMs: backend.subscribeTimeoutMs,
        maxReconnectDelayMs: 1_000,
      });
      const integration = integrationOf(backend);
      /** An event emitted now reaches onEvent for the integration. */
      const delivers = async () => {
        const marker = await backend.emit();
        await eventually(() => events.some((e) => JSON.stringify(e.data).includes(marker)), {
          timeoutMs: 3_000,
          what: "an event through the realtime link",
        });
        expect(events.at(-1)?.integrationId).toBe(integration.id);
      };
      return { backend, hub, integration, events, reconnects, delivers };
    }

    it("attach is confirmed although the first subscribe raised (the hub unsubscribes before retrying)", async () => {
      const { backend, hub, integration, delivers } = await start();
      await backend.failNextSubscribes(1);
      const started = Date.now();
      await hub.attach(integration);
      // Not confirmed in time, then unsubscribe + subscribe, confirmed within the second wait.
      expect(Date.now() - started).toBeLessThan(2 * backend.subscribeTimeoutMs + 1_500);
      expect(hub.status(integration.id)).toEqual({ state: "connected", lastError: "" });
      await delivers();
      // The refused identifier was unsubscribed, not left behind next to the working one.
      expect(await backend.subscriptions()).toHaveLength(1);
    });

    it("the link comes back when the resubscribe after a restart raises", async () => {
      const { backend, hub, integration, reconnects, delivers } = await start();
      await hub.attach(integration);
      await backend.failNextSubscribes(1);
      await backend.restart();
      await eventually(() => reconnects.includes(integration.id), {
        timeoutMs: 2 * backend.subscribeTimeoutMs + 5_000,
        what: "the reconnect",
      });
      expect(hub.status(integration.id)).toEqual({ state: "connected", lastError: "" });
      expect(hub.socketCount()).toBe(1);
      await delivers();
      expect(await backend.subscriptions()).toHaveLength(1);
    });

    // Issue 14, item 2: the old subscription stays confirmed and hears nothing; the profile check finds the new token.
    it("after a pubsub token rotation, the profile check resubscribes with the new token and reports the gap", async () => {
      const { backend, hub, integration, reconnects, delivers } = await start();
      await hub.attach(integration);
      await backend.rotate();
      await hub.verify();
      await eventually(() => reconnects.includes(integration.id), {
        timeoutMs: 2 * backend.subscribeTimeoutMs + 5_000,
        what: "the resubscription with the new token",
      });
      expect(hub.status(integration.id)).toEqual({ state: "connected", lastError: "" });
      await delivers();
      const held = await backend.subscriptions();
      expect(held).toHaveLength(1);
      expect(held[0]).toContain(backend.pubsubToken);
    });
  });
}

describeRailsCable("the realtime hub against a real Rails ActionCable server", () => {
  let server: RailsCable;
  beforeAll(async () => {
    server = await startRailsCable();
  });
  afterAll(async () => {
    await server?.close();
  });

  scenarios("RoomChannel#subscribed raising once", async () => {
    await server.reset();
    const pubsubToken = randomBytes(12).toString("base64url");
    await server.upsertUser({ id: 7, pubsubToken, accounts: [{ id: 1, role: "administrator" }] });
    let sequence = 0;
    const backend: Backend = {
      baseUrl: server.httpUrl,
      userId: 7,
      accountId: 1,
      inboxId: 3,
      pubsubToken,
      pingIntervalMs: 3_000, // ActionCable's BEAT_INTERVAL
      subscribeTimeoutMs: 2_000,
      failNextSubscribes: (count) => server.failNextSubscribes(count),
      restart: () => server.restart(),
      async emit() {
        const marker = `rails-${++sequence}`;
        await server.broadcast(backend.pubsubToken, {
          event: "message.created",
          data: { id: sequence, content: marker, account_id: 1, inbox_id: 3, conversation: { inbox_id: 3 } },
        });
        return marker;
      },
      subscriptions: async () => (await server.connections()).flatMap((connection) => connection.identifiers),
      async rotate() {
        const next = randomBytes(12).toString("base64url");
        await server.upsertUser({ id: 7, pubsubToken: next, accounts: [{ id: 1, role: "administrator" }] });
        backend.pubsubToken = next;
      },
    };
    return backend;
  });
});

// Issue 14, item 4: RoomChannel streams the user's pubsub token, so a user in two accounts gets the events of both on
// each subscription; only the subscription's own account counts (an inbox id alone is not enough to tell).
describeRailsCable(
  "the realtime hub on a stream shared by the user's accounts (real Rails ActionCable)",
  () => {
    let server: RailsCable;
    let hub: RealtimeHub | undefined;
    beforeAll(async () => {
      server = await startRailsCable();
    });
    afterEach(() => hub?.close());
    afterAll(async () => {
      await server?.close();
    });

    it("routes only the events of the subscription's account", async () => {
      await server.reset();
      const pubsubToken = randomBytes(12).toString("base64url");
      const accounts = [
        { id: 1, role: "administrator" as const },
        { id: 2, role: "administrator" as const },
      ];
      await server.upsertUser({ id: 7, pubsubToken, accounts });
      const events: unknown[] = [];
      hub = createRealtimeHub({
        chatwoot: {
          getProfile: async () => ({ id: 7, pubsub_token: pubsubToken, accounts }),
        } as unknown as ChatwootApi,
        clock: systemClock,
        logger: silentLogger,
        onEvent: (_integrationId, _event, data) => events.push(data),
        onReconnect: () => {},
        pingIntervalMs: 3_000,
        subscribeTimeoutMs: 2_000,
        maxReconnectDelayMs: 1_000,
      });
      const integration = integrationOf({
        baseUrl: server.httpUrl,
        userId: 7,
        accountId: 1,
        inboxId: 3,
      } as Backend);
      await hub.attach(integration);
      const event = (accountId: number, content: string) => ({
        event: "message.created",
        data: { id: accountId, content, account_id: accountId, inbox_id: 3, conversation: { inbox_id: 3 } },
      });
      await server.broadcast(pubsubToken, event(2, "account 2"));
      await server.broadcast(pubsubToken, event(1, "account 1"));
      await eventually(() => events.length > 0, { timeoutMs: 3_000, what: "the event of account 1" });
      expect(events.map((data) => (data as { content: string }).content)).toEqual(["account 1"]);
    });
  },
);

describe("the realtime hub against the simulator", () => {
  let sim: ChatwootSimulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  scenarios("RoomChannel#subscribed raising once", async () => {
    const started = await startChatwootSimulator({ cablePingIntervalMs: 300 });
    sim = started;
    const s: Seed = seed(started);
    const { conversationId } = await openConversation(started, s);
    let sequence = 0;
    const backend: Backend = {
      baseUrl: started.url,
      userId: s.admin.id,
      accountId: s.accountId,
      inboxId: s.inboxId,
      pubsubToken: s.admin.pubsubToken,
      pingIntervalMs: 300,
      subscribeTimeoutMs: 1_000,
      failNextSubscribes: async (count) => started.cable.failNextSubscribes(count),
      restart: async () => started.cable.disconnectAll(),
      async emit() {
        const marker = `sim-${++sequence}`;
        started.postAgentMessage({
          accountId: s.accountId,
          conversationId,
          userId: s.admin.id,
          content: marker,
        });
        return marker;
      },
      subscriptions: async () => started.cable.subscriptions().map((subscription) => subscription.identifier),
      async rotate() {
        backend.pubsubToken = started.rotatePubsubToken(s.admin.id);
      },
    };
    return backend;
  });
});
