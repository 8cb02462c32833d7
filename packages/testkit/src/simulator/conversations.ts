/**
 * Conversations as Chatwoot 4.10 handles them: `ConversationsController#create` with
 * `ContactInboxBuilder` and `ConversationBuilder` (`lock_to_single_conversation`),
 * `ConversationFinder` (index), `toggle_status` (with an agent's self-assignment) and
 * `ConversationPolicy#show?`.
 */
import { randomUUID } from "node:crypto";
import { prepareContactInbox, RecordNotUnique, saveContactInbox } from "./contacts.js";
import {
  ChatwootHttpError,
  notAuthorized,
  railsPublicException,
  recordInvalid,
  recordNotFound,
} from "./errors.js";
import {
  commitMessage,
  createActivityMessage,
  MessageBuildError,
  type PreparedMessage,
  prepareMessage,
  type StatusChange,
  setStatus,
  statusChangedEvent,
} from "./messages.js";
import { castInteger, castString, isBlank, isPlainObject, type Params, rubyToI } from "./rails-params.js";
import type { SimulatorRuntime } from "./runtime.js";
import {
  type AccountRecord,
  type AccountUserRecord,
  assignedInboxes,
  CONVERSATION_STATUSES,
  type ConversationRecord,
  type ConversationStatus,
  canSeeInbox,
  findConversation,
  type UserRecord,
} from "./store.js";

type Scalar = string | number | boolean | null;

/** `CONVERSATION_RESULTS_PER_PAGE`. */
const PER_PAGE = 25;

/** `enum status` cast: names and integers; anything else raises ArgumentError (a 500 in Chatwoot). */
function castStatus(raw: unknown): ConversationStatus {
  if (typeof raw === "number" && CONVERSATION_STATUSES[raw]) return CONVERSATION_STATUSES[raw];
  if (typeof raw === "string" && (CONVERSATION_STATUSES as readonly string[]).includes(raw)) {
    return raw as ConversationStatus;
  }
  throw railsPublicException(500);
}

/** ActiveRecord's datetime cast of a string (`snoozed_until` on create); unparsable → nil. */
function castDateTime(raw: unknown): Date | null {
  if (typeof raw !== "string" || raw.trim() === "") return null;
  const date = new Date(raw);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** The account context of a request or a dashboard action. */
export interface Actor {
  account: AccountRecord;
  accountUser: AccountUserRecord;
  user: UserRecord;
}

/**
 * `find_by!(display_id:)` then `authorize :show?` (administrator or inbox member): 404, then 401.
 */
export function fetchConversation(
  rt: SimulatorRuntime,
  { account, accountUser }: Pick<Actor, "account" | "accountUser">,
  rawDisplayId: unknown,
): ConversationRecord {
  const conversation = findConversation(rt.store, account.id, rubyToI(rawDisplayId));
  if (!conversation) throw recordNotFound();
  const inbox = rt.store.inboxes.get(conversation.inboxId);
  if (!inbox || !canSeeInbox(rt.store, accountUser.userId, inbox)) throw notAuthorized();
  return conversation;
}

/** Maps a failure of the optional initial message to conversations#create's answer. */
function initialMessageError(error: MessageBuildError): ChatwootHttpError {
  // The controller does not rescue: validation is RecordInvalid (422), anything else a 500.
  return error.kind === "invalid" ? recordInvalid(error.errors) : railsPublicException(500);
}

/**
 * `ConversationsController#create`. Returns the conversation and whether it is new (with
 * `lock_to_single_conversation` the contact inbox's last conversation is returned instead).
 */
export function createConversation(rt: SimulatorRuntime, actor: Actor, params: Params) {
  const { store } = rt;
  const { account, user } = actor;
  let inbox: ReturnType<typeof store.inboxes.get>;
  if (!isBlank(params["inbox_id"])) {
    inbox = store.inboxes.get(rubyToI(params["inbox_id"]));
    if (!inbox || inbox.accountId !== account.id) throw recordNotFound();
    if (!canSeeInbox(store, user.id, inbox)) throw notAuthorized();
  }
  let contact: ReturnType<typeof store.contacts.get>;
  if (!isBlank(params["contact_id"])) {
    contact = store.contacts.get(rubyToI(params["contact_id"]));
    if (!contact || contact.accountId !== account.id) throw recordNotFound();
  }
  let prepared: ReturnType<typeof prepareContactInbox> = null;
  if (inbox && contact) {
    try {
      prepared = prepareContactInbox(store, contact, inbox, params["source_id"]);
    } catch (error) {
      if (error instanceof RecordNotUnique) {
        throw new ChatwootHttpError(422, { error: "source_id should be unique" });
      }
      throw error;
    }
  }
  if (!prepared) {
    // Fallback lookup by source_id alone (any account), then `authorize inbox, :show?`.
    const sourceId = isBlank(params["source_id"]) ? null : castString(params["source_id"] as Scalar);
    const found = [...store.contactInboxes.values()].find((ci) => ci.sourceId === sourceId);
    if (!found) throw recordNotFound();
    const foundInbox = store.inboxes.get(found.inboxId);
    if (!foundInbox || foundInbox.accountId !== account.id || !canSeeInbox(store, user.id, foundInbox)) {
      throw notAuthorized();
    }
    prepared = { record: found, isNew: false };
  }
  // The contact inbox is built in a before_action, outside create's transaction: it stays when the conversation or
  // its first message fails.
  if (prepared.isNew) saveContactInbox(store, prepared);
  const contactInbox = prepared.record;
  const conversationInbox = store.inboxes.get(contactInbox.inboxId);
  const status = isBlank(params["status"]) ? null : castStatus(params["status"]);

  const existing = conversationInbox?.lockToSingleConversation
    ? [...store.conversations.values()].filter((c) => c.contactInboxId === contactInbox.id).at(-1)
    : undefined;
  const rawMessage = params["message"];
  // `Messages::MessageBuilder.new(user, conversation, params[:message]) if params[:message].present?`: a present
  // value that is not a hash fails in the builder (`"text"[:private]` is a TypeError), a 500.
  if (!isBlank(rawMessage) && !isPlainObject(rawMessage)) throw railsPublicException(500);
  const messageParams = isPlainObject(rawMessage) && !isBlank(rawMessage) ? rawMessage : null;

  const now = rt.now();
  const conversation: ConversationRecord = existing ?? {
    id: 0,
    accountId: account.id,
    displayId: 0,
    inboxId: contactInbox.inboxId,
    contactId: contactInbox.contactId,
    contactInboxId: contactInbox.id,
    uuid: randomUUID(),
    // `determine_conversation_status`: a blocked contact's conversation starts resolved.
    status: store.contacts.get(contactInbox.contactId)?.blocked ? "resolved" : (status ?? "open"),
    assigneeId: isBlank(params["assignee_id"]) ? null : castInteger(params["assignee_id"] as Scalar),
    teamId: null,
    additionalAttributes: isPlainObject(params["additional_attributes"])
      ? structuredClone(params["additional_attributes"])
      : {},
    customAttributes: isPlainObject(params["custom_attributes"])
      ? structuredClone(params["custom_attributes"])
      : {},
    snoozedUntil: null,
    agentLastSeenAt: null,
    assigneeLastSeenAt: null,
    contactLastSeenAt: null,
    firstReplyCreatedAt: null,
    waitingSince: now,
    lastActivityAt: now,
    createdAt: now,
    updatedAt: now,
  };
  if (!existing && conversation.status === "snoozed")
    conversation.snoozedUntil = castDateTime(params["snoozed_until"]);

  let message: PreparedMessage | null = null;
  if (messageParams) {
    try {
      message = prepareMessage(rt, conversation, user, messageParams);
    } catch (error) {
      if (error instanceof MessageBuildError) throw initialMessageError(error);
      throw error;
    }
  }

  conversation.contactInboxId = contactInbox.id;
  if (!existing) {
    conversation.id = store.nextId("conversations");
    account.lastConversationDisplayId += 1;
    conversation.displayId = account.lastConversationDisplayId;
    store.conversations.set(conversation.id, conversation);
    rt.emit({ name: "conversation.created", conversation, performer: user });
  }
  if (message) commitMessage(rt, conversation, message);
  return { conversation, created: !existing };
}

/**
 * `ConversationFinder` for the index: visible inboxes (optionally one), `status` (default open,
 * `all` for any), `source_id` (joins contact inboxes), counts, then `assignee_type`; sorted by
 * last activity; `updated_within` (seconds) returns every match, otherwise 25 per page.
 */
export function findConversations(rt: SimulatorRuntime, actor: Actor, params: Params) {
  const { store } = rt;
  const { account, accountUser, user } = actor;
  let inboxIds = assignedInboxes(store, accountUser).map((inbox) => inbox.id);
  if (params["inbox_id"] !== undefined)
    inboxIds = inboxIds.filter((id) => id === rubyToI(params["inbox_id"]));
  let conversations = [...store.conversations.values()].filter(
    (c) => c.accountId === account.id && inboxIds.includes(c.inboxId),
  );
  const status = params["status"];
  if (status !== "all") {
    const wanted = status === undefined || status === null ? "open" : String(status);
    conversations = conversations.filter((c) => c.status === wanted);
  }
  if (params["source_id"] !== undefined) {
    const sourceId = String(params["source_id"]);
    conversations = conversations.filter(
      (c) => store.contactInboxes.get(c.contactInboxId)?.sourceId === sourceId,
    );
  }
  const counts = {
    mine_count: conversations.filter((c) => c.assigneeId === user.id).length,
    assigned_count: conversations.filter((c) => c.assigneeId !== null).length,
    unassigned_count: conversations.filter((c) => c.assigneeId === null).length,
    all_count: conversations.length,
  };
  switch (params["assignee_type"]) {
    case "me":
      conversations = conversations.filter((c) => c.assigneeId === user.id);
      break;
    case "unassigned":
      conversations = conversations.filter((c) => c.assigneeId === null);
      break;
    case "assigned":
      conversations = conversations.filter((c) => c.assigneeId !== null);
      break;
  }
  conversations.sort((a, b) => b.lastActivityAt.getTime() - a.lastActivityAt.getTime() || b.id - a.id);
  if (!isBlank(params["updated_within"])) {
    const since = rt.now().getTime() - rubyToI(params["updated_within"]) * 1000;
    return { conversations: conversations.filter((c) => c.updatedAt.getTime() > since), counts };
  }
  const page = Math.max(1, rubyToI(params["page"] ?? 1));
  return { conversations: conversations.slice((page - 1) * PER_PAGE, page * PER_PAGE), counts };
}

/**
 * `ConversationsController#toggle_status`: `status` sets it (with `snoozed_until`, unix seconds);
 * without it open ↔ resolved and pending/snoozed → open. A plain agent ends up assigned when the
 * result is open. Dispatches `conversation.status_changed` and writes the activity messages.
 */
export function toggleStatus(
  rt: SimulatorRuntime,
  conversation: ConversationRecord,
  actor: { user: UserRecord | null; role: AccountUserRecord["role"] | null },
  params: Params,
) {
  const { user, role } = actor;
  let change: StatusChange | null;
  if (!isBlank(params["status"])) {
    const status = castStatus(params["status"]);
    let snoozedUntil: Date | undefined;
    if (params["snoozed_until"] !== undefined && params["snoozed_until"] !== null) {
      const seconds = String(params["snoozed_until"]);
      if (!/^\s*-?\d+/.test(seconds)) throw railsPublicException(500); // DateTime.strptime raises
      snoozedUntil = new Date(rubyToI(seconds) * 1000);
    }
    change = setStatus(rt, conversation, status, user, { snoozedUntil });
  } else {
    change = setStatus(rt, conversation, conversation.status === "open" ? "resolved" : "open", user);
  }
  let selfAssigned = false;
  if (conversation.status === "open" && user && role === "agent" && conversation.assigneeId !== user.id) {
    conversation.assigneeId = user.id;
    conversation.updatedAt = rt.now();
    selfAssigned = true;
  }
  if (change) rt.emit(statusChangedEvent(change));
  if (change?.activity) createActivityMessage(rt, conversation, change.activity);
  if (selfAssigned && user)
    createActivityMessage(rt, conversation, `${user.name} self-assigned this conversation`);
  return {
    meta: {},
    payload: {
      success: true,
      conversation_id: conversation.displayId,
      current_status: conversation.status,
      snoozed_until: conversation.snoozedUntil ? conversation.snoozedUntil.toISOString() : null,
    },
  };
}
