/**
 * Messages as Chatwoot 4.10 creates and changes them: `Messages::MessageBuilder`, the `Message`
 * callbacks (flood guard, `in_reply_to` resolution, Liquid, reopening, first reply and
 * `waiting_since`, template hooks), template messages, `Messages::StatusUpdateService`, deletion
 * and retry, and `MessageFinder`.
 *
 * Everything that can fail is checked before anything is stored, so a failed request leaves no
 * trace (Chatwoot runs these in a transaction). Events are dispatched after the changes.
 */
import { randomBytes } from "node:crypto";
import { ChatwootHttpError } from "./errors.js";
import { type LiquidDrops, renderLiquid, rubyCapitalize } from "./liquid.js";
import {
  castBoolean,
  castString,
  isBlank,
  isPlainObject,
  type Params,
  rubyToI,
  UploadedFile,
} from "./rails-params.js";
import type { DomainEvent, SimulatorRuntime } from "./runtime.js";
import {
  type AttachmentFileType,
  type AttachmentRecord,
  attachmentsOf,
  CONTENT_TYPES,
  type ConversationRecord,
  type ConversationStatus,
  MESSAGE_STATUSES,
  MESSAGE_TYPES,
  type MessageRecord,
  type MessageStatus,
  type MessageType,
  messagesOf,
  type UserRecord,
} from "./store.js";
import { executeTemplateHooks } from "./templates.js";

type Scalar = string | number | boolean | null;

/** `I18n.t('conversations.messages.deleted')`. */
export const DELETED_MESSAGE_CONTENT = "This message was deleted";
const CONTENT_LIMIT = 150_000;

/**
 * Why a message could not be built. `invalid` is an `ActiveRecord::RecordInvalid` (validation),
 * `argument` an `ArgumentError` (invalid enum value), `error` any other exception.
 */
export class MessageBuildError extends Error {
  constructor(
    readonly kind: "invalid" | "argument" | "error",
    message: string,
    /** For `invalid`: the failing attributes and their full messages. */
    readonly errors: Array<{ attribute: string; fullMessage: string }> = [],
  ) {
    super(message);
    this.name = "MessageBuildError";
  }
}

/** `FileTypeHelper#file_type`: the attachment type from the uploaded part's content type. */
export function fileTypeOf(contentType: string): AttachmentFileType {
  if (["image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp"].includes(contentType))
    return "image";
  if (["video/ogg", "video/mp4", "video/webm", "video/quicktime"].includes(contentType)) return "video";
  if (contentType.includes("audio/")) return "audio";
  return "file";
}

/** `Message.message_types` cast: names and their integers; anything else is an ArgumentError. */
function castMessageType(raw: unknown): MessageType {
  if (typeof raw === "number" && MESSAGE_TYPES[raw]) return MESSAGE_TYPES[raw];
  if (typeof raw === "string" && (MESSAGE_TYPES as readonly string[]).includes(raw))
    return raw as MessageType;
  if (raw === "" || raw === false) {
    throw new MessageBuildError(
      "error",
      'PG::NotNullViolation: ERROR:  null value in column "message_type" of relation "messages" violates not-null constraint',
    );
  }
  throw new MessageBuildError("argument", `'${String(raw)}' is not a valid message_type`);
}

function castContentType(raw: unknown): string {
  if (raw === undefined || raw === null || raw === "") return "text";
  if (typeof raw === "number" && CONTENT_TYPES[raw]) return CONTENT_TYPES[raw];
  if (typeof raw === "string" && (CONTENT_TYPES as readonly string[]).includes(raw)) return raw;
  throw new MessageBuildError("argument", `'${String(raw)}' is not a valid content_type`);
}

/** `MessageBuilder#content_attributes`: a hash, or a JSON string holding one; anything else is {}. */
function parseContentAttributes(raw: unknown): Record<string, unknown> {
  if (isPlainObject(raw)) return structuredClone(raw);
  if (typeof raw === "string") {
    try {
      const parsed: unknown = JSON.parse(raw);
      return isPlainObject(parsed) ? parsed : {};
    } catch {
      return {};
    }
  }
  return {};
}

/** The flood guard (`prevent_message_flooding`) and the content length validation. */
function validationErrors(rt: SimulatorRuntime, conversation: ConversationRecord, content: string | null) {
  const errors: Array<{ attribute: string; fullMessage: string }> = [];
  const since = rt.now().getTime() - 60_000;
  const recent = messagesOf(rt.store, conversation.id).filter((m) => m.createdAt.getTime() >= since);
  if (recent.length >= rt.messageFloodLimit)
    errors.push({ attribute: "base", fullMessage: "Too many messages" });
  if ((content?.length ?? 0) > CONTENT_LIMIT) {
    errors.push({
      attribute: "content",
      fullMessage: `Content is too long (maximum is ${CONTENT_LIMIT} characters)`,
    });
  }
  return errors;
}

function assertValid(rt: SimulatorRuntime, conversation: ConversationRecord, content: string | null) {
  const errors = validationErrors(rt, conversation, content);
  if (errors.length > 0) {
    const text = errors.map((e) => e.fullMessage).join(", ");
    throw new MessageBuildError("invalid", `Validation failed: ${text}`, errors);
  }
}

/**
 * `Messages::InReplyToMessageBuilder`: resolves `in_reply_to` (a message id) or, failing that,
 * `in_reply_to_external_id` (a `source_id`) within the conversation and sets both; both become null
 * when no message matches.
 */
function resolveInReplyTo(rt: SimulatorRuntime, message: MessageRecord) {
  const attributes = message.contentAttributes;
  const inReplyTo = attributes["in_reply_to"];
  const external = attributes["in_reply_to_external_id"];
  if (isBlank(inReplyTo) && isBlank(external)) return;
  const candidates = messagesOf(rt.store, message.conversationId);
  const target = !isBlank(inReplyTo)
    ? candidates.find((m) => m.id === Number(inReplyTo))
    : candidates.find((m) => m.sourceId !== null && m.sourceId === castString(external as Scalar));
  attributes["in_reply_to_external_id"] = target?.sourceId ?? null;
  attributes["in_reply_to"] = target?.id ?? null;
}

/** The Liquid drops of `Liquidable#message_drops`. */
function liquidDrops(
  rt: SimulatorRuntime,
  conversation: ConversationRecord,
  user: UserRecord | null,
): LiquidDrops {
  const contact = rt.store.contacts.get(conversation.contactId);
  const inbox = rt.store.inboxes.get(conversation.inboxId);
  const account = rt.store.accounts.get(conversation.accountId);
  const words = (name: string | null | undefined) => (name ?? "").split(/\s+/).filter(Boolean);
  const contactWords = words(contact?.name);
  const userWords = words(user?.name);
  return {
    contact: {
      id: contact?.id,
      name: contact?.name ? rubyCapitalize(contact.name) : contact?.name,
      email: contact?.email,
      phone_number: contact?.phoneNumber,
      identifier: contact?.identifier,
      first_name: contactWords[0] ? rubyCapitalize(contactWords[0]) : undefined,
      last_name: contactWords.length > 1 ? rubyCapitalize(contactWords.at(-1) ?? "") : undefined,
    },
    agent: {
      id: user?.id,
      name: user?.name ? rubyCapitalize(user.name) : undefined,
      available_name: user ? (user.displayName?.trim() ? user.displayName : user.name) : undefined,
      email: user?.email,
      first_name: userWords[0] ? rubyCapitalize(userWords[0]) : undefined,
      last_name: userWords.length > 1 ? rubyCapitalize(userWords.at(-1) ?? "") : undefined,
    },
    conversation: { id: conversation.displayId, display_id: conversation.displayId },
    inbox: { id: inbox?.id, name: inbox?.name ? rubyCapitalize(inbox.name) : undefined },
    account: { id: account?.id, name: account?.name ? rubyCapitalize(account.name) : undefined },
  };
}

/** A message ready to be stored, produced by `prepareMessage` once every check has passed. */
export interface PreparedMessage {
  readonly record: Omit<MessageRecord, "id" | "conversationId" | "createdAt" | "updatedAt">;
  readonly files: UploadedFile[];
  readonly echoId: string | null;
  readonly user: UserRecord | null;
}

/**
 * `MessageBuilder.new(user, conversation, params)` up to (not including) `save!`: casts and checks
 * the params. `conversation` may not be stored yet (conversations#create with a `message`).
 */
export function prepareMessage(
  rt: SimulatorRuntime,
  conversation: ConversationRecord,
  user: UserRecord | null,
  params: Params,
): PreparedMessage {
  const inbox = rt.store.inboxes.get(conversation.inboxId);
  const rawType = params["message_type"];
  const messageType = rawType === undefined || rawType === null ? "outgoing" : castMessageType(rawType);
  if (messageType === "incoming" && inbox?.channelType !== "Channel::Api") {
    throw new MessageBuildError("error", "Incoming messages are only allowed in Api inboxes");
  }
  const contentAttributes = parseContentAttributes(params["content_attributes"]);
  if (!isBlank(params["external_created_at"])) {
    contentAttributes["external_created_at"] = params["external_created_at"];
  }
  const attachments = params["attachments"];
  const files: UploadedFile[] = [];
  if (attachments !== undefined && attachments !== null && attachments !== "") {
    if (!Array.isArray(attachments)) {
      const type = attachments instanceof UploadedFile ? "ActionDispatch::Http::UploadedFile" : "String";
      throw new MessageBuildError("error", `undefined method 'each' for an instance of ${type}`);
    }
    for (const item of attachments) {
      // Strings would be signed ids of direct uploads, which the simulator does not have.
      if (!(item instanceof UploadedFile)) {
        throw new MessageBuildError("error", "undefined method 'content_type' for nil");
      }
      files.push(item);
    }
  }
  const rawContent = params["content"];
  // Hashes and arrays are not permitted scalars; the column gets nil.
  let content =
    rawContent === undefined || (typeof rawContent === "object" && rawContent !== null)
      ? null
      : castString(rawContent as Scalar);
  const contentType = castContentType(params["content_type"]);
  assertValid(rt, conversation, content);
  // Liquidable#process_liquid_in_content (before_create).
  if (content && (messageType === "outgoing" || messageType === "template")) {
    content = renderLiquid(content, liquidDrops(rt, conversation, user));
  }
  const sender = messageType === "outgoing" ? user : null;
  const rawSource = params["source_id"];
  const rawEcho = params["echo_id"];
  return {
    record: {
      accountId: conversation.accountId,
      inboxId: conversation.inboxId,
      content,
      messageType,
      contentType,
      status: "sent",
      private: castBoolean((params["private"] ?? false) as Scalar) ?? false,
      sourceId: rawSource === undefined || isPlainObject(rawSource) ? null : castString(rawSource as Scalar),
      contentAttributes,
      senderType: messageType === "outgoing" ? (sender ? "User" : null) : "Contact",
      senderId: messageType === "outgoing" ? (sender?.id ?? null) : conversation.contactId,
      additionalAttributes: {},
      processedMessageContent: content === null ? null : content.slice(0, CONTENT_LIMIT),
    },
    files,
    echoId: rawEcho === undefined || rawEcho === null || rawEcho === "" ? null : String(rawEcho),
    user,
  };
}

/** Records a status change made by `user` (or by the system) and queues its activity message. */
export interface StatusChange {
  conversation: ConversationRecord;
  previousStatus: ConversationStatus;
  performer: UserRecord | null;
  /** The activity message text, if Chatwoot writes one. */
  activity: string | null;
}

/**
 * Stores a prepared message and runs the `after_create_commit` callbacks in Chatwoot's order:
 * reopen (incoming into a resolved or snoozed conversation), last activity, `message.created`,
 * first reply / `waiting_since`, the contact's last activity; then the activity message of a reopen.
 */
export function commitMessage(
  rt: SimulatorRuntime,
  conversation: ConversationRecord,
  prepared: PreparedMessage,
): MessageRecord {
  const { store } = rt;
  const now = rt.now();
  const message: MessageRecord = {
    ...prepared.record,
    id: store.nextId("messages"),
    conversationId: conversation.id,
    createdAt: now,
    updatedAt: now,
  };
  resolveInReplyTo(rt, message);
  store.messages.set(message.id, message);
  for (const file of prepared.files) storeAttachment(rt, message, file);
  conversation.updatedAt = now;

  const events: DomainEvent[] = [];
  const changes: StatusChange[] = [];
  const performer = prepared.user;
  if (
    message.messageType === "incoming" &&
    (conversation.status === "resolved" || conversation.status === "snoozed")
  ) {
    // `reopen_resolved_conversation`: on an API inbox a contact's message reopens "by the system".
    const byContact = conversation.status === "resolved" && !message.private;
    const change = setStatus(rt, conversation, "open", performer, {
      activity: byContact
        ? "System reopened the conversation due to a new incoming message."
        : performer
          ? `Conversation was reopened by ${performer.name}`
          : null,
    });
    if (change) changes.push(change);
  }
  conversation.lastActivityAt = message.createdAt;
  events.push({ name: "message.created", message, performer, echoId: prepared.echoId });
  updateReplyTimes(rt, conversation, message);
  if (message.senderType === "Contact") {
    const contact = store.contacts.get(conversation.contactId);
    if (contact) contact.lastActivityAt = now;
  }
  for (const change of changes) rt.emit(statusChangedEvent(change));
  for (const event of events) rt.emit(event);
  for (const change of changes) if (change.activity) createActivityMessage(rt, conversation, change.activity);
  // `execute_message_template_hooks` (greeting, out of office), after the events of this message.
  executeTemplateHooks(rt, conversation, message);
  return message;
}

/** What `MessageTemplates::Template::*` give `conversation.messages.create!` besides the template type. */
export interface TemplateMessageInput {
  content: string | null;
  contentType?: string;
  contentAttributes?: Record<string, unknown>;
}

/**
 * `conversation.messages.create!(message_type: :template, …)` as the templates of
 * `app/services/message_templates/template/` do it: no sender, status `sent`, Liquid rendered
 * (`Liquidable` processes template messages too; the `agent` drop is empty), the flood guard and
 * the content length checked, then the `after_create_commit` callbacks of `commitMessage`. Returns
 * null when a validation failed (the greeting and out-of-office templates rescue and log it).
 */
export function createTemplateMessage(
  rt: SimulatorRuntime,
  conversation: ConversationRecord,
  input: TemplateMessageInput,
): MessageRecord | null {
  if (validationErrors(rt, conversation, input.content).length > 0) return null;
  const content = input.content
    ? renderLiquid(input.content, liquidDrops(rt, conversation, null))
    : input.content;
  return commitMessage(rt, conversation, {
    record: {
      accountId: conversation.accountId,
      inboxId: conversation.inboxId,
      content,
      messageType: "template",
      contentType: input.contentType ?? "text",
      status: "sent",
      private: false,
      sourceId: null,
      contentAttributes: input.contentAttributes ?? {},
      senderType: null,
      senderId: null,
      additionalAttributes: {},
      processedMessageContent: content === null ? null : content.slice(0, CONTENT_LIMIT),
    },
    files: [],
    echoId: null,
    user: null,
  });
}

/** `valid_first_reply?` and `update_waiting_since`. */
function updateReplyTimes(rt: SimulatorRuntime, conversation: ConversationRecord, message: MessageRecord) {
  const humanReply = message.messageType === "outgoing" && message.senderType === "User";
  if (humanReply && !message.private && conversation.firstReplyCreatedAt === null) {
    const replies = messagesOf(rt.store, conversation.id).filter(
      (m) => m.messageType === "outgoing" && m.senderType === "User" && !m.private,
    );
    if (replies.length <= 1) {
      conversation.firstReplyCreatedAt = message.createdAt;
      conversation.waitingSince = null;
      return;
    }
  }
  if (humanReply && !message.private && conversation.waitingSince !== null) conversation.waitingSince = null;
  if (message.messageType === "incoming" && conversation.waitingSince === null) {
    conversation.waitingSince = message.createdAt;
  }
}

function storeAttachment(rt: SimulatorRuntime, message: MessageRecord, file: UploadedFile): AttachmentRecord {
  const attachment: AttachmentRecord = {
    id: rt.store.nextId("attachments"),
    accountId: message.accountId,
    messageId: message.id,
    fileType: fileTypeOf(file.contentType),
    data: file.data,
    contentType: file.contentType,
    fileName: file.fileName || "blob",
    blobKey: randomBytes(18).toString("base64url"),
    createdAt: rt.now(),
  };
  rt.store.attachments.set(attachment.id, attachment);
  return attachment;
}

/** `MessageBuilder#perform` + save: prepares, then commits. */
export function createMessage(
  rt: SimulatorRuntime,
  conversation: ConversationRecord,
  user: UserRecord | null,
  params: Params,
): { message: MessageRecord; echoId: string | null } {
  const prepared = prepareMessage(rt, conversation, user, params);
  return { message: commitMessage(rt, conversation, prepared), echoId: prepared.echoId };
}

/**
 * An activity message (`Conversations::ActivityMessageJob`): `message_type` activity, no sender.
 * It is broadcast (as `message_type` 2) but never sent to webhooks. Skipped when flooded.
 */
export function createActivityMessage(
  rt: SimulatorRuntime,
  conversation: ConversationRecord,
  content: string,
) {
  if (validationErrors(rt, conversation, content).length > 0) return;
  const now = rt.now();
  const message: MessageRecord = {
    id: rt.store.nextId("messages"),
    accountId: conversation.accountId,
    inboxId: conversation.inboxId,
    conversationId: conversation.id,
    content,
    messageType: "activity",
    contentType: "text",
    status: "sent",
    private: false,
    sourceId: null,
    contentAttributes: {},
    senderType: null,
    senderId: null,
    additionalAttributes: {},
    processedMessageContent: content,
    createdAt: now,
    updatedAt: now,
  };
  rt.store.messages.set(message.id, message);
  conversation.updatedAt = now;
  conversation.lastActivityAt = now;
  rt.emit({ name: "message.created", message, performer: null, echoId: null });
}

/**
 * Sets a conversation's status as `Conversation#save` would (snooze time kept only while snoozed)
 * and returns the change, or `null` when the status did not change. The caller emits it.
 */
export function setStatus(
  rt: SimulatorRuntime,
  conversation: ConversationRecord,
  status: ConversationStatus,
  performer: UserRecord | null,
  options: { snoozedUntil?: Date | null; activity?: string | null } = {},
): StatusChange | null {
  const previousStatus = conversation.status;
  conversation.status = status;
  if (options.snoozedUntil !== undefined) conversation.snoozedUntil = options.snoozedUntil;
  if (status !== "snoozed") conversation.snoozedUntil = null;
  conversation.updatedAt = rt.now();
  if (previousStatus === status) return null;
  const activity =
    options.activity !== undefined ? options.activity : performer ? statusActivity(status, performer) : null;
  return { conversation, previousStatus, performer, activity };
}

/** `conversations.activity.status.*` for a change made by a user. */
function statusActivity(status: ConversationStatus, user: UserRecord): string {
  switch (status) {
    case "resolved":
      return `Conversation was marked resolved by ${user.name}`;
    case "open":
      return `Conversation was reopened by ${user.name}`;
    case "pending":
      return `Conversation was marked as pending by ${user.name}`;
    case "snoozed":
      return `Conversation was snoozed by ${user.name}`;
  }
}

export function statusChangedEvent(change: StatusChange): DomainEvent {
  return {
    name: "conversation.status_changed",
    conversation: change.conversation,
    performer: change.performer,
    previousStatus: change.previousStatus,
  };
}

// ---------------------------------------------------------------------------------------------
// Updates

type Snapshot = Pick<
  MessageRecord,
  "content" | "contentType" | "status" | "contentAttributes" | "processedMessageContent"
>;

function snapshot(message: MessageRecord): Snapshot {
  return {
    content: message.content,
    contentType: message.contentType,
    status: message.status,
    contentAttributes: structuredClone(message.contentAttributes),
    processedMessageContent: message.processedMessageContent,
  };
}

const COLUMN_NAMES: Record<keyof Snapshot, string> = {
  content: "content",
  contentType: "content_type",
  status: "status",
  contentAttributes: "content_attributes",
  processedMessageContent: "processed_message_content",
};

/**
 * Applies `change` to a message like `update!` and dispatches `message.updated` with
 * `previous_changes` when something changed (Chatwoot skips the event otherwise).
 */
export function updateMessage(
  rt: SimulatorRuntime,
  message: MessageRecord,
  performer: UserRecord | null,
  change: (message: MessageRecord) => void,
): boolean {
  const before = snapshot(message);
  change(message);
  const after = snapshot(message);
  const previousChanges: Record<string, [unknown, unknown]> = {};
  for (const key of Object.keys(COLUMN_NAMES) as Array<keyof Snapshot>) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) {
      previousChanges[COLUMN_NAMES[key]] = [before[key], after[key]];
    }
  }
  if (Object.keys(previousChanges).length === 0) return false;
  const previousUpdatedAt = message.updatedAt;
  message.updatedAt = rt.now();
  previousChanges["updated_at"] = [previousUpdatedAt.toISOString(), message.updatedAt.toISOString()];
  const conversation = rt.store.conversations.get(message.conversationId);
  if (conversation) conversation.updatedAt = message.updatedAt;
  rt.emit({ name: "message.updated", message, performer, previousChanges });
  return true;
}

/**
 * `Messages::StatusUpdateService`: unknown statuses and read → delivered are ignored;
 * `external_error` is kept only with `failed` (otherwise cleared when present).
 */
export function updateMessageStatus(
  rt: SimulatorRuntime,
  message: MessageRecord,
  status: unknown,
  externalError: unknown,
  performer: UserRecord | null,
): boolean {
  if (typeof status !== "string" || !(MESSAGE_STATUSES as readonly string[]).includes(status)) return false;
  if (message.status === "read" && status === "delivered") return false;
  return updateMessage(rt, message, performer, (m) => {
    m.status = status as MessageStatus;
    const value = status === "failed" ? (externalError ?? null) : null;
    // A store accessor writes only when the value differs from what it reads.
    if ((m.contentAttributes["external_error"] ?? null) !== value)
      m.contentAttributes["external_error"] = value;
  });
}

/** `MessagesController#destroy`: content replaced, `content_attributes` = `{deleted: true}`, attachments gone. */
export function deleteMessage(rt: SimulatorRuntime, message: MessageRecord, performer: UserRecord | null) {
  for (const attachment of attachmentsOf(rt.store, message.id)) rt.store.attachments.delete(attachment.id);
  updateMessage(rt, message, performer, (m) => {
    m.content = DELETED_MESSAGE_CONTENT;
    m.contentType = "text";
    m.contentAttributes = { deleted: true };
    m.processedMessageContent = DELETED_MESSAGE_CONTENT;
  });
}

/**
 * `MessagesController#retry` (the dashboard's retry button): status back to `sent`, then
 * `content_attributes` cleared, each save dispatching `message.updated`.
 */
export function retryMessage(rt: SimulatorRuntime, message: MessageRecord, performer: UserRecord | null) {
  updateMessageStatus(rt, message, "sent", null, performer);
  updateMessage(rt, message, performer, (m) => {
    m.contentAttributes = {};
  });
}

/**
 * `MessageFinder`: the latest 20; `after` → the next 100 ascending; `before` → the 20 before.
 * `filter_internal_messages` (any value) hides private notes and activity messages.
 */
export function findMessages(rt: SimulatorRuntime, conversation: ConversationRecord, params: Params) {
  let messages = messagesOf(rt.store, conversation.id);
  if (params["filter_internal_messages"]) {
    messages = messages.filter((m) => !m.private && m.messageType !== "activity");
  }
  const after = params["after"];
  const before = params["before"];
  if (!isBlank(after)) return messages.filter((m) => m.id > rubyToI(after)).slice(0, 100);
  if (!isBlank(before)) return messages.filter((m) => m.id < rubyToI(before)).slice(-20);
  return messages.slice(-20);
}

/** Maps a `MessageBuildError` to messages#create's answer: any StandardError is 422 `{"error": …}`. */
export function messagesCreateError(error: MessageBuildError): ChatwootHttpError {
  return new ChatwootHttpError(422, { error: error.message });
}
