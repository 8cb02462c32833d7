/**
 * Storage ports. A storage adapter (memory, knex, ...) implements these small interfaces; the core-side
 * repository over the integration store (`createIntegrationRepository` in `integrations/`) seals and opens
 * the secrets and sets the timestamps, once for every adapter.
 *
 * Concurrency is part of the contract: every guarded write returns `null` (or `false`) to the loser of a
 * race instead of throwing, and no method may leave a half-applied change behind.
 */

export type IntegrationStatus = "provisioning" | "active" | "paused" | "error";
export type DeliveryMode = "realtime" | "webhook";

/** One integration as the storage adapter sees it: secrets are already sealed (`cw1:<keyId>:...`). */
export interface IntegrationRow {
  /** The `bridge_integration_id`, `int_` + random characters; stable for the life of the integration. */
  id: string;
  /** Host instance name; unique: one integration per instance. */
  instance: string;
  status: IntegrationStatus;
  /** Incremented by every successful `update`; the compare-and-set guard. Starts at 1. */
  version: number;
  baseUrl: string;
  accountId: number;
  /** Sealed Chatwoot API token. */
  apiToken: string;
  /** Sealed webhook secret (webhook delivery mode): the capability secret of the registered URL, or null. */
  webhookSecret: string | null;
  /**
   * Sealed webhook-signing secret of the Chatwoot inbox (`channel_api.secret`, Chatwoot 4.13 and later, webhook
   * delivery mode), or null when the inbox has none (older Chatwoot, realtime mode).
   */
  signingSecret: string | null;
  /** Chatwoot's version as `GET /api` answered it at the last activation (e.g. `4.13.0`); null when unknown. */
  chatwootVersion: string | null;
  /** Null until the inbox exists (back-filled by activation). */
  inboxId: number | null;
  inboxName: string;
  /** Chatwoot user id of the token's user. */
  chatwootUserId: number | null;
  deliveryMode: DeliveryMode;
  signMessages: boolean;
  ignoreGroups: boolean;
  startAsPending: boolean;
  reopenResolved: boolean;
  /** Days of older WhatsApp history to import into resolved conversations (`docs/history.md`); absent means 0. */
  importHistoryDays?: number;
  /** `""` when healthy. */
  lastError: string;
  /** Set while an activation holds the row; an expired value may be taken over. */
  provisioningUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Fields an update may change. `id`, `instance`, `version` and `createdAt` never change. */
export type IntegrationPatch = Partial<Omit<IntegrationRow, "id" | "instance" | "version" | "createdAt">>;

export interface IntegrationStore {
  /** Inserts a new row with `version` as given (normally 1). Returns `null` when the instance or id already exists. */
  insert(row: IntegrationRow): Promise<IntegrationRow | null>;
  get(instance: string): Promise<IntegrationRow | null>;
  getById(id: string): Promise<IntegrationRow | null>;
  /** Rows ordered by id, for batch jobs (key rotation, start-up). */
  list(options?: { afterId?: string; limit?: number }): Promise<IntegrationRow[]>;
  /**
   * Compare-and-set: applies `patch` and sets `version = expectedVersion + 1` only when the stored version
   * equals `expectedVersion`. Returns the new row, or `null` when the row is gone or another writer won.
   */
  update(id: string, expectedVersion: number, patch: IntegrationPatch): Promise<IntegrationRow | null>;
  /**
   * Removes the row together with its mapping and outbox rows. With `expectedVersion`, only when the version
   * still matches. Returns whether a row was removed.
   */
  delete(id: string, expectedVersion?: number): Promise<boolean>;
}

/** A WhatsApp chat known to Chatwoot: chat JID → contact, contact-inbox `source_id` and conversation. */
export interface ChatMapping {
  integrationId: string;
  chatJid: string;
  contactId: number;
  sourceId: string;
  /** Null until a conversation exists. */
  conversationId: number | null;
  updatedAt: Date;
}

/** One WhatsApp message (or one part of it) ↔ one Chatwoot message. */
export interface MessageMapping {
  integrationId: string;
  waMessageId: string;
  /** 0 for the first (or only) part; a Chatwoot message with text + 3 attachments maps to parts 0..3. */
  part: number;
  chatwootMessageId: number;
  conversationId: number;
  /** `inbound`: WhatsApp → Chatwoot; `outbound`: Chatwoot → WhatsApp. */
  direction: "inbound" | "outbound";
  createdAt: Date;
}

export interface MappingStore {
  getChat(integrationId: string, chatJid: string): Promise<ChatMapping | null>;
  getChatByConversation(integrationId: string, conversationId: number): Promise<ChatMapping | null>;
  /** Inserts the chat mapping; when one already exists for (integration, chatJid) it is kept and returned. */
  putChat(mapping: ChatMapping): Promise<ChatMapping>;
  /** Points the chat at another conversation (or none); returns false when the chat is unknown. */
  setChatConversation(
    integrationId: string,
    chatJid: string,
    conversationId: number | null,
  ): Promise<boolean>;
  /** Inserts a message mapping; a duplicate (same integration, WhatsApp id and part) is absorbed and returns false. */
  putMessage(mapping: MessageMapping): Promise<boolean>;
  /** All parts of a WhatsApp message, ordered by part. */
  getMessagesByWa(integrationId: string, waMessageId: string): Promise<MessageMapping[]>;
  /** All parts recorded for a Chatwoot message, ordered by part. */
  getMessagesByChatwoot(integrationId: string, chatwootMessageId: number): Promise<MessageMapping[]>;
  /** When the newest message mapping of each direction was recorded (the last message each way), or null. */
  lastMessages(integrationId: string): Promise<Record<MessageMapping["direction"], Date | null>>;
  /** Points the chat at another Chatwoot contact (after a contact merge); returns false when the chat is unknown. */
  setChatContact(integrationId: string, chatJid: string, contactId: number): Promise<boolean>;
  /**
   * Stores that a LID and a phone JID are one person. One link per LID: a link with another phone JID for a known
   * LID replaces it (the person changed numbers); storing a link again changes nothing. Concurrent calls leave one
   * row. Returns the stored link.
   */
  linkIdentity(link: IdentityLink): Promise<IdentityLink>;
  /**
   * The link of a LID or of a phone JID (looked up as either), or null. A phone JID linked to several LIDs answers
   * the most recent link.
   */
  resolveIdentity(integrationId: string, address: string): Promise<IdentityLink | null>;
  /**
   * History sync (`docs/history.md`): adds `change` to a chat's history record (created at zero when absent).
   * `routedAt` raises the chat's last routed WhatsApp timestamp (never lowers it); the counts are added;
   * `conversationId` sets the chat's history conversation.
   */
  recordHistory(integrationId: string, chatJid: string, change: HistoryChange): Promise<void>;
  /** The chat's history record: the WhatsApp timestamp of its newest routed message and its history conversation. */
  getHistory(integrationId: string, chatJid: string): Promise<ChatHistory>;
  /** History messages of an integration: queued by `ingest`, then imported or skipped by delivery (sums of all chats). */
  historyProgress(integrationId: string): Promise<HistoryProgress>;
}

/** A chat's history record (nulls when the chat has none). */
export interface ChatHistory {
  lastRoutedAt: Date | null;
  /** The resolved conversation older history is imported into, once one was created. */
  conversationId: number | null;
}

/** What `MappingStore.recordHistory` adds to a chat's history record. */
export interface HistoryChange {
  routedAt?: Date;
  conversationId?: number;
  queued?: number;
  imported?: number;
  skipped?: number;
}

export interface HistoryProgress {
  queued: number;
  imported: number;
  skipped: number;
}

/**
 * One person's two WhatsApp addresses in one integration: the LID (`<digits>@lid`) and the phone JID
 * (`<digits>@s.whatsapp.net`), as an event carrying both (or a `contact.identity` event) told it.
 */
export interface IdentityLink {
  integrationId: string;
  lid: string;
  jid: string;
  /** When the link was first stored or last changed. */
  createdAt: Date;
}

export type OutboxDirection = "inbound" | "outbound";
export type OutboxStatus = "pending" | "claimed" | "done" | "dead";

export interface OutboxItem {
  id: string;
  integrationId: string;
  direction: OutboxDirection;
  /** Items with the same chat key are processed one at a time, oldest first. */
  chatKey: string;
  /** Unique per integration; a second enqueue with the same key is absorbed. */
  dedupeKey: string;
  /** JSON-serialisable work description. */
  payload: unknown;
  status: OutboxStatus;
  /** Attempts that ended without success: each `fail`, and each claim that expired (its outcome is unknown). */
  attempts: number;
  availableAt: Date;
  claimedBy: string | null;
  claimUntil: Date | null;
  lastError: string;
  createdAt: Date;
}

export interface EnqueueInput {
  integrationId: string;
  direction: OutboxDirection;
  chatKey: string;
  dedupeKey: string;
  payload: unknown;
  /** Defaults to `now`. */
  availableAt?: Date;
}

export interface OutboxStore {
  /** Durable once resolved. `duplicate: true` when the dedupe key was already present (nothing written). */
  enqueue(input: EnqueueInput, now: Date): Promise<{ id: string; duplicate: boolean }>;
  /**
   * Claims up to `limit` items for `owner` until `now + claimTtlMs`. Per chat key only the oldest unfinished
   * item can be claimed, and only when no other item of that chat key is claimed with a live deadline; items
   * whose claim deadline passed are claimable again (with `attempts + 1`). Two concurrent claimers never get
   * the same item. Items of the integrations in `excludeIntegrations` are left alone (the dispatcher's fair share:
   * work of the others first).
   */
  claim(options: {
    owner: string;
    limit: number;
    claimTtlMs: number;
    now: Date;
    excludeIntegrations?: readonly string[];
  }): Promise<OutboxItem[]>;
  /**
   * Moves the claim deadline of an item `owner` still holds (a heartbeat while it is being processed, so a slow
   * attempt is not taken over while it runs). Returns false when the claim was lost.
   */
  extend(id: string, owner: string, claimUntil: Date): Promise<boolean>;
  /** Marks a claimed item done. Returns false when `owner` no longer holds the claim. */
  complete(id: string, owner: string): Promise<boolean>;
  /**
   * Returns a claimed item to `pending` with a retry time and `attempts + 1`; with `attempted: false` (an item put
   * back untried, e.g. while its integration is paused) `attempts` stays as it is.
   */
  fail(
    id: string,
    owner: string,
    options: { retryAt: Date; error: string; attempted?: boolean },
  ): Promise<boolean>;
  /** Gives up on a claimed item (dead letter); it no longer blocks its chat key. */
  markDead(id: string, owner: string, error: string): Promise<boolean>;
  /** Removes every unfinished item of an integration; returns how many were removed. */
  cancelAll(integrationId: string, direction?: OutboxDirection): Promise<number>;
  /** The item stored under a dedupe key, whatever its status (done and dead items are kept), or null. */
  find(integrationId: string, dedupeKey: string): Promise<OutboxItem | null>;
  /** Counts items by status for an integration (observability, tests). */
  count(integrationId: string): Promise<Record<OutboxStatus, number>>;
  /**
   * Dead letters of an integration, newest first (enqueue order), at most `limit`. With `before` (the id of an item of
   * the integration, normally the last dead letter of the previous page) only those enqueued before it; an unknown
   * `before` answers none. For the `GET dead-letters/:instance` route.
   */
  deadLetters(integrationId: string, options: { limit: number; before?: string }): Promise<OutboxItem[]>;
  /**
   * Puts a dead letter back, due at `now`, with its id, dedupe key, payload and `attempts` (an earlier attempt with
   * an unknown outcome is still reconciled before a create): once, by compare-and-set on its status (a second call
   * answers `not_dead`). It is queued behind the unfinished items its
   * chat key already has, as a new enqueue would be. `not_found` when the integration has no item with that id.
   */
  retryDead(integrationId: string, id: string, now: Date): Promise<"retried" | "not_dead" | "not_found">;
  /** The outbox of an integration at a glance (the status route): depth, dead letters, oldest due item. */
  summary(integrationId: string, now: Date): Promise<OutboxSummary>;
  /**
   * The whole outbox at a glance (every integration, for metrics scraped often): the same figures as `summary`. Cheap:
   * it reads only unfinished and dead items, through the status index.
   */
  totals(now: Date): Promise<OutboxSummary>;
  /**
   * Retention: deletes at most `limit` finished items, done ones created before `doneBefore` and dead ones created
   * before `deadBefore`, oldest first; unfinished items are never touched. Returns how many were deleted (fewer
   * than `limit`: nothing more is due now). Through the `(status, created_at)` index, in one short statement.
   */
  prune(options: { doneBefore: Date; deadBefore: Date; limit: number }): Promise<number>;
}

/** What `OutboxStore.summary` answers. */
export interface OutboxSummary {
  /** Unfinished items: pending (due or waiting for a retry) and claimed. */
  depth: number;
  /** Dead letters kept. */
  dead: number;
  /** When the oldest unfinished item that is due at `now` (claimed ones included) was enqueued; null when none is. */
  oldestDueAt: Date | null;
}

export interface Lease {
  name: string;
  owner: string;
  /** Fencing epoch: increases every time the lease changes owner. */
  epoch: number;
  expiresAt: Date;
}

/** A lease as its holder knows it: what `renew` needs to prove it still holds it. */
export type HeldLease = Pick<Lease, "name" | "epoch">;

export interface LeaseStore {
  /** Takes the lease when free, expired, or already held by `owner` (then it is renewed, same epoch). */
  acquire(name: string, owner: string, ttlMs: number, now: Date): Promise<Lease | null>;
  /**
   * Extends, in one go, every lease of `held` that `owner` still holds at the given epoch (expired or not, as long
   * as nobody took it over). Returns the renewed ones; a lease missing from the answer was lost.
   */
  renew(owner: string, held: ReadonlyArray<HeldLease>, ttlMs: number, now: Date): Promise<Lease[]>;
  /** Releases a lease held by `owner`; returns false when it was not held. */
  release(name: string, owner: string): Promise<boolean>;
  get(name: string): Promise<Lease | null>;
  /** Every held lease (owner set, expired or not) whose name starts with `prefix`, ordered by name. */
  list(prefix: string): Promise<Lease[]>;
}

/** Everything the core persists. Implementations: `createMemoryStore()` (core), `createKnexStore()` (knex). */
export interface StoragePort {
  integrations: IntegrationStore;
  mappings: MappingStore;
  outbox: OutboxStore;
  leases: LeaseStore;
}
