/**
 * Chatwoot's JSON for contacts, conversations, messages and attachments at 4.10, in its three
 * flavours: the REST jbuilder partials (`_contact`, `_conversation`, `_message`), the ActionCable
 * `push_event_data` (numeric `message_type`, `conversation_id` = display id) and the webhook
 * `webhook_data` (string `message_type`). Times follow Rails: `to_i` where the view says so,
 * otherwise ISO 8601 with milliseconds.
 */
import type { SimulatorRuntime } from "./runtime.js";
import {
  type AttachmentRecord,
  attachmentsOf,
  type ContactInboxRecord,
  type ContactRecord,
  type ConversationRecord,
  contactInboxesOf,
  findAccountUser,
  type InboxRecord,
  MESSAGE_TYPES,
  type MessageRecord,
  messagesOf,
  type SimulatorStore,
  type UserRecord,
} from "./store.js";
import { contentWithSurveyLink } from "./templates.js";

type Json = Record<string, unknown>;

const toI = (date: Date) => Math.floor(date.getTime() / 1000);
const toF = (date: Date) => date.getTime() / 1000;
const iso = (date: Date | null) => (date ? date.toISOString() : null);

// ---------------------------------------------------------------------------------------------
// Inboxes (as embedded in contact JSON)

/** `_inbox_slim.json.jbuilder`. */
export function renderInboxSlim(inbox: InboxRecord): Json {
  return {
    id: inbox.id,
    avatar_url: "",
    channel_id: inbox.channelId,
    name: inbox.name,
    channel_type: inbox.channelType,
    provider: null,
  };
}

/** `Inbox#as_json`: the raw columns, as contacts#create renders `contact_inbox.inbox`. */
export function renderInboxModel(inbox: InboxRecord): Json {
  return {
    id: inbox.id,
    channel_id: inbox.channelId,
    account_id: inbox.accountId,
    name: inbox.name,
    created_at: iso(inbox.createdAt),
    updated_at: iso(inbox.updatedAt),
    channel_type: inbox.channelType,
    enable_auto_assignment: inbox.enableAutoAssignment,
    greeting_enabled: inbox.greetingEnabled,
    greeting_message: inbox.greetingMessage,
    email_address: null,
    working_hours_enabled: inbox.workingHoursEnabled,
    out_of_office_message: inbox.outOfOfficeMessage,
    timezone: inbox.timezone,
    enable_email_collect: inbox.enableEmailCollect,
    csat_survey_enabled: inbox.csatSurveyEnabled,
    allow_messages_after_resolved: inbox.allowMessagesAfterResolved,
    auto_assignment_config: inbox.autoAssignmentConfig,
    lock_to_single_conversation: inbox.lockToSingleConversation,
    portal_id: null,
    sender_name_type: inbox.senderNameType,
    business_name: inbox.businessName,
    csat_config: inbox.csatConfig,
  };
}

// ---------------------------------------------------------------------------------------------
// Contacts

/** `_contact_inbox.json.jbuilder`: `{source_id, inbox: slim inbox}`. */
export function renderContactInbox(store: SimulatorStore, contactInbox: ContactInboxRecord): Json {
  const inbox = store.inboxes.get(contactInbox.inboxId);
  return { source_id: contactInbox.sourceId, inbox: inbox ? renderInboxSlim(inbox) : null };
}

/** `ContactInbox#as_json` (raw columns), as in conversation push data. */
export function renderContactInboxModel(contactInbox: ContactInboxRecord): Json {
  return {
    id: contactInbox.id,
    contact_id: contactInbox.contactId,
    inbox_id: contactInbox.inboxId,
    source_id: contactInbox.sourceId,
    created_at: iso(contactInbox.createdAt),
    updated_at: iso(contactInbox.updatedAt),
    hmac_verified: contactInbox.hmacVerified,
    pubsub_token: contactInbox.pubsubToken,
  };
}

/**
 * `_contact.json.jbuilder`. `last_activity_at` and `created_at` are rendered only when set;
 * `contact_inboxes` only on the /contacts endpoints (`with_contact_inboxes`).
 */
export function renderContact(
  store: SimulatorStore,
  contact: ContactRecord,
  options: { withContactInboxes?: boolean } = {},
): Json {
  return {
    additional_attributes: contact.additionalAttributes,
    availability_status: "offline",
    email: contact.email,
    id: contact.id,
    name: contact.name,
    phone_number: contact.phoneNumber,
    blocked: contact.blocked,
    identifier: contact.identifier,
    thumbnail: "",
    custom_attributes: contact.customAttributes,
    ...(contact.lastActivityAt ? { last_activity_at: toI(contact.lastActivityAt) } : {}),
    created_at: toI(contact.createdAt),
    ...(options.withContactInboxes
      ? { contact_inboxes: contactInboxesOf(store, contact.id).map((ci) => renderContactInbox(store, ci)) }
      : {}),
  };
}

/** `Contact#push_event_data` (message senders, conversation `meta.sender` on the cable). */
export function contactPushData(contact: ContactRecord): Json {
  return {
    additional_attributes: contact.additionalAttributes,
    custom_attributes: contact.customAttributes,
    email: contact.email,
    id: contact.id,
    identifier: contact.identifier,
    name: contact.name,
    phone_number: contact.phoneNumber,
    thumbnail: "",
    blocked: contact.blocked,
    type: "contact",
  };
}

/** `Contact#webhook_data` (no `type` key). */
export function contactWebhookData(store: SimulatorStore, contact: ContactRecord): Json {
  const account = store.accounts.get(contact.accountId);
  return {
    account: { id: contact.accountId, name: account?.name ?? null },
    additional_attributes: contact.additionalAttributes,
    avatar: "",
    custom_attributes: contact.customAttributes,
    email: contact.email,
    id: contact.id,
    identifier: contact.identifier,
    name: contact.name,
    phone_number: contact.phoneNumber,
    thumbnail: "",
    blocked: contact.blocked,
  };
}

// ---------------------------------------------------------------------------------------------
// Users

const availableName = (user: UserRecord) => (user.displayName?.trim() ? user.displayName : user.name);

/** `User#push_event_data`; availability is the user's in the given account. */
export function userPushData(store: SimulatorStore, user: UserRecord, accountId: number): Json {
  return {
    id: user.id,
    name: user.name,
    available_name: availableName(user),
    avatar_url: "",
    type: "user",
    availability_status: findAccountUser(store, accountId, user.id)?.availabilityStatus ?? "offline",
    thumbnail: "",
  };
}

/** `User#webhook_data`. */
export function userWebhookData(user: UserRecord): Json {
  return { id: user.id, name: user.name, email: user.email, type: "user" };
}

/** `_agent.json.jbuilder` (conversation `meta.assignee`), with the enterprise `custom_role_id`. */
export function renderAgent(store: SimulatorStore, user: UserRecord, accountId: number): Json {
  const accountUser = findAccountUser(store, accountId, user.id);
  return {
    id: user.id,
    account_id: accountId,
    availability_status: accountUser?.availabilityStatus ?? "offline",
    auto_offline: accountUser?.autoOffline ?? true,
    confirmed: true,
    email: user.email,
    provider: "email",
    available_name: availableName(user),
    ...(Object.keys(user.customAttributes).length > 0 ? { custom_attributes: user.customAttributes } : {}),
    name: user.name,
    role: accountUser?.role ?? null,
    thumbnail: "",
    custom_role_id: null,
  };
}

// ---------------------------------------------------------------------------------------------
// Attachments and messages

/** URL of an attachment's bytes as ActiveStorage renders `url_for(file)` (a redirect URL). */
export function attachmentDataUrl(rt: SimulatorRuntime, attachment: AttachmentRecord): string {
  return `${rt.baseUrl}/rails/active_storage/blobs/redirect/${attachment.blobKey}/${encodeURIComponent(attachment.fileName)}`;
}

/** `Attachment#push_event_data` for uploaded files (audio adds `transcribed_text`). */
export function attachmentPushData(rt: SimulatorRuntime, attachment: AttachmentRecord): Json {
  const dataUrl = attachmentDataUrl(rt, attachment);
  const thumbUrl =
    attachment.fileType === "image"
      ? `${rt.baseUrl}/rails/active_storage/representations/redirect/${attachment.blobKey}/resize/${encodeURIComponent(attachment.fileName)}`
      : "";
  return {
    id: attachment.id,
    message_id: attachment.messageId,
    file_type: attachment.fileType,
    account_id: attachment.accountId,
    extension: null,
    data_url: dataUrl,
    thumb_url: thumbUrl,
    file_size: attachment.data.length,
    // Filled by ActiveStorage's analyzer after upload; never analysed in the simulator.
    width: null,
    height: null,
    ...(attachment.fileType === "audio" ? { transcribed_text: "" } : {}),
  };
}

function senderOf(store: SimulatorStore, message: MessageRecord): UserRecord | ContactRecord | undefined {
  if (message.senderId === null) return undefined;
  return message.senderType === "User"
    ? store.users.get(message.senderId)
    : store.contacts.get(message.senderId);
}

function senderPushData(store: SimulatorStore, message: MessageRecord): Json | undefined {
  const sender = senderOf(store, message);
  if (!sender) return undefined;
  return message.senderType === "User"
    ? userPushData(store, sender as UserRecord, message.accountId)
    : contactPushData(sender as ContactRecord);
}

/** `conversation.unread_incoming_messages.count`: incoming since the agent last looked, at most 10. */
export function unreadCount(store: SimulatorStore, conversation: ConversationRecord): number {
  const seen = conversation.agentLastSeenAt;
  const unread = messagesOf(store, conversation.id).filter(
    (m) => m.messageType === "incoming" && (!seen || m.createdAt > seen),
  );
  return Math.min(unread.length, 10);
}

/**
 * `Message#push_event_data`: the message columns (`attributes`), with numeric `message_type`,
 * `created_at` in seconds, `conversation_id` = display id, a `conversation` summary, and
 * `echo_id`, `attachments`, `sender` when present.
 */
export function messagePushData(
  rt: SimulatorRuntime,
  message: MessageRecord,
  options: { echoId?: string | null } = {},
): Json {
  const { store } = rt;
  const conversation = store.conversations.get(message.conversationId);
  const contactInbox = conversation ? store.contactInboxes.get(conversation.contactInboxId) : undefined;
  const attachments = attachmentsOf(store, message.id);
  const sender = senderPushData(store, message);
  return {
    id: message.id,
    content: message.content,
    account_id: message.accountId,
    inbox_id: message.inboxId,
    conversation_id: conversation?.displayId ?? null,
    message_type: MESSAGE_TYPES.indexOf(message.messageType),
    created_at: toI(message.createdAt),
    updated_at: iso(message.updatedAt),
    private: message.private,
    status: message.status,
    source_id: message.sourceId,
    content_type: message.contentType,
    content_attributes: message.contentAttributes,
    sender_type: message.senderType,
    sender_id: message.senderId,
    external_source_ids: {},
    additional_attributes: message.additionalAttributes,
    processed_message_content: message.processedMessageContent,
    sentiment: {},
    conversation: conversation
      ? {
          assignee_id: conversation.assigneeId,
          unread_count: unreadCount(store, conversation),
          last_activity_at: toI(conversation.lastActivityAt),
          contact_inbox: { source_id: contactInbox?.sourceId ?? null },
        }
      : null,
    ...(options.echoId ? { echo_id: options.echoId } : {}),
    ...(attachments.length > 0 ? { attachments: attachments.map((a) => attachmentPushData(rt, a)) } : {}),
    ...(sender ? { sender } : {}),
  };
}

/** `_message.json.jbuilder` (REST answers of the messages endpoints). */
export function renderMessage(
  rt: SimulatorRuntime,
  message: MessageRecord,
  options: { echoId?: string | null } = {},
): Json {
  const { store } = rt;
  const conversation = store.conversations.get(message.conversationId);
  const attachments = attachmentsOf(store, message.id);
  const sender = senderPushData(store, message);
  return {
    id: message.id,
    content: message.content,
    inbox_id: message.inboxId,
    ...(options.echoId ? { echo_id: options.echoId } : {}),
    conversation_id: conversation?.displayId ?? null,
    message_type: MESSAGE_TYPES.indexOf(message.messageType),
    content_type: message.contentType,
    status: message.status,
    content_attributes: message.contentAttributes,
    created_at: toI(message.createdAt),
    private: message.private,
    source_id: message.sourceId,
    ...(sender ? { sender } : {}),
    ...(attachments.length > 0 ? { attachments: attachments.map((a) => attachmentPushData(rt, a)) } : {}),
  };
}

/** `Message#webhook_data` (+ `event`, added by the caller): string `message_type` and `content_type`. */
export function messageWebhookData(rt: SimulatorRuntime, message: MessageRecord): Json {
  const { store } = rt;
  const account = store.accounts.get(message.accountId);
  const inbox = store.inboxes.get(message.inboxId);
  const conversation = store.conversations.get(message.conversationId);
  const sender = senderOf(store, message);
  const attachments = attachmentsOf(store, message.id);
  return {
    account: { id: message.accountId, name: account?.name ?? null },
    additional_attributes: message.additionalAttributes,
    content_attributes: message.contentAttributes,
    content_type: message.contentType,
    // `outgoing_content` (4.10) / `webhook_content` (4.12+): a CSAT message with its survey link.
    content: contentWithSurveyLink(rt, message),
    conversation: conversation ? conversationPushData(rt, conversation) : null,
    created_at: iso(message.createdAt),
    id: message.id,
    inbox: { id: message.inboxId, name: inbox?.name ?? null },
    message_type: message.messageType,
    private: message.private,
    sender: sender
      ? message.senderType === "User"
        ? userWebhookData(sender as UserRecord)
        : contactWebhookData(store, sender as ContactRecord)
      : null,
    source_id: message.sourceId,
    ...(attachments.length > 0 ? { attachments: attachments.map((a) => attachmentPushData(rt, a)) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Conversations

/**
 * `Conversations::MessageWindowService#can_reply?` for an API inbox: without
 * `agent_reply_time_window` always; otherwise within that many hours of the last incoming message.
 */
export function canReply(rt: SimulatorRuntime, conversation: ConversationRecord): boolean {
  const inbox = rt.store.inboxes.get(conversation.inboxId);
  const channel = inbox ? rt.store.apiChannels.get(inbox.channelId) : undefined;
  const window = channel?.additionalAttributes["agent_reply_time_window"];
  if (window === undefined || window === null || window === "") return true;
  const hours = Number.parseInt(String(window), 10) || 0;
  const lastIncoming = messagesOf(rt.store, conversation.id)
    .filter((m) => m.messageType === "incoming")
    .at(-1);
  if (!lastIncoming) return false;
  return rt.now().getTime() < lastIncoming.createdAt.getTime() + hours * 3_600_000;
}

/** `Conversations::EventDataPresenter#push_data` (cable and webhook conversation payloads). */
export function conversationPushData(rt: SimulatorRuntime, conversation: ConversationRecord): Json {
  const { store } = rt;
  const inbox = store.inboxes.get(conversation.inboxId);
  const contact = store.contacts.get(conversation.contactId);
  const contactInbox = store.contactInboxes.get(conversation.contactInboxId);
  const assignee = conversation.assigneeId === null ? undefined : store.users.get(conversation.assigneeId);
  const lastChat = messagesOf(store, conversation.id)
    .filter((m) => m.messageType !== "activity" && !m.private)
    .at(-1);
  return {
    additional_attributes: conversation.additionalAttributes,
    can_reply: canReply(rt, conversation),
    channel: inbox?.channelType ?? null,
    contact_inbox: contactInbox ? renderContactInboxModel(contactInbox) : null,
    id: conversation.displayId,
    inbox_id: conversation.inboxId,
    messages: lastChat ? [messagePushData(rt, lastChat)] : [],
    labels: [],
    meta: {
      sender: contact ? contactPushData(contact) : null,
      assignee: assignee ? userPushData(store, assignee, conversation.accountId) : null,
      assignee_type: assignee ? "User" : null,
      team: null,
      hmac_verified: contactInbox?.hmacVerified ?? null,
    },
    status: conversation.status,
    custom_attributes: conversation.customAttributes,
    snoozed_until: iso(conversation.snoozedUntil),
    unread_count: unreadCount(store, conversation),
    first_reply_created_at: iso(conversation.firstReplyCreatedAt),
    priority: null,
    waiting_since: conversation.waitingSince ? toI(conversation.waitingSince) : 0,
    agent_last_seen_at: conversation.agentLastSeenAt ? toI(conversation.agentLastSeenAt) : 0,
    contact_last_seen_at: conversation.contactLastSeenAt ? toI(conversation.contactLastSeenAt) : 0,
    last_activity_at: toI(conversation.lastActivityAt),
    timestamp: toI(conversation.lastActivityAt),
    created_at: toI(conversation.createdAt),
    updated_at: toF(conversation.updatedAt),
  };
}

/** The `messages` of `_conversation.json.jbuilder`: the last one, or the last 10 unread ones. */
function conversationCardMessages(rt: SimulatorRuntime, conversation: ConversationRecord): Json[] {
  const all = messagesOf(rt.store, conversation.id);
  const last = all.at(-1);
  if (!last) return [];
  if (unreadCount(rt.store, conversation) === 0) return [messagePushData(rt, last)];
  const seen = conversation.agentLastSeenAt;
  const unread = seen ? all.filter((m) => m.createdAt > seen) : all;
  return unread.slice(-10).map((m) => messagePushData(rt, m));
}

/** `api/v1/conversations/partials/_conversation.json.jbuilder` (REST conversation JSON). */
export function renderConversation(rt: SimulatorRuntime, conversation: ConversationRecord): Json {
  const { store } = rt;
  const inbox = store.inboxes.get(conversation.inboxId);
  const contact = store.contacts.get(conversation.contactId);
  const contactInbox = store.contactInboxes.get(conversation.contactInboxId);
  const assignee = conversation.assigneeId === null ? undefined : store.users.get(conversation.assigneeId);
  const lastNonActivity = messagesOf(store, conversation.id)
    .filter((m) => m.messageType !== "activity")
    .at(-1);
  return {
    meta: {
      sender: contact ? renderContact(store, contact) : null,
      channel: inbox?.channelType ?? null,
      ...(assignee
        ? { assignee: renderAgent(store, assignee, conversation.accountId), assignee_type: "User" }
        : {}),
      hmac_verified: contactInbox?.hmacVerified ?? null,
    },
    id: conversation.displayId,
    messages: conversationCardMessages(rt, conversation),
    account_id: conversation.accountId,
    uuid: conversation.uuid,
    additional_attributes: conversation.additionalAttributes,
    agent_last_seen_at: conversation.agentLastSeenAt ? toI(conversation.agentLastSeenAt) : 0,
    assignee_last_seen_at: conversation.assigneeLastSeenAt ? toI(conversation.assigneeLastSeenAt) : 0,
    can_reply: canReply(rt, conversation),
    contact_last_seen_at: conversation.contactLastSeenAt ? toI(conversation.contactLastSeenAt) : 0,
    custom_attributes: conversation.customAttributes,
    inbox_id: conversation.inboxId,
    labels: [],
    muted: false,
    snoozed_until: iso(conversation.snoozedUntil),
    status: conversation.status,
    created_at: toI(conversation.createdAt),
    updated_at: toF(conversation.updatedAt),
    timestamp: toI(conversation.lastActivityAt),
    first_reply_created_at: conversation.firstReplyCreatedAt ? toI(conversation.firstReplyCreatedAt) : 0,
    unread_count: unreadCount(store, conversation),
    last_non_activity_message: lastNonActivity ? messagePushData(rt, lastNonActivity) : null,
    last_activity_at: toI(conversation.lastActivityAt),
    priority: null,
    waiting_since: conversation.waitingSince ? toI(conversation.waitingSince) : 0,
    sla_policy_id: null,
  };
}

/** `Contact#as_json` (raw columns), as the messages index renders `meta.contact`. */
export function renderContactModel(contact: ContactRecord): Json {
  const lead = !!contact.email || !!contact.phoneNumber || !!contact.identifier;
  return {
    id: contact.id,
    name: contact.name,
    email: contact.email,
    phone_number: contact.phoneNumber,
    account_id: contact.accountId,
    created_at: iso(contact.createdAt),
    updated_at: iso(contact.updatedAt),
    additional_attributes: contact.additionalAttributes,
    identifier: contact.identifier,
    custom_attributes: contact.customAttributes,
    last_activity_at: iso(contact.lastActivityAt),
    contact_type: lead ? "lead" : "visitor",
    middle_name: "",
    last_name: "",
    location: "",
    country_code: "",
    blocked: contact.blocked,
  };
}

/**
 * `User#as_json` as Devise serialises it (credentials and tracking columns left out), as the
 * messages index renders `meta.assignee`. Approximate: the simulator keeps fewer user columns.
 */
export function renderUserModel(user: UserRecord): Json {
  return {
    id: user.id,
    provider: "email",
    uid: user.email,
    name: user.name,
    display_name: user.displayName,
    email: user.email,
    created_at: iso(user.createdAt),
    updated_at: iso(user.createdAt),
    availability: "online",
    ui_settings: user.uiSettings,
    custom_attributes: user.customAttributes,
    type: user.type,
    message_signature: user.messageSignature,
  };
}
