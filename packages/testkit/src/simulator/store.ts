/**
 * The simulator's in-memory database. Records mirror Chatwoot's tables (camelCase columns); the
 * JSON shapes Chatwoot renders live in `views.ts`, so one record can be rendered several ways
 * (admin vs. agent, full vs. slim) exactly as the jbuilder views do.
 */
import { randomInt } from "node:crypto";
import { registerSecret } from "../secrets.js";
import {
  type ChatwootVersion,
  featuresOf,
  NEWEST_CHATWOOT_VERSION,
  type VersionFeatures,
} from "./versions.js";

/** Roles of `AccountUser` (`enum role: { agent: 0, administrator: 1 }`). */
export type AccountRole = "agent" | "administrator";

/** `Account#status` (`enum status: { active: 0, suspended: 1 }`). */
export type AccountStatus = "active" | "suspended";

/** User availability (`enum availability: { online: 0, offline: 1, busy: 2 }`). */
export type Availability = "online" | "offline" | "busy";

export interface AccountRecord {
  id: number;
  name: string;
  status: AccountStatus;
  createdAt: Date;
  /** Last conversation `display_id` handed out in this account (display ids are per account). */
  lastConversationDisplayId: number;
}

export interface UserRecord {
  id: number;
  name: string;
  /** `display_name`; `available_name` is `display_name.presence || name`. */
  displayName: string | null;
  email: string;
  messageSignature: string | null;
  uiSettings: Record<string, unknown>;
  customAttributes: Record<string, unknown>;
  /** STI type: `null` for normal users, `"SuperAdmin"` for super admins. */
  type: string | null;
  pubsubToken: string;
  accessToken: string;
  createdAt: Date;
}

export interface AccountUserRecord {
  accountId: number;
  userId: number;
  role: AccountRole;
  inviterId: number | null;
  activeAt: Date;
  availability: Availability;
  availabilityStatus: Availability;
  autoOffline: boolean;
  /** Insertion order, used to break `active_at` ties when picking the active account. */
  seq: number;
}

/** Owner of an `AccessToken` row. Agent bots are a later phase; the union is ready for them. */
export interface AccessTokenRecord {
  ownerType: "User";
  ownerId: number;
}

export interface ApiChannelRecord {
  id: number;
  accountId: number;
  webhookUrl: string | null;
  hmacMandatory: boolean | null;
  /** `has_secure_token :hmac_token` (contact identity verification, not webhook signing). */
  hmacToken: string;
  /** `has_secure_token :identifier`, rendered as `inbox_identifier`. */
  identifier: string;
  additionalAttributes: Record<string, unknown>;
  /**
   * Webhook-signing secret (`WebhookSecretable`, Chatwoot ≥ 4.13). Always generated; rendered to
   * administrators from 4.13 (or when an older version is made to sign, see `WebhookSigning`).
   */
  secret: string;
  /** Per-inbox signing override; `undefined` follows the simulator's `webhookSigning` option. */
  webhookSigning: WebhookSigning | undefined;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * How API-inbox webhook deliveries are signed: `"off"` as Chatwoot ≤ 4.12 (no signature headers; 4.12 still sends
 * `X-Chatwoot-Delivery`),
 * `"secret"` as 4.13 (HMAC with the inbox `secret`), `"hmac_token"` as the installs of upstream issue
 * #13809 (headers present, but signed with the channel's `hmac_token` instead of the shown `secret`).
 */
export type WebhookSigning = "off" | "secret" | "hmac_token";

/** One row of `working_hours` (`Inbox::OFFISABLE_ATTRS`). */
export interface WorkingHourRecord {
  dayOfWeek: number;
  closedAllDay: boolean;
  openHour: number | null;
  openMinutes: number | null;
  closeHour: number | null;
  closeMinutes: number | null;
  openAllDay: boolean;
}

export interface InboxRecord {
  id: number;
  accountId: number;
  /** Only API channels are simulated; the polymorphic pair stays so other channels can be added. */
  channelType: "Channel::Api";
  channelId: number;
  name: string;
  greetingEnabled: boolean | null;
  greetingMessage: string | null;
  enableEmailCollect: boolean | null;
  csatSurveyEnabled: boolean | null;
  csatConfig: Record<string, unknown>;
  enableAutoAssignment: boolean | null;
  autoAssignmentConfig: Record<string, unknown>;
  workingHoursEnabled: boolean | null;
  outOfOfficeMessage: string | null;
  timezone: string;
  allowMessagesAfterResolved: boolean | null;
  lockToSingleConversation: boolean;
  senderNameType: "friendly" | "professional";
  businessName: string | null;
  workingHours: WorkingHourRecord[];
  /** `inbox_members`: agents see and receive events only for inboxes they are members of. */
  memberUserIds: Set<number>;
  createdAt: Date;
  updatedAt: Date;
}

export interface ContactRecord {
  id: number;
  accountId: number;
  name: string | null;
  /** Stored lower-cased; blank becomes null (`prepare_email_attribute`). */
  email: string | null;
  phoneNumber: string | null;
  identifier: string | null;
  blocked: boolean;
  additionalAttributes: Record<string, unknown>;
  customAttributes: Record<string, unknown>;
  /** Set when the contact sends a message (`Message#update_contact_activity`). */
  lastActivityAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ContactInboxRecord {
  id: number;
  contactId: number;
  inboxId: number;
  sourceId: string;
  hmacVerified: boolean;
  pubsubToken: string;
  createdAt: Date;
  updatedAt: Date;
}

/** `enum status: { open: 0, resolved: 1, pending: 2, snoozed: 3 }`. */
export type ConversationStatus = "open" | "resolved" | "pending" | "snoozed";
export const CONVERSATION_STATUSES: readonly ConversationStatus[] = [
  "open",
  "resolved",
  "pending",
  "snoozed",
];

export interface ConversationRecord {
  id: number;
  accountId: number;
  /** Per-account number used in URLs and payloads. */
  displayId: number;
  inboxId: number;
  contactId: number;
  contactInboxId: number;
  uuid: string;
  status: ConversationStatus;
  assigneeId: number | null;
  teamId: number | null;
  additionalAttributes: Record<string, unknown>;
  customAttributes: Record<string, unknown>;
  snoozedUntil: Date | null;
  agentLastSeenAt: Date | null;
  assigneeLastSeenAt: Date | null;
  contactLastSeenAt: Date | null;
  firstReplyCreatedAt: Date | null;
  waitingSince: Date | null;
  lastActivityAt: Date;
  createdAt: Date;
  updatedAt: Date;
}

/** `enum message_type: { incoming: 0, outgoing: 1, activity: 2, template: 3 }`. */
export type MessageType = "incoming" | "outgoing" | "activity" | "template";
export const MESSAGE_TYPES: readonly MessageType[] = ["incoming", "outgoing", "activity", "template"];

/** `enum status: { sent: 0, delivered: 1, read: 2, failed: 3 }`. */
export type MessageStatus = "sent" | "delivered" | "read" | "failed";
export const MESSAGE_STATUSES: readonly MessageStatus[] = ["sent", "delivered", "read", "failed"];

/** `Message.content_types`, in enum order. */
export const CONTENT_TYPES = [
  "text",
  "input_text",
  "input_textarea",
  "input_email",
  "input_select",
  "cards",
  "form",
  "article",
  "incoming_email",
  "input_csat",
  "integrations",
  "sticker",
  "voice_call",
] as const;

export interface MessageRecord {
  id: number;
  accountId: number;
  inboxId: number;
  /** The conversation's database id (not its display id). */
  conversationId: number;
  content: string | null;
  messageType: MessageType;
  contentType: string;
  status: MessageStatus;
  private: boolean;
  sourceId: string | null;
  contentAttributes: Record<string, unknown>;
  senderType: "User" | "Contact" | null;
  senderId: number | null;
  additionalAttributes: Record<string, unknown>;
  processedMessageContent: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** `Attachment.file_types` the simulator produces from uploads. */
export type AttachmentFileType = "image" | "audio" | "video" | "file";

export interface AttachmentRecord {
  id: number;
  accountId: number;
  messageId: number;
  fileType: AttachmentFileType;
  /** The stored bytes (ActiveStorage blob). */
  data: Buffer;
  contentType: string;
  fileName: string;
  /** Public, unguessable id used in the storage URLs (like a signed blob id). */
  blobKey: string;
  createdAt: Date;
}

/**
 * Tables whose ids come from one sequence each, like PostgreSQL serials: ids are global, not per
 * account.
 */
export type TableName =
  | "accounts"
  | "users"
  | "account_users"
  | "channel_api"
  | "inboxes"
  | "contacts"
  | "contact_inboxes"
  | "conversations"
  | "messages"
  | "attachments";

/** Simulator-wide behaviour switches that records and views consult. */
export interface SimulatorSettings {
  /** The Chatwoot version played (`startChatwootSimulator({ version })`). */
  version: ChatwootVersion;
  /** What differs in that version (derived from `version`). */
  features: VersionFeatures;
  /** Default for inboxes without their own `webhookSigning`: `"secret"` from 4.13, else `"off"`. */
  webhookSigning: WebhookSigning;
}

/**
 * A table that also keeps its records grouped by one field (a conversation's messages, a message's attachments),
 * each group in insertion order like the table itself, so that reading one group costs the size of the group,
 * not of the whole table: the simulator stays as fast with 100,000 messages as with 100.
 */
export class GroupedTable<K, V, G> extends Map<K, V> {
  private readonly groups = new Map<G, Map<K, V>>();

  constructor(private readonly groupOf: (value: V) => G) {
    super();
  }

  override set(key: K, value: V): this {
    const previous = super.get(key);
    const group = this.groupOf(value);
    if (previous !== undefined && this.groupOf(previous) !== group)
      this.groups.get(this.groupOf(previous))?.delete(key);
    const members = this.groups.get(group);
    if (members) members.set(key, value);
    else this.groups.set(group, new Map([[key, value]]));
    return super.set(key, value);
  }

  override delete(key: K): boolean {
    const previous = super.get(key);
    if (previous !== undefined) this.groups.get(this.groupOf(previous))?.delete(key);
    return super.delete(key);
  }

  override clear(): void {
    this.groups.clear();
    super.clear();
  }

  /** The records of one group, in insertion order. */
  group(group: G): V[] {
    return [...(this.groups.get(group)?.values() ?? [])];
  }
}

export interface SimulatorStore {
  readonly settings: SimulatorSettings;
  readonly accounts: Map<number, AccountRecord>;
  readonly users: Map<number, UserRecord>;
  readonly accountUsers: AccountUserRecord[];
  /** `AccessToken.token` → owner. */
  readonly accessTokens: Map<string, AccessTokenRecord>;
  readonly apiChannels: Map<number, ApiChannelRecord>;
  readonly inboxes: Map<number, InboxRecord>;
  readonly contacts: Map<number, ContactRecord>;
  readonly contactInboxes: Map<number, ContactInboxRecord>;
  readonly conversations: Map<number, ConversationRecord>;
  /** Grouped by conversation. */
  readonly messages: GroupedTable<number, MessageRecord, number>;
  /** Grouped by message. */
  readonly attachments: GroupedTable<number, AttachmentRecord, number>;
  nextId(table: TableName): number;
}

/** Creates an empty store; every table's id sequence starts at 1. */
export function createSimulatorStore(): SimulatorStore {
  const sequences = new Map<TableName, number>();
  return {
    settings: {
      version: NEWEST_CHATWOOT_VERSION,
      features: featuresOf(NEWEST_CHATWOOT_VERSION),
      webhookSigning: featuresOf(NEWEST_CHATWOOT_VERSION).inboxSecret ? "secret" : "off",
    },
    accounts: new Map(),
    users: new Map(),
    accountUsers: [],
    accessTokens: new Map(),
    apiChannels: new Map(),
    inboxes: new Map(),
    contacts: new Map(),
    contactInboxes: new Map(),
    conversations: new Map(),
    messages: new GroupedTable((message: MessageRecord) => message.conversationId),
    attachments: new GroupedTable((attachment: AttachmentRecord) => attachment.messageId),
    nextId(table) {
      const id = (sequences.get(table) ?? 0) + 1;
      sequences.set(table, id);
      return id;
    },
  };
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/**
 * A token like Rails' `has_secure_token`: 24 random base58 characters. A secret (access and pubsub tokens, inbox
 * secrets) is registered, so that a test file fails when it shows up in a log line or an answer (`secrets.ts`);
 * pass `false` for a token that is no secret (an inbox identifier).
 */
export function generateSecureToken(secret = true): string {
  let token = "";
  for (let i = 0; i < 24; i++) token += BASE58[randomInt(BASE58.length)];
  if (secret) registerSecret(token, "a Chatwoot token or secret minted by the simulator");
  return token;
}

export function findAccountUser(
  store: SimulatorStore,
  accountId: number,
  userId: number,
): AccountUserRecord | undefined {
  return store.accountUsers.find((au) => au.accountId === accountId && au.userId === userId);
}

/** The user's account memberships in creation order (`user.account_users`). */
export function accountUsersOf(store: SimulatorStore, userId: number): AccountUserRecord[] {
  return store.accountUsers.filter((au) => au.userId === userId);
}

/** `User#active_account_user`: the membership with the latest `active_at`. */
export function activeAccountUser(store: SimulatorStore, userId: number): AccountUserRecord | undefined {
  let active: AccountUserRecord | undefined;
  for (const au of accountUsersOf(store, userId)) {
    const newer =
      !active ||
      au.activeAt.getTime() > active.activeAt.getTime() ||
      (au.activeAt.getTime() === active.activeAt.getTime() && au.seq > active.seq);
    if (newer) active = au;
  }
  return active;
}

/**
 * `User#assigned_inboxes` within one account: administrators see every inbox of the account,
 * agents only those they are members of.
 */
export function assignedInboxes(store: SimulatorStore, accountUser: AccountUserRecord): InboxRecord[] {
  const inboxes = [...store.inboxes.values()].filter((inbox) => inbox.accountId === accountUser.accountId);
  if (accountUser.role === "administrator") return inboxes;
  return inboxes.filter((inbox) => inbox.memberUserIds.has(accountUser.userId));
}

/** Chatwoot's default schedule for a new inbox (`OutOfOffisable#create_default_working_hours`). */
export function defaultWorkingHours(): WorkingHourRecord[] {
  return Array.from({ length: 7 }, (_, day) => {
    const weekend = day === 0 || day === 6;
    return {
      dayOfWeek: day,
      closedAllDay: weekend,
      openHour: weekend ? null : 9,
      openMinutes: weekend ? null : 0,
      closeHour: weekend ? null : 17,
      closeMinutes: weekend ? null : 0,
      openAllDay: false,
    };
  });
}

/** Whether the user may see the inbox (`assigned_inboxes`), by role in the inbox's account. */
export function canSeeInbox(store: SimulatorStore, userId: number, inbox: InboxRecord): boolean {
  const accountUser = findAccountUser(store, inbox.accountId, userId);
  if (!accountUser) return false;
  return accountUser.role === "administrator" || inbox.memberUserIds.has(userId);
}

/** `account.administrators` (users with the administrator role in the account). */
export function administratorsOf(store: SimulatorStore, accountId: number): UserRecord[] {
  return store.accountUsers
    .filter((au) => au.accountId === accountId && au.role === "administrator")
    .map((au) => store.users.get(au.userId))
    .filter((user): user is UserRecord => user !== undefined);
}

/** A conversation by account and display id. */
export function findConversation(
  store: SimulatorStore,
  accountId: number,
  displayId: number,
): ConversationRecord | undefined {
  for (const conversation of store.conversations.values()) {
    if (conversation.accountId === accountId && conversation.displayId === displayId) return conversation;
  }
  return undefined;
}

/** The conversation's messages in creation order (`default_scope { order(created_at: :asc) }`). */
export function messagesOf(store: SimulatorStore, conversationId: number): MessageRecord[] {
  return store.messages.group(conversationId);
}

/** The message's attachments in creation order. */
export function attachmentsOf(store: SimulatorStore, messageId: number): AttachmentRecord[] {
  return store.attachments.group(messageId);
}

/** The contact's contact_inboxes in creation order. */
export function contactInboxesOf(store: SimulatorStore, contactId: number): ContactInboxRecord[] {
  return [...store.contactInboxes.values()].filter((ci) => ci.contactId === contactId);
}

/** The signing mode in force for an API channel. */
export function webhookSigningOf(store: SimulatorStore, channel: ApiChannelRecord): WebhookSigning {
  return channel.webhookSigning ?? store.settings.webhookSigning;
}
