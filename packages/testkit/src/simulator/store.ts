/**
 * The simulator's in-memory database. Records mirror Chatwoot's tables (camelCase columns); the
 * JSON shapes Chatwoot renders live in `views.ts`, so one record can be rendered several ways
 * (admin vs. agent, full vs. slim) exactly as the jbuilder views do.
 */
import { randomInt } from "node:crypto";

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
  createdAt: Date;
  updatedAt: Date;
}

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

/**
 * Tables whose ids come from one sequence each, like PostgreSQL serials: ids are global, not per
 * account. Later phases add contacts, contact_inboxes, conversations and messages here.
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

export interface SimulatorStore {
  readonly accounts: Map<number, AccountRecord>;
  readonly users: Map<number, UserRecord>;
  readonly accountUsers: AccountUserRecord[];
  /** `AccessToken.token` → owner. */
  readonly accessTokens: Map<string, AccessTokenRecord>;
  readonly apiChannels: Map<number, ApiChannelRecord>;
  readonly inboxes: Map<number, InboxRecord>;
  nextId(table: TableName): number;
}

/** Creates an empty store; every table's id sequence starts at 1. */
export function createSimulatorStore(): SimulatorStore {
  const sequences = new Map<TableName, number>();
  return {
    accounts: new Map(),
    users: new Map(),
    accountUsers: [],
    accessTokens: new Map(),
    apiChannels: new Map(),
    inboxes: new Map(),
    nextId(table) {
      const id = (sequences.get(table) ?? 0) + 1;
      sequences.set(table, id);
      return id;
    },
  };
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** A token like Rails' `has_secure_token`: 24 random base58 characters. */
export function generateSecureToken(): string {
  let token = "";
  for (let i = 0; i < 24; i++) token += BASE58[randomInt(BASE58.length)];
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
