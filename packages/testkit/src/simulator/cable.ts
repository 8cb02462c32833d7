/**
 * ActionCable at `/cable` as Chatwoot 4.10 runs it (Rails 7.1, `RoomChannel`): welcome on connect,
 * pings every 3 s from one timer for the whole server (`ActionCable::Server::Connections#setup_heartbeat_timer`, so a
 * socket's first ping comes 0–3 s after its welcome), subscriptions authenticated only by their identifier params,
 * confirmation only on success (a wrong token, user or account gets no answer at all) and only once the pub/sub
 * subscription of its streams is up (100–250 ms later: `ActionCable::Channel::Streams#stream_from` confirms from the
 * pub/sub's callback), broadcasts by pubsub token (`RoomChannel#ensure_stream` streams the user's token, so a
 * subscription hears that user's events of every account: app/channels/room_channel.rb).
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
  /** `deafen()` cut its stream: it stays confirmed on an open socket, and hears nothing. */
  deaf: boolean;
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
  /**
   * Cuts the streams of every subscription confirmed now (as when the pub/sub listener of a Chatwoot process lost its
   * Redis subscription): sockets, pings and confirmations go on, broadcasts to them are lost. Subscriptions made later
   * (a resubscribe) hear normally. Returns how many were cut.
   */
  deafen(): number;
  /**
   * Sends `frame` as it is (any text, well-formed or not) to every open socket: frames Chatwoot would never send, for
   * fuzzing the client's frame handling. Returns the number of sockets it was sent to.
   */
  sendRaw(frame: string): number;
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
}

/** The wait between a successful `subscribed` and its `confirm_subscription` (the pub/sub round trip). */
const CONFIRM_DELAY_MS = [100, 250] as const;

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
  // One heartbeat for the whole server, as ActionCable has: each socket's first ping comes 0–interval after welcome.
  const pinger = setInterval(() => {
    const frame = { type: "ping", message: Math.floor(Date.now() / 1000) };
    for (const connection of connections) send(connection, frame);
  }, pingIntervalMs);
  pinger.unref();
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
      confirmed: false,
      deaf: false,
    };
    connection.subscriptions.set(identifier, subscription);
    if (!ok || raised) return;
    const [least, most] = CONFIRM_DELAY_MS;
    setTimeout(
      () => {
        // Unsubscribed (or the socket closed) meanwhile: nothing to confirm.
        if (connection.subscriptions.get(identifier) !== subscription) return;
        subscription.confirmed = true;
        send(connection, { identifier, type: "confirm_subscription" });
      },
      least + Math.random() * (most - least),
    ).unref();
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
      const connection: Connection = { ws, subscriptions: new Map(), stalled: false };
      connections.add(connection);
      ws.on("message", (data) => receive(connection, data.toString()));
      ws.on("close", () => {
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
      for (const connection of connections) connection.ws.terminate();
      connections.clear();
    },
    disconnectAll({ reason = "server_restart", reconnect = true } = {}) {
      for (const connection of connections) {
        connection.stalled = false;
        send(connection, { type: "disconnect", reason, reconnect });
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
    deafen() {
      let cut = 0;
      for (const connection of connections)
        for (const subscription of connection.subscriptions.values())
          if (subscription.confirmed && !subscription.deaf) {
            subscription.deaf = true;
            cut += 1;
          }
      return cut;
    },
    sendRaw(frame) {
      let sent = 0;
      for (const connection of connections) {
        if (connection.ws.readyState !== connection.ws.OPEN || connection.stalled) continue;
        connection.ws.send(frame);
        sent += 1;
      }
      return sent;
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
          if (!subscription.confirmed || subscription.deaf || subscription.pubsubToken === null) continue;
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
      clearInterval(pinger);
      wss.close();
    },
  };
}
