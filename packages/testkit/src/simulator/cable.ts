/**
 * ActionCable at `/cable` as Chatwoot 4.10 runs it (Rails 7.1, `RoomChannel`): welcome on connect,
 * pings every 3 s, subscriptions authenticated only by their identifier params, confirmation only
 * on success (a wrong token, user or account gets no answer at all), broadcasts by pubsub token.
 * As in Rails, a subscription that failed keeps its identifier on the socket: the same subscribe is ignored there
 * until the client unsubscribes it (checked against real ActionCable in src/actioncable/).
 * Test controls can drop sockets, stall them, duplicate broadcasts and make subscribes fail.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { toRailsJson } from "./rails-json.js";
import { isPlainObject, rubyToI } from "./rails-params.js";
import { findAccountUser, type SimulatorStore } from "./store.js";

/** The subprotocol Chatwoot's (and Rails') client offers first. */
export const ACTION_CABLE_PROTOCOL = "actioncable-v1-json";

/** One subscription on one socket, as `cable.subscriptions()` lists it. */
export interface CableSubscriptionInfo {
  /** The identifier string exactly as the client sent it (echoed in every frame). */
  identifier: string;
  pubsubToken: string | null;
  userId: number | null;
  accountId: number | null;
  /** `confirm_subscription` was sent. Unconfirmed ones failed authentication and stay silent. */
  confirmed: boolean;
}

/** Test controls of the `/cable` endpoint (`sim.cable`). */
export interface SimulatorCable {
  /** Number of open WebSocket connections. */
  connections(): number;
  /** Every subscription of every open connection, in subscription order. */
  subscriptions(): CableSubscriptionInfo[];
  /** Closes every socket abruptly (TCP destroy, no close frame), as a network failure would. */
  dropAll(): void;
  /**
   * Sends Rails' `{"type":"disconnect","reason":…,"reconnect":…}` to every socket and closes it
   * cleanly, as a server restart does. Defaults: reason `server_restart`, reconnect `true`.
   */
  disconnectAll(options?: { reason?: string; reconnect?: boolean }): void;
  /**
   * Stalls the sockets open now: from here on they get no frames at all (no pings, confirmations
   * or broadcasts, which are lost) and what they send is ignored, until `resumePings()`. Sockets
   * opened later work normally, so a client that detects the staleness can reconnect.
   */
  pausePings(): void;
  /** Ends a `pausePings()`; broadcasts lost meanwhile are not replayed (Chatwoot never replays). */
  resumePings(): void;
  /** Sends each of the next `count` broadcasts twice to every receiving subscription. */
  duplicateNext(count: number): void;
  /**
   * Makes the next `count` RoomChannel subscribes fail as when `RoomChannel#subscribed` raises (a database or
   * Redis hiccup): no answer at all, and, as in Rails, the identifier stays registered on its socket, so every
   * later subscribe with it there is ignored until the client sends `unsubscribe` for it.
   */
  failNextSubscribes(count: number): void;
}

export interface CableServer {
  readonly controls: SimulatorCable;
  /** Completes a WebSocket upgrade of a `/cable` request. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Sends `message` to every confirmed subscription streaming one of `tokens` (a pubsub token
   * stream); returns the number of frames sent.
   */
  broadcast(tokens: readonly string[], message: unknown): number;
  /** Drops every socket and stops the timers. */
  close(): void;
}

interface Subscription extends CableSubscriptionInfo {}

interface Connection {
  ws: WebSocket;
  subscriptions: Map<string, Subscription>;
  stalled: boolean;
  pinger: NodeJS.Timeout;
}

/** `RoomChannel#subscribed` for users: the token must be that user's, and the user in the account. */
function authorize(store: SimulatorStore, params: Record<string, unknown>) {
  const token = typeof params["pubsub_token"] === "string" ? params["pubsub_token"] : null;
  const rawUser = params["user_id"];
  const userId = rawUser === undefined || rawUser === null || rawUser === "" ? null : rubyToI(rawUser);
  const rawAccount = params["account_id"];
  const accountId =
    rawAccount === undefined || rawAccount === null || rawAccount === "" ? null : rubyToI(rawAccount);
  // Without user_id the token would be a contact's (`ContactInbox.find_by!`): not simulated.
  const user = userId === null ? undefined : store.users.get(userId);
  const ok =
    token !== null &&
    user !== undefined &&
    user.pubsubToken === token &&
    accountId !== null &&
    store.accounts.has(accountId) &&
    findAccountUser(store, accountId, user.id) !== undefined;
  return { token, userId, accountId, ok };
}

export function createCableServer(options: { store: SimulatorStore; pingIntervalMs: number }): CableServer {
  const { store, pingIntervalMs } = options;
  const connections = new Set<Connection>();
  let duplicates = 0;
  let failures = 0;
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has(ACTION_CABLE_PROTOCOL) ? ACTION_CABLE_PROTOCOL : false),
  });

  const send = (connection: Connection, frame: unknown): boolean => {
    if (connection.stalled || connection.ws.readyState !== connection.ws.OPEN) return false;
    connection.ws.send(toRailsJson(frame));
    return true;
  };

  function subscribe(connection: Connection, identifier: unknown) {
    if (typeof identifier !== "string") return;
    // Rails ignores a second subscribe with the same identifier, even after a silent failure.
    if (connection.subscriptions.has(identifier)) return;
    let params: unknown;
    try {
      params = JSON.parse(identifier);
    } catch {
      return;
    }
    if (!isPlainObject(params) || params["channel"] !== "RoomChannel") return; // "Subscription class not found"
    const { token, userId, accountId, ok } = authorize(store, params);
    // `subscribed` raised (failNextSubscribes): Rails registered the identifier before calling it, and keeps it.
    const raised = failures > 0;
    if (raised) failures -= 1;
    const subscription: Subscription = {
      identifier,
      pubsubToken: token,
      userId,
      accountId,
      confirmed: ok && !raised,
    };
    connection.subscriptions.set(identifier, subscription);
    if (subscription.confirmed) send(connection, { identifier, type: "confirm_subscription" });
  }

  function receive(connection: Connection, raw: string) {
    if (connection.stalled) return;
    let command: unknown;
    try {
      command = JSON.parse(raw);
    } catch {
      return;
    }
    if (!isPlainObject(command)) return;
    switch (command["command"]) {
      case "subscribe":
        subscribe(connection, command["identifier"]);
        break;
      case "unsubscribe":
        if (typeof command["identifier"] === "string") connection.subscriptions.delete(command["identifier"]);
        break;
      // "message" (`update_presence` and any other action) is accepted and has no effect here.
    }
  }

  function handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer) {
    wss.handleUpgrade(request, socket, head, (ws) => {
      const connection: Connection = {
        ws,
        subscriptions: new Map(),
        stalled: false,
        pinger: setInterval(
          () => send(connection, { type: "ping", message: Math.floor(Date.now() / 1000) }),
          pingIntervalMs,
        ),
      };
      connections.add(connection);
      ws.on("message", (data) => receive(connection, data.toString()));
      ws.on("close", () => {
        clearInterval(connection.pinger);
        connections.delete(connection);
      });
      ws.on("error", () => ws.terminate());
      send(connection, { type: "welcome" });
    });
  }

  const controls: SimulatorCable = {
    connections: () => [...connections].filter((c) => c.ws.readyState === c.ws.OPEN).length,
    subscriptions: () =>
      [...connections].flatMap((c) => [...c.subscriptions.values()].map((s) => ({ ...s }))),
    dropAll() {
      for (const connection of connections) {
        clearInterval(connection.pinger);
        connection.ws.terminate();
      }
      connections.clear();
    },
    disconnectAll({ reason = "server_restart", reconnect = true } = {}) {
      for (const connection of connections) {
        connection.stalled = false;
        send(connection, { type: "disconnect", reason, reconnect });
        clearInterval(connection.pinger);
        connection.ws.close();
      }
      connections.clear();
    },
    pausePings() {
      for (const connection of connections) connection.stalled = true;
    },
    resumePings() {
      for (const connection of connections) connection.stalled = false;
    },
    duplicateNext(count) {
      if (!Number.isInteger(count) || count < 0)
        throw new TypeError(`duplicateNext needs a count >= 0, got ${count}`);
      duplicates += count;
    },
    failNextSubscribes(count) {
      if (!Number.isInteger(count) || count < 0)
        throw new TypeError(`failNextSubscribes needs a count >= 0, got ${count}`);
      failures += count;
    },
  };

  return {
    controls,
    handleUpgrade,
    broadcast(tokens, message) {
      const copies = duplicates > 0 ? 2 : 1;
      if (duplicates > 0) duplicates -= 1;
      let frames = 0;
      for (const connection of connections) {
        for (const subscription of connection.subscriptions.values()) {
          if (!subscription.confirmed || subscription.pubsubToken === null) continue;
          if (!tokens.includes(subscription.pubsubToken)) continue;
          for (let i = 0; i < copies; i++) {
            if (send(connection, { identifier: subscription.identifier, message })) frames += 1;
          }
        }
      }
      return frames;
    },
    close() {
      controls.dropAll();
      wss.close();
    },
  };
}
