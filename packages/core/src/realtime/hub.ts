import {
  backoffWithJitter,
  type Cable,
  type Channel,
  createCable,
  NoopLogger,
  stringifyParams,
} from "@anycable/core";
import WebSocket from "ws";
import { type ChatwootApi, ChatwootRequestError } from "../chatwoot/index.js";
import { errorMessage } from "../errors/index.js";
import type { Integration } from "../integrations/index.js";
import { type NetworkPolicy, websocketOptions } from "../net/index.js";
import type { Clock, Logger } from "../observability/index.js";

export type LinkState = "connecting" | "connected" | "disconnected";

export interface RealtimeStatus {
  state: LinkState;
  /** `""` while connected. */
  lastError: string;
}

export interface RealtimeHubOptions {
  chatwoot: ChatwootApi;
  clock: Clock;
  logger: Logger;
  /** An event of Chatwoot's RoomChannel that concerns one of our inboxes. */
  onEvent(integrationId: string, event: string, data: unknown): void;
  /** The subscription is confirmed again after an outage that began at `since`. */
  onReconnect(integrationId: string, since: Date): void;
  /** Server pings are expected this often; two missing ones mean a stale socket. */
  pingIntervalMs: number;
  /** A subscription not confirmed within this is a failure. */
  subscribeTimeoutMs: number;
  /** Longest wait between two reconnect attempts. */
  maxReconnectDelayMs: number;
  /** Checks every socket's connection (the host, then each resolved address); without it, any host is reached. */
  network?: NetworkPolicy;
}

/**
 * Reconnect delays: anycable's exponential backoff with jitter from the ping interval, capped at `maxMs`; at the
 * cap the delay stays jittered (between half of it and all of it), so that many sockets lost together (a Chatwoot
 * restart) do not all come back in the same instant.
 */
export function reconnectDelays(intervalMs: number, maxMs: number): (attempts: number) => number {
  const backoff = backoffWithJitter(intervalMs);
  return (attempts) => Math.min(backoff(attempts), maxMs * (0.5 + Math.random() / 2));
}

interface Subscription {
  accountId: number;
  channel: Channel;
  /** inbox id → integration id */
  members: Map<number, string>;
  /** When events stopped flowing (null while connected). */
  lostAt: Date | null;
  lastError: string;
  detached: boolean;
  /** Being replaced: its channel's close is expected. */
  renewing: boolean;
}

interface Connection {
  key: string;
  baseUrl: string;
  userId: number;
  /** Any member's token: used to re-read the profile (the pubsub token rotates on a password change). */
  apiToken: string;
  pubsubToken: string | null;
  cable: Cable;
  subscriptions: Map<number, Subscription>;
  /** Per account: the subscription being made (or re-made), shared by everyone who asks meanwhile. */
  pending: Map<number, Promise<Subscription>>;
  /** Short-lived confirmation probes using the socket. */
  probes: number;
  /** Per identifier: the release of an unconfirmed channel (see `release`); a new subscribe of it waits for it. */
  releasing: Map<string, Promise<void>>;
}

interface Attachment {
  connection: Connection;
  subscription: Subscription;
  inboxId: number;
}

const CONFIRM_TIMEOUT = (ms: number) => `realtime subscription not confirmed within ${ms / 1000}s`;

function cableUrl(baseUrl: string): string {
  return `${baseUrl.replace(/^http/, "ws")}/cable`;
}

/** Why a subscription attempt failed: a failed profile read as it is, anything else "not confirmed". */
function subscribeFailure(baseUrl: string, timeoutMs: number, cause: unknown): ChatwootRequestError {
  if (cause instanceof ChatwootRequestError) return cause;
  return new ChatwootRequestError({
    kind: "transport",
    method: "SUBSCRIBE",
    url: cableUrl(baseUrl),
    cause: CONFIRM_TIMEOUT(timeoutMs),
  });
}

/**
 * Chatwoot's realtime link: one ActionCable connection per Chatwoot user (base URL + token user), shared by
 * every integration of that user, with one `RoomChannel` subscription per account. @anycable/core does the
 * protocol, pings and reconnects with backoff and jitter; this hub routes events by inbox, re-reads the
 * profile when a subscription is not confirmed, and reports outages so missed replies can be fetched.
 */
export function createRealtimeHub(options: RealtimeHubOptions) {
  const connections = new Map<string, Connection>();
  const byIntegration = new Map<string, Attachment>();
  const pingInterval = options.pingIntervalMs;
  const subscribeTimeout = options.subscribeTimeoutMs;
  const { logger } = options;

  const connectionKey = (integration: Integration) => `${integration.baseUrl}#${integration.chatwootUserId}`;

  function connectionFor(integration: Integration): Connection {
    const key = connectionKey(integration);
    const existing = connections.get(key);
    if (existing) return existing;
    const url = cableUrl(integration.baseUrl);
    const cable = createCable(url, {
      protocol: "actioncable-v1-json",
      websocketImplementation: WebSocket,
      // ws hands `createConnection` to http.request: the network policy checks the host before any socket exists.
      ...(options.network
        ? { websocketOptions: websocketOptions(options.network, url.startsWith("wss:")) }
        : {}),
      pingInterval,
      maxMissingPings: 2,
      protocolOptions: { subscribeRetryInterval: subscribeTimeout / 2 },
      reconnectStrategy: reconnectDelays(pingInterval, options.maxReconnectDelayMs),
      // Its logs carry subscription identifiers, which contain the pubsub token: keep them out.
      logger: new NoopLogger(),
    });
    const connection: Connection = {
      key,
      baseUrl: integration.baseUrl,
      userId: integration.chatwootUserId ?? 0,
      apiToken: integration.apiToken,
      pubsubToken: null,
      cable,
      subscriptions: new Map(),
      pending: new Map(),
      probes: 0,
      releasing: new Map(),
    };
    cable.on("disconnect", () => {
      const now = options.clock.now();
      for (const subscription of connection.subscriptions.values()) {
        subscription.lostAt ??= now;
        subscription.lastError = `Chatwoot realtime link lost - reconnecting to ${cableUrl(connection.baseUrl)}`;
      }
    });
    connections.set(key, connection);
    return connection;
  }

  async function pubsubToken(connection: Connection, refresh: boolean): Promise<string> {
    if (connection.pubsubToken && !refresh) return connection.pubsubToken;
    const profile = await options.chatwoot.getProfile({
      baseUrl: connection.baseUrl,
      apiToken: connection.apiToken,
    });
    connection.pubsubToken = profile.pubsub_token;
    return profile.pubsub_token;
  }

  function subscribe(
    connection: Connection,
    accountId: number,
    channel: Channel,
    members: Map<number, string>,
  ): Subscription {
    const subscription: Subscription = {
      accountId,
      channel,
      members,
      lostAt: null,
      lastError: "",
      detached: false,
      renewing: false,
    };
    channel.on("message", (message) => {
      const { event, data } = message as { event?: unknown; data?: Record<string, unknown> };
      if (typeof event !== "string" || !data) return;
      const conversation = data.conversation as { inbox_id?: unknown } | undefined;
      const inboxId = typeof data.inbox_id === "number" ? data.inbox_id : conversation?.inbox_id;
      const integrationId = typeof inboxId === "number" ? subscription.members.get(inboxId) : undefined;
      if (integrationId) options.onEvent(integrationId, event, data);
    });
    channel.on("connect", () => {
      const since = subscription.lostAt;
      subscription.lostAt = null;
      subscription.lastError = "";
      if (since)
        for (const integrationId of subscription.members.values()) options.onReconnect(integrationId, since);
    });
    channel.on("disconnect", () => {
      subscription.lostAt ??= options.clock.now();
    });
    channel.on("close", (error) => {
      if (subscription.detached || subscription.renewing) return;
      // Not confirmed (a rotated pubsub token, or Chatwoot refused silently): re-read the profile and retry.
      subscription.lostAt ??= options.clock.now();
      subscription.lastError = error ? CONFIRM_TIMEOUT(subscribeTimeout) : "realtime subscription closed";
      logger.warn({ account: accountId }, `chatwoot: ${subscription.lastError}; re-reading the profile`);
      void resubscribe(connection, subscription);
    });
    connection.subscriptions.set(accountId, subscription);
    for (const [inboxId, integrationId] of members)
      byIntegration.set(integrationId, { connection, subscription, inboxId });
    return subscription;
  }

  /**
   * Chatwoot's RoomChannel of one account for the connection's user (channels with one identifier share one
   * subscription). Waits first until an unconfirmed channel with the same identifier is released.
   */
  async function roomChannel(connection: Connection, accountId: number, token: string): Promise<Channel> {
    const params = { pubsub_token: token, account_id: accountId, user_id: connection.userId };
    const identifier = stringifyParams({ channel: "RoomChannel", ...params });
    let released = connection.releasing.get(identifier);
    while (released) {
      await released;
      released = connection.releasing.get(identifier);
    }
    return connection.cable.subscribeTo("RoomChannel", params);
  }

  /**
   * Leaves a channel. anycable unsubscribes a confirmed one; an unconfirmed one is unsubscribed here. When
   * RoomChannel#subscribed raises (database or Redis hiccup, a membership not there yet), ActionCable answers
   * nothing, keeps the identifier registered on the socket and ignores every later subscribe with it; anycable
   * retries with the same identifier and never unsubscribes, so without this the subscription would stay down
   * for the life of the socket while pings keep it healthy. The unsubscribe goes out once anycable has given up
   * its own subscribe of the identifier (until then a new channel would join that doomed wait) and only when no
   * other channel uses the identifier; `roomChannel` waits for it. anycable then holds the next subscribe of the
   * identifier back briefly, so that ActionCable (which runs commands on a thread pool) sees them in order.
   */
  function release(connection: Connection, channel: Channel): void {
    const confirmed = channel.state === "connected";
    const { cable, releasing } = connection;
    const identifier = channel.identifier;
    const held = cable.hub.subscriptions.get(identifier);
    channel.disconnect();
    if (confirmed) return;
    const before = releasing.get(identifier);
    const released: Promise<void> = (async () => {
      await before;
      // anycable's subscribe in flight (ends with the answer or its expiry), then its own unsubscribe step.
      await held?.pending("subscribed");
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (cable.hub.subscriptions.get(identifier)?.channels.length) return;
      // Rails forgets a closed socket's subscriptions; on a socket opened since, the unsubscribe is just ignored.
      if (cable.state === "connected") await cable.protocol.unsubscribe(identifier);
    })()
      .catch(() => {})
      .finally(() => {
        if (releasing.get(identifier) === released) releasing.delete(identifier);
      });
    releasing.set(identifier, released);
  }

  function closeIfUnused(connection: Connection): void {
    if (connection.subscriptions.size > 0 || connection.pending.size > 0 || connection.probes > 0) return;
    connection.cable.disconnect();
    if (connections.get(connection.key) === connection) connections.delete(connection.key);
  }

  /** Runs `make` unless a subscription of the account is already being made; everyone gets the same result. */
  function single(connection: Connection, accountId: number, make: () => Promise<Subscription>) {
    const pending = connection.pending.get(accountId);
    if (pending) return pending;
    const made = make().finally(() => {
      connection.pending.delete(accountId);
      closeIfUnused(connection);
    });
    connection.pending.set(accountId, made);
    return made;
  }

  /** The account's subscription on this connection, made once however many attach at the same time. */
  function subscriptionFor(connection: Connection, accountId: number): Promise<Subscription> {
    const existing = connection.subscriptions.get(accountId);
    if (existing) return Promise.resolve(existing);
    return single(connection, accountId, async () => {
      const channel = await roomChannel(connection, accountId, await pubsubToken(connection, false));
      const current = connection.subscriptions.get(accountId);
      if (!current) return subscribe(connection, accountId, channel, new Map());
      release(connection, channel);
      return current;
    });
  }

  /**
   * Not confirmed (a rotated pubsub token, or Chatwoot refused silently): re-reads the profile and replaces the
   * subscription, keeping its members; the old channel is released first (unsubscribed when it was never
   * confirmed, see `release`). Whoever comes second joins the replacement.
   */
  function replace(connection: Connection, old: Subscription): Promise<Subscription> {
    return single(connection, old.accountId, async () => {
      const token = await pubsubToken(connection, true);
      let current = connection.subscriptions.get(old.accountId);
      if (current === old) {
        old.renewing = true;
        release(connection, old.channel);
        const channel = await roomChannel(connection, old.accountId, token);
        // The release can take until anycable's own expiry: its members may have left meanwhile.
        current = connection.subscriptions.get(old.accountId);
        if (current === old) {
          old.detached = true;
          const next = subscribe(connection, old.accountId, channel, old.members);
          next.lostAt = old.lostAt;
          next.lastError = old.lastError;
          return next;
        }
        release(connection, channel);
      }
      if (current) return current;
      throw new Error("realtime subscription left while it was renewed");
    });
  }

  async function resubscribe(connection: Connection, old: Subscription, attempt = 0): Promise<void> {
    if (old.detached || connection.subscriptions.get(old.accountId) !== old) return;
    try {
      await replace(connection, old);
    } catch (error) {
      old.lastError = errorMessage(error);
      const delay = Math.min(60_000, 1_000 * 2 ** attempt) * (0.5 + Math.random() / 2);
      setTimeout(() => void resubscribe(connection, old, attempt + 1), delay).unref();
    }
  }

  /** Waits for the confirmation, at most `subscribeTimeout` (connecting included: a socket that never opens fails too). */
  async function confirm(channel: Channel, signal?: AbortSignal): Promise<void> {
    const waiting = channel.ensureSubscribed();
    waiting.catch(() => {});
    const timeout = AbortSignal.timeout(subscribeTimeout);
    const stop = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new Error(CONFIRM_TIMEOUT(subscribeTimeout)));
      if (stop.aborted) onAbort();
      else stop.addEventListener("abort", onAbort, { once: true });
    });
    aborted.catch(() => {});
    try {
      await Promise.race([waiting, aborted]);
    } finally {
      if (onAbort) stop.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Waits for the confirmation of `first`. When none comes (a rotated pubsub token, or Chatwoot refusing silently),
   * tries once more with what `renew` opens after re-reading the profile; not after the caller gave up.
   */
  async function confirmOrRenew<T>(
    first: T,
    channelOf: (item: T) => Channel,
    renew: (item: T) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<void> {
    try {
      return await confirm(channelOf(first), signal);
    } catch (error) {
      if (signal?.aborted) throw error;
    }
    await confirm(channelOf(await renew(first)), signal);
  }

  return {
    /**
     * Joins (or opens) the realtime subscription of the integration; resolves once Chatwoot confirmed it. Attaching
     * again with the same target (base URL, user, account, inbox) keeps the subscription and waits for it; with
     * another target it moves. Concurrent calls share one subscription.
     */
    async attach(integration: Integration, signal?: AbortSignal): Promise<void> {
      const { inboxId, accountId } = integration;
      if (inboxId === null || integration.chatwootUserId === null) return;
      const previous = byIntegration.get(integration.id);
      if (
        previous &&
        (previous.connection.key !== connectionKey(integration) ||
          previous.subscription.accountId !== accountId ||
          previous.inboxId !== inboxId ||
          previous.subscription.detached)
      )
        this.detach(integration.id);
      const connection = connectionFor(integration);
      connection.apiToken = integration.apiToken;
      const join = (subscription: Subscription) => {
        subscription.members.set(inboxId, integration.id);
        byIntegration.set(integration.id, { connection, subscription, inboxId });
        return subscription;
      };
      try {
        await confirmOrRenew(
          join(await subscriptionFor(connection, accountId)),
          (subscription) => subscription.channel,
          async (subscription) => join(await replace(connection, subscription)),
          signal,
        );
      } catch (error) {
        // Subscription work for one integration runs one task at a time (ownership), so this is our own attempt.
        this.detach(integration.id);
        throw subscribeFailure(integration.baseUrl, subscribeTimeout, error);
      }
    },

    /**
     * Confirms that the integration's credentials can subscribe, with a short-lived channel of its own that
     * routes nothing (activation on a process that does not own the subscription).
     */
    async probe(integration: Integration, signal?: AbortSignal): Promise<void> {
      if (integration.inboxId === null || integration.chatwootUserId === null) return;
      const connection = connectionFor(integration);
      connection.probes++;
      const open = async (refresh: boolean) =>
        roomChannel(connection, integration.accountId, await pubsubToken(connection, refresh));
      let channel: Channel | null = null;
      try {
        channel = await open(false);
        await confirmOrRenew(
          channel,
          (opened) => opened,
          async (unconfirmed) => {
            release(connection, unconfirmed);
            channel = null;
            channel = await open(true);
            return channel;
          },
          signal,
        );
      } catch (error) {
        throw subscribeFailure(integration.baseUrl, subscribeTimeout, error);
      } finally {
        if (channel) release(connection, channel);
        connection.probes--;
        closeIfUnused(connection);
      }
    },

    /** Leaves the subscription; closes the socket when nobody uses it any more. */
    detach(integrationId: string): void {
      const entry = byIntegration.get(integrationId);
      if (!entry) return;
      byIntegration.delete(integrationId);
      const { connection, subscription } = entry;
      for (const [inboxId, member] of subscription.members)
        if (member === integrationId) subscription.members.delete(inboxId);
      if (
        subscription.members.size === 0 &&
        connection.subscriptions.get(subscription.accountId) === subscription
      ) {
        subscription.detached = true;
        release(connection, subscription.channel);
        connection.subscriptions.delete(subscription.accountId);
      }
      closeIfUnused(connection);
    },

    status(integrationId: string): RealtimeStatus | null {
      const entry = byIntegration.get(integrationId);
      if (!entry) return null;
      const { subscription } = entry;
      if (subscription.channel.state === "connected") return { state: "connected", lastError: "" };
      const state: LinkState = subscription.lostAt ? "disconnected" : "connecting";
      return { state, lastError: subscription.lastError || "realtime link to Chatwoot not connected yet" };
    },

    /** Open sockets (for tests and metrics). */
    socketCount(): number {
      return connections.size;
    },

    close(): void {
      for (const integrationId of [...byIntegration.keys()]) this.detach(integrationId);
    },
  };
}

export type RealtimeHub = ReturnType<typeof createRealtimeHub>;
