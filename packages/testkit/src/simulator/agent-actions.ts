/**
 * What an agent does in Chatwoot's dashboard, for tests: reply (with attachments or a quote),
 * change a conversation's status, delete a message, press "retry". Each runs the same code as the
 * REST routes the dashboard calls, as that agent, so broadcasts and webhooks follow.
 */
import { type Actor, createConversation, toggleStatus } from "./conversations.js";
import { ChatwootHttpError } from "./errors.js";
import { createMessage, deleteMessage, MessageBuildError, retryMessage } from "./messages.js";
import { type Params, UploadedFile } from "./rails-params.js";
import type { SimulatorRuntime } from "./runtime.js";
import {
  type ConversationRecord,
  type ConversationStatus,
  canSeeInbox,
  findAccountUser,
  findConversation,
  type MessageRecord,
  type UserRecord,
} from "./store.js";
import { renderConversation, renderMessage } from "./views-messaging.js";

/** A file an agent attaches in the dashboard. */
export interface AgentAttachment {
  /** The bytes (a string is taken as UTF-8 text). */
  data: Uint8Array | string;
  /** Content type, e.g. `image/png`; decides `file_type` (image, audio, video or file). */
  mimetype: string;
  fileName: string;
}

/** Input of `sim.postAgentMessage`. */
export interface AgentMessageInput {
  accountId: number;
  /** The conversation's display id. */
  conversationId: number;
  /** The agent (or administrator) writing; must see the conversation's inbox. */
  userId: number;
  content?: string | null;
  /** A private note (still sent to the API inbox's webhook, as Chatwoot does). */
  private?: boolean;
  attachments?: AgentAttachment[];
  /** Id of the message being quoted (`content_attributes.in_reply_to`). */
  inReplyTo?: number;
  /** The dashboard's temporary id, echoed as `echo_id` in the answer and the broadcast. */
  echoId?: string;
}

const fail = (text: string): never => {
  throw new Error(`chatwoot simulator: ${text}`);
};

function requireMember(rt: SimulatorRuntime, accountId: number, userId: number) {
  const account = rt.store.accounts.get(accountId) ?? fail(`no account ${accountId}`);
  const user = rt.store.users.get(userId) ?? fail(`no user ${userId}`);
  const accountUser =
    findAccountUser(rt.store, accountId, userId) ??
    fail(`user ${userId} is not a member of account ${accountId}`);
  return { account, user, accountUser };
}

function requireConversation(rt: SimulatorRuntime, accountId: number, displayId: number, user?: UserRecord) {
  const conversation =
    findConversation(rt.store, accountId, displayId) ??
    fail(`no conversation ${displayId} in account ${accountId}`);
  const inbox = rt.store.inboxes.get(conversation.inboxId);
  if (user && inbox && !canSeeInbox(rt.store, user.id, inbox)) {
    fail(`user ${user.id} cannot see inbox ${inbox.id} (not an administrator nor an inbox member)`);
  }
  return conversation;
}

function requireMessage(
  rt: SimulatorRuntime,
  conversation: ConversationRecord,
  messageId: number,
): MessageRecord {
  const message = rt.store.messages.get(messageId);
  if (!message || message.conversationId !== conversation.id) {
    fail(`no message ${messageId} in conversation ${conversation.displayId}`);
  }
  return message as MessageRecord;
}

function optionalUser(rt: SimulatorRuntime, accountId: number, userId: number | undefined) {
  return userId === undefined ? null : requireMember(rt, accountId, userId);
}

/** An outgoing message by an agent, as `POST …/messages` from the dashboard. Returns its JSON. */
export function postAgentMessage(rt: SimulatorRuntime, input: AgentMessageInput): Record<string, unknown> {
  const { user } = requireMember(rt, input.accountId, input.userId);
  const conversation = requireConversation(rt, input.accountId, input.conversationId, user);
  const params: Params = { message_type: "outgoing", private: input.private ?? false };
  if (input.content !== undefined) params["content"] = input.content;
  if (input.inReplyTo !== undefined) params["content_attributes"] = { in_reply_to: input.inReplyTo };
  if (input.echoId !== undefined) params["echo_id"] = input.echoId;
  if (input.attachments && input.attachments.length > 0) {
    params["attachments"] = input.attachments.map(
      (a) => new UploadedFile(a.fileName, a.mimetype, Buffer.from(a.data)),
    );
  }
  try {
    const { message, echoId } = createMessage(rt, conversation, user, params);
    return renderMessage(rt, message, { echoId });
  } catch (error) {
    if (error instanceof MessageBuildError) fail(`Chatwoot would refuse this message: ${error.message}`);
    throw error;
  }
}

/**
 * `toggle_status` with an explicit status, as the dashboard's status menu. With `userId` the
 * change is that user's (activity message, `performer`, self-assignment of a plain agent on open);
 * without it, it is the system's. Returns the `toggle_status` payload.
 */
export function setConversationStatus(
  rt: SimulatorRuntime,
  accountId: number,
  displayId: number,
  status: ConversationStatus,
  options: { userId?: number; snoozedUntil?: Date } = {},
): Record<string, unknown> {
  const member = optionalUser(rt, accountId, options.userId);
  const conversation = requireConversation(rt, accountId, displayId, member?.user);
  const params: Params = { status };
  if (options.snoozedUntil) params["snoozed_until"] = Math.floor(options.snoozedUntil.getTime() / 1000);
  try {
    const actor = { user: member?.user ?? null, role: member?.accountUser.role ?? null };
    return toggleStatus(rt, conversation, actor, params).payload;
  } catch (error) {
    if (error instanceof ChatwootHttpError) fail(`Chatwoot would refuse status ${JSON.stringify(status)}`);
    throw error;
  }
}

/** Which message an agent acts on (`sim.deleteMessage`, `sim.retryMessage`). */
export interface AgentMessageRef {
  accountId: number;
  /** The conversation's display id. */
  conversationId: number;
  messageId: number;
  /** The acting user (`performer` of the broadcast); the system when omitted. */
  userId?: number;
}

/** Deletes a message as the dashboard does; returns its JSON afterwards. */
export function deleteAgentMessage(rt: SimulatorRuntime, ref: AgentMessageRef): Record<string, unknown> {
  const member = optionalUser(rt, ref.accountId, ref.userId);
  const conversation = requireConversation(rt, ref.accountId, ref.conversationId, member?.user);
  const message = requireMessage(rt, conversation, ref.messageId);
  deleteMessage(rt, message, member?.user ?? null);
  return renderMessage(rt, message);
}

/** The dashboard's "retry" on a failed message; returns its JSON afterwards. */
export function retryAgentMessage(rt: SimulatorRuntime, ref: AgentMessageRef): Record<string, unknown> {
  const member = optionalUser(rt, ref.accountId, ref.userId);
  const conversation = requireConversation(rt, ref.accountId, ref.conversationId, member?.user);
  const message = requireMessage(rt, conversation, ref.messageId);
  retryMessage(rt, message, member?.user ?? null);
  return renderMessage(rt, message);
}

/**
 * `POST …/conversations` as `userId` (e.g. an agent starting a conversation from the dashboard),
 * without HTTP. Returns the conversation JSON.
 */
export function createConversationAs(
  rt: SimulatorRuntime,
  accountId: number,
  body: Record<string, unknown>,
  userId: number,
): Record<string, unknown> {
  const actor: Actor = requireMember(rt, accountId, userId);
  try {
    return renderConversation(rt, createConversation(rt, actor, body).conversation);
  } catch (error) {
    if (error instanceof ChatwootHttpError) fail(`Chatwoot would refuse this conversation: ${error.message}`);
    throw error;
  }
}
