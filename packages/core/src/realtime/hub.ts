import {
  backoffWithJitter,
  type Cable,
  type Channel,
  createCable,
  NoopLogger,
  stringifyParams,
} from "@anycable/core";
import WebSocket from "ws";
import {
  type ChatwootAccountTarget,
  type ChatwootApi,
  type ChatwootProfile,
  ChatwootRequestError,
  failureClass,
  isChatwootRequestError,
} from "../chatwoot/index.js";
import { errorMessage } from "../errors/index.js";
import type { Integration } from "../integrations/index.js";
import { mapLimited } from "../limited.js";
import { type NetworkPolicy, websocketOptions } from "../net/index.js";
import type { Clock, Logger } from "../observability/index.js";
import { ObjectFrameEncoder } from "./frames.js";

/**
 * `deaf`: the subscription is confirmed but events do not reach it (a probe found messages of the inbox the link never
 * delivered); it is resubscribed and what was missed is fetched over REST.
 */
export type LinkState = "connecting" | "connected" | "disconnected" | "deaf";

/** Counters of the realtime links (metrics). */
export interface RealtimeStats {
  /** Integrations of this process by link state. */
  links: Record<LinkState, number>;
  /** Sockets opened again after they were lost. */
  reconnects: number;
  /** Subscriptions made again (unconfirmed, rotated pubsub token, restored membership, deafness). */
  resubscribes: number;
  /** Agent replies queued by backfills after outages. */
  backfilledReplies: number;
  /** Deafness episodes detected. */
  deafDetections: number;
}

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
  /**
   * How often each confirmed subscription is probed for deafness: the newest messages of its inbox over REST are
   * compared with the newest seen on the link. Default 60 s.
   */
  deafProbeIntervalMs?: number;
  /** A deafness episode began (once per episode): the link was last known good at `since`. */
  onDeaf?(integrationId: string, since: Date): void;
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
  /** When Chatwoot confirmed it (ms), null until then. */
  confirmedAt: number | null;
  /** The last moment events were known to reach the link (confirmed, an event arrived, a deafness probe passed). */
  goodAt: Date | null;
  /** The last profile check that found the subscription's pubsub token and membership still good (or the confirmation). */
  checkedAt: Date | null;
  /** Known bad although confirmed: the token user lost the account or inbox, the pubsub token rotated, deafness. */
  problem: { kind: "membership" | "token" | "deaf"; message: string } | null;
  /** Per inbox: the newest message id an event of the link carried. */
  seen: Map<number, number>;
  /** When it was last probed for deafness (ms). */
  probedAt: number;
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
  /** The check of the profile and the subscriptions running now (one at a time). */
  verifying: Promise<void> | null;
  /** The socket was connected before (its next connect is a reconnect). */
  wasConnected: boolean;
}

interface Attachment {
  connection: Connection;
  subscription: Subscription;
  inboxId: number;
}

/** Sockets whose links `verify` checks at once. */
export const VERIFY_CONCURRENCY = 16;
const CONFIRM_TIMEOUT = (ms: number) => `realtime subscription not confirmed within ${ms / 1000}s`;
const DEAF =
  "Chatwoot realtime link is deaf: subscribed, but messages of the inbox did not arrive on it - resubscribing and fetching what was missed";
const ROTATED =
  "Chatwoot rotated the pubsub token of the API token's user (a password change) - resubscribing";
const NOT_MEMBER = (accountId: number) =>
  `the Chatwoot user of the API token is no longer a member of account ${accountId}, so Chatwoot sends it no events - restore its membership (administrator) or re-activate with another token`;
const CANNOT_SEE = (inboxId: number) =>
  `the Chatwoot user of the API token cannot see inbox ${inboxId} any more, so Chatwoot sends it no events of it - make it an administrator or a member of the inbox again`;

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
  const deafProbeInterval = options.deafProbeIntervalMs ?? 60_000;
  /** Seen on the link or not, a message younger than this is not judged yet (Chatwoot broadcasts from a job). */
  const deafGrace = Math.min(5_000, deafProbeInterval / 2);
  const stats = { reconnects: 0, resubscribes: 0, backfilledReplies: 0, deafDetections: 0 };
  /**
   * Open deafness episodes by integration: since when the link missed events, and when deafness was last detected.
   * An episode ends when a subscription made after that detection hears the inbox or passes a probe.
   */
  const deafEpisodes = new Map<string, { since: Date; detectedAt: number }>();
  const nowMs = () => options.clock.now().getTime();

  function connectionFor(integration: Integration): Connection {
    const key = connectionKey(integration);
    const existing = connections.get(key);
    if (existing) return existing;
    const url = cableUrl(integration.baseUrl);
    const cable = createCable(url, {
      protocol: "actioncable-v1-json",
      // Frames that are not JSON objects are dropped (a `null` would throw where nothing catches it).
      encoder: new ObjectFrameEncoder(),
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
      verifying: null,
      wasConnected: false,
    };
    cable.on("connect", () => {
      if (connection.wasConnected) {
        stats.reconnects += 1;
        logger.info({ url: cableUrl(connection.baseUrl) }, "chatwoot: realtime socket reconnected");
      }
      connection.wasConnected = true;
    });
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
      confirmedAt: null,
      goodAt: null,
      checkedAt: null,
      problem: null,
      seen: new Map(),
      probedAt: 0,
    };
    channel.on("message", (message) => {
      const { event, data } = message as { event?: unknown; data?: Record<string, unknown> };
      if (typeof event !== "string" || !data) return;
      // RoomChannel streams the user's pubsub token: the user's events of every account arrive here. Only ours count.
      if (typeof data.account_id === "number" && data.account_id !== accountId) return;
      const conversation = data.conversation as { inbox_id?: unknown } | undefined;
      const inboxId = typeof data.inbox_id === "number" ? data.inbox_id : conversation?.inbox_id;
      const integrationId = typeof inboxId === "number" ? subscription.members.get(inboxId) : undefined;
      if (!integrationId || typeof inboxId !== "number") return;
      if (event.startsWith("message.") && typeof data.id === "number")
        subscription.seen.set(inboxId, Math.max(data.id, subscription.seen.get(inboxId) ?? 0));
      if (!subscription.problem) subscription.goodAt = options.clock.now();
      heard(integrationId, subscription);
      options.onEvent(integrationId, event, data);
    });
    channel.on("connect", () => {
      const since = subscription.lostAt;
      if (subscription.problem?.kind === "deaf") subscription.problem = null;
      subscription.confirmedAt = nowMs();
      // The first probe a whole interval after the confirmation: nothing can have been missed before.
      subscription.probedAt = subscription.confirmedAt;
      subscription.goodAt = options.clock.now();
      subscription.checkedAt = subscription.goodAt;
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
      stats.resubscribes += 1;
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

  /** An event of the inbox arrived: a deafness episode ends once a subscription made after its detection hears. */
  function heard(integrationId: string, subscription: Subscription): void {
    const episode = deafEpisodes.get(integrationId);
    if (!episode || subscription.problem || (subscription.confirmedAt ?? 0) <= episode.detectedAt) return;
    deafEpisodes.delete(integrationId);
    logger.info({ integrationId }, "chatwoot: realtime link hears again");
  }

  /**
   * The link is known bad although confirmed. It missed events since it was last known good: that moment, not a
   * later socket loss, is where the backfill after the heal starts (`lostAt`).
   */
  function markBad(subscription: Subscription, kind: "membership" | "token" | "deaf", message: string): void {
    const since = kind === "deaf" ? subscription.goodAt : subscription.checkedAt;
    subscription.lostAt ??= since ?? options.clock.now();
    if (subscription.problem?.kind !== kind)
      logger.warn({ account: subscription.accountId }, `chatwoot: ${message}`);
    subscription.problem = { kind, message };
    subscription.lastError = message;
  }

  /** Why the token user no longer gets the events of the subscription's inboxes, or null. */
  async function membershipProblem(
    connection: Connection,
    subscription: Subscription,
    profile: ChatwootProfile,
  ): Promise<string | null> {
    const membership = profile.accounts.find((account) => account.id === subscription.accountId);
    if (!membership) return NOT_MEMBER(subscription.accountId);
    // Administrators get every inbox's events (ActionCableListener `user_tokens`: inbox members + administrators).
    if (membership.role === undefined || membership.role === "administrator") return null;
    for (const inboxId of [...subscription.members.keys()]) {
      try {
        await options.chatwoot.getInbox(targetOf(connection, subscription), inboxId);
      } catch (error) {
        if (!isChatwootRequestError(error)) continue;
        const kind = failureClass(error.failure);
        if (kind === "CHATWOOT_FORBIDDEN" || kind === "CHATWOOT_NOT_FOUND") return CANNOT_SEE(inboxId);
      }
    }
    return null;
  }

  function targetOf(connection: Connection, subscription: Subscription): ChatwootAccountTarget {
    return { baseUrl: connection.baseUrl, apiToken: connection.apiToken, accountId: subscription.accountId };
  }

  /**
   * Deafness probe of a confirmed subscription (at most every `deafProbeIntervalMs`): the inbox's newest messages
   * over REST, created since the confirmation and old enough to have been broadcast, against the newest seen on the
   * link. A newer one over REST means the link missed it.
   */
  async function probeDeafness(connection: Connection, subscription: Subscription): Promise<void> {
    const at = nowMs();
    const confirmedAt = subscription.confirmedAt;
    if (subscription.problem || confirmedAt === null || subscription.channel.state !== "connected") return;
    if (at - subscription.probedAt < deafProbeInterval) return;
    subscription.probedAt = at;
    // created_at is in whole seconds (rounded down): a message whose second starts at or after the confirmation was
    // surely created after it (one created just before, which the link could not hear, never counts), and one whose
    // second ends a grace before now was surely broadcast by now.
    const from = confirmedAt;
    const until = at - deafGrace - 1_000;
    for (const [inboxId, integrationId] of [...subscription.members]) {
      let conversations: Awaited<ReturnType<ChatwootApi["listRecentConversations"]>>;
      try {
        conversations = await options.chatwoot.listRecentConversations(
          targetOf(connection, subscription),
          inboxId,
          // Wide enough that every message is judged by at least two probes, however the rounds fall.
          (3 * deafProbeInterval + deafGrace) / 1000 + 2,
        );
      } catch {
        continue; // nothing known: the next probe tries again
      }
      let newest = 0;
      for (const conversation of conversations) {
        const cards: unknown[] = [
          ...(conversation.messages ?? []),
          (conversation as { last_non_activity_message?: unknown }).last_non_activity_message,
        ];
        for (const card of cards) {
          const { id, created_at: created } = (card ?? {}) as { id?: unknown; created_at?: unknown };
          if (typeof id !== "number" || typeof created !== "number") continue;
          if (created * 1000 >= from && created * 1000 <= until) newest = Math.max(newest, id);
        }
      }
      if (subscription.detached || subscription.problem) return;
      logger.debug(
        { inboxId, newest, seen: subscription.seen.get(inboxId) ?? 0 },
        "chatwoot: deafness probe",
      );
      if (newest > (subscription.seen.get(inboxId) ?? 0)) {
        markBad(subscription, "deaf", DEAF);
        const episode = deafEpisodes.get(integrationId);
        if (episode) episode.detectedAt = at;
        else {
          stats.deafDetections += 1;
          deafEpisodes.set(integrationId, { since: subscription.lostAt!, detectedAt: at });
          options.onDeaf?.(integrationId, subscription.lostAt!);
        }
        // A subscribe with the same identifier on the same socket would only rejoin the deaf server-side subscription
        // (anycable shares it): a new socket makes ActionCable set up the connection and its streams again. Its
        // channels resubscribe by themselves and, confirmed, backfill from `lostAt`.
        connection.cable.disconnect();
        void connection.cable.connect().catch(() => {});
        return;
      }
      subscription.goodAt = new Date(Math.max(subscription.goodAt?.getTime() ?? 0, until));
      heard(integrationId, subscription);
    }
  }

  /**
   * Re-reads the profile of the connection's user and checks each subscription: a rotated pubsub token (Chatwoot
   * broadcasts to the new one only, and the old subscription stays confirmed) or a restored membership resubscribes; a
   * lost membership marks the link bad until it is restored; then the deafness probe when it is due.
   */
  async function verifyConnection(connection: Connection): Promise<void> {
    if (connection.subscriptions.size === 0 || connection.cable.state !== "connected") return;
    const checkedAt = options.clock.now();
    let profile: ChatwootProfile;
    try {
      profile = await options.chatwoot.getProfile({
        baseUrl: connection.baseUrl,
        apiToken: connection.apiToken,
      });
    } catch {
      return; // unknown: routing reports a rejected token; the next round reads again
    }
    const rotated = connection.pubsubToken !== null && profile.pubsub_token !== connection.pubsubToken;
    for (const subscription of [...connection.subscriptions.values()]) {
      if (subscription.detached || connection.subscriptions.get(subscription.accountId) !== subscription)
        continue;
      const lost = await membershipProblem(connection, subscription, profile);
      if (lost) {
        markBad(subscription, "membership", lost);
        continue;
      }
      if (rotated) {
        markBad(subscription, "token", ROTATED);
        void resubscribe(connection, subscription);
        continue;
      }
      if (subscription.problem?.kind === "membership") {
        // Restored: subscribe again (the old one may have been dropped meanwhile) and fetch what was missed.
        logger.info({ account: subscription.accountId }, "chatwoot: realtime membership restored");
        void resubscribe(connection, subscription);
        continue;
      }
      if (!subscription.problem && subscription.channel.state === "connected") {
        subscription.checkedAt = checkedAt;
        await probeDeafness(connection, subscription);
      }
    }
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
      deafEpisodes.delete(integrationId);
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
      if (deafEpisodes.has(integrationId)) return { state: "deaf", lastError: DEAF };
      if (subscription.problem) return { state: "disconnected", lastError: subscription.problem.message };
      if (subscription.channel.state === "connected") return { state: "connected", lastError: "" };
      const state: LinkState = subscription.lostAt ? "disconnected" : "connecting";
      return { state, lastError: subscription.lastError || "realtime link to Chatwoot not connected yet" };
    },

    /** Open sockets (for tests and metrics). */
    socketCount(): number {
      return connections.size;
    },

    /**
     * Checks every link (realtime ownership calls it each round): re-reads each user's profile (pubsub token, account
     * role and inbox visibility) and probes confirmed subscriptions for deafness when due. One check per socket at a
     * time, and at most `VERIFY_CONCURRENCY` sockets at once: a process holding a thousand token users would
     * otherwise send a thousand profile reads in one turn of the event loop every round, and stall replies behind
     * them. Resolves when they are done.
     */
    async verify(): Promise<void> {
      await mapLimited([...connections.values()], VERIFY_CONCURRENCY, (connection) => {
        connection.verifying ??= verifyConnection(connection)
          .catch((error) => logger.warn({ err: errorMessage(error) }, "chatwoot: realtime check failed"))
          .finally(() => {
            connection.verifying = null;
          });
        return connection.verifying;
      });
    },

    /** Counts agent replies a backfill queued (metrics). */
    recordBackfill(queued: number): void {
      stats.backfilledReplies += queued;
    },

    /** Counters for metrics: links by state, reconnects, resubscribes, backfilled replies, deafness detections. */
    stats(): RealtimeStats {
      const links: Record<LinkState, number> = { connecting: 0, connected: 0, disconnected: 0, deaf: 0 };
      for (const integrationId of byIntegration.keys()) {
        const state = this.status(integrationId)?.state;
        if (state) links[state] += 1;
      }
      return { links, ...stats };
    },

    close(): void {
      for (const integrationId of [...byIntegration.keys()]) this.detach(integrationId);
    },
  };
}

export type RealtimeHub = ReturnType<typeof createRealtimeHub>;
