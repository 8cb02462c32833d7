/**
 * The phase-2 part of the simulator object: seeding contacts and conversations, dashboard actions
 * of agents, settings, and inspection of contacts, conversations, messages, attachments, cable
 * broadcasts and webhook deliveries.
 */
import {
  type AgentMessageInput,
  type AgentMessageRef,
  createConversationAs,
  deleteAgentMessage,
  postAgentMessage,
  retryAgentMessage,
  setConversationStatus,
} from "./agent-actions.js";
import type { SimulatorCable } from "./cable.js";
import { createContact } from "./contacts.js";
import { ChatwootHttpError } from "./errors.js";
import type { RecordedBroadcast } from "./listeners.js";
import type { SimulatorRuntime } from "./runtime.js";
import {
  type ConversationStatus,
  findConversation,
  generateSecureToken,
  messagesOf,
  type WebhookSigning,
} from "./store.js";
import {
  renderContact,
  renderContactInboxModel,
  renderConversation,
  renderMessage,
} from "./views-messaging.js";
import type { Waiters } from "./waiters.js";
import type { WebhookDelivery } from "./webhooks.js";

/** Selects broadcasts. Every given field must match. */
export interface BroadcastFilter {
  /** E.g. `message.created`. */
  event?: string;
  accountId?: number;
  /** Only broadcasts sent to this user's pubsub token. */
  userId?: number;
  /** Conversation display id (`data.conversation_id` of message events, `data.id` of conversation events). */
  conversationId?: number;
}

/** Selects webhook deliveries. Every given field must match. */
export interface WebhookDeliveryFilter {
  /** E.g. `message_created`. */
  event?: string;
  inboxId?: number;
  /** `payload.id` of message events. */
  messageId?: number;
}

/** Options of the `waitFor…` methods. */
export interface WaitOptions {
  /** How many matches to wait for (default 1). Entries already logged count. */
  count?: number;
  /** Default 5000. */
  timeoutMs?: number;
}

/** Seeding, agent actions and inspection for contacts, conversations and messages. */
export interface ChatwootMessagingApi {
  /**
   * Creates a contact as `POST /api/v1/accounts/{accountId}/contacts` would with this body (with
   * `inbox_id` + `source_id` also its contact inbox), without HTTP. Returns the contact JSON with
   * `contact_inboxes`. Throws if Chatwoot would refuse the body.
   */
  createContact(accountId: number, body: Record<string, unknown>): Record<string, unknown>;
  /**
   * Creates (or, with `lock_to_single_conversation`, finds) a conversation as
   * `POST …/conversations` would for user `userId`, without HTTP. Returns the conversation JSON.
   */
  createConversation(
    accountId: number,
    body: Record<string, unknown>,
    options: { userId: number },
  ): Record<string, unknown>;
  /**
   * An agent replies in the dashboard: creates an outgoing message (or private note) as that
   * user, exactly like `POST …/messages`, with broadcasts and webhooks. Returns the message JSON.
   */
  postAgentMessage(input: AgentMessageInput): Record<string, unknown>;
  /**
   * Changes a conversation's status (display id) as the dashboard does (`toggle_status` with a
   * status): broadcasts `conversation.status_changed`, sends the webhook, writes the activity
   * message, and self-assigns a plain agent when the result is open. Returns the toggle payload.
   */
  setConversationStatus(
    accountId: number,
    conversationId: number,
    status: ConversationStatus,
    options?: { userId?: number; snoozedUntil?: Date },
  ): Record<string, unknown>;
  /**
   * Deletes a message as an agent: content "This message was deleted", `content_attributes`
   * `{deleted: true}`, attachments removed, `message.updated` broadcast. Returns the message JSON.
   */
  deleteMessage(ref: AgentMessageRef): Record<string, unknown>;
  /**
   * The dashboard's "retry" on a failed message: status back to `sent`, then `content_attributes`
   * cleared, each change broadcast as `message.updated` (and sent to the webhook). Returns the
   * message JSON.
   */
  retryMessage(ref: AgentMessageRef): Record<string, unknown>;
  /**
   * Signing of this inbox's webhook deliveries: `"off"` (4.10), `"secret"` (4.13) or
   * `"hmac_token"` (issue #13809); `undefined` follows the simulator's `webhookSigning` option.
   */
  setWebhookSigning(inboxId: number, signing: WebhookSigning | undefined): void;
  /** Gives the inbox a new webhook `secret` (`POST …/inboxes/{id}/reset_secret` in 4.13) and returns it. */
  resetInboxSecret(inboxId: number): string;
  /** How many 302 redirects lead from an attachment's `data_url` to its bytes (0 = none). */
  setAttachmentRedirects(count: number): void;
  /**
   * Changes `CONVERSATION_MESSAGE_PER_MINUTE_LIMIT` (the `messageFloodLimit` option): past it, a message create answers
   * 422 `{"error":"Validation failed: Too many messages"}`. Raising it is how a test lets the rolling minute pass.
   */
  setMessageFloodLimit(limit: number): void;
  /** The account's contacts as Chatwoot JSON with `contact_inboxes`, by id. */
  contacts(accountId: number): Record<string, unknown>[];
  /** The account's contact inboxes (raw rows: id, contact_id, inbox_id, source_id, …), by id. */
  contactInboxes(accountId: number): Record<string, unknown>[];
  /** The account's conversations as Chatwoot JSON (administrator view), by display id. */
  conversations(accountId: number): Record<string, unknown>[];
  /** Every message of a conversation (display id), oldest first, as the messages API renders them. */
  messages(accountId: number, conversationId: number): Record<string, unknown>[];
  /** An attachment's stored bytes, or `undefined` (e.g. after its message was deleted). */
  attachmentBytes(attachmentId: number): { data: Buffer; contentType: string; fileName: string } | undefined;
  /** Every cable broadcast, oldest first. */
  readonly broadcasts: readonly RecordedBroadcast[];
  /** Resolves once `count` matching broadcasts have been sent to the sockets. */
  waitForBroadcasts(filter?: BroadcastFilter, options?: WaitOptions): Promise<RecordedBroadcast[]>;
  clearBroadcasts(): void;
  /** Every webhook delivery (in flight or finished), oldest first. */
  readonly webhookDeliveries: readonly WebhookDelivery[];
  /** Resolves once `count` matching deliveries have finished (answered, failed or timed out). */
  waitForWebhookDeliveries(filter?: WebhookDeliveryFilter, options?: WaitOptions): Promise<WebhookDelivery[]>;
  clearWebhookDeliveries(): void;
  /** Controls and inspection of the `/cable` endpoint. */
  readonly cable: SimulatorCable;
}

function broadcastMatches(broadcast: RecordedBroadcast, filter: BroadcastFilter): boolean {
  const data = broadcast.data;
  const conversationId = broadcast.event.startsWith("message.") ? data["conversation_id"] : data["id"];
  return (
    (filter.event === undefined || filter.event === broadcast.event) &&
    (filter.accountId === undefined || filter.accountId === broadcast.accountId) &&
    (filter.userId === undefined || broadcast.userIds.includes(filter.userId)) &&
    (filter.conversationId === undefined || filter.conversationId === conversationId)
  );
}

function deliveryMatches(delivery: WebhookDelivery, filter: WebhookDeliveryFilter): boolean {
  return (
    (filter.event === undefined || filter.event === delivery.event) &&
    (filter.inboxId === undefined || filter.inboxId === delivery.inboxId) &&
    (filter.messageId === undefined ||
      (delivery.event.startsWith("message_") && delivery.payload["id"] === filter.messageId))
  );
}

export function createMessagingApi(rt: SimulatorRuntime, cable: SimulatorCable, waiters: Waiters) {
  const { store } = rt;
  // Cleared in place, so the arrays handed out stay the live logs.
  const broadcasts: RecordedBroadcast[] = [];
  const deliveries: WebhookDelivery[] = [];

  const requireInbox = (inboxId: number) => {
    const inbox = store.inboxes.get(inboxId);
    const channel = inbox ? store.apiChannels.get(inbox.channelId) : undefined;
    if (!inbox || !channel) throw new Error(`chatwoot simulator: no inbox ${inboxId}`);
    return { inbox, channel };
  };

  const api: ChatwootMessagingApi = {
    createContact(accountId, body) {
      const account = store.accounts.get(accountId);
      if (!account) throw new Error(`chatwoot simulator: no account ${accountId}`);
      try {
        return renderContact(store, createContact(rt, account, body).contact, { withContactInboxes: true });
      } catch (error) {
        if (error instanceof ChatwootHttpError) {
          throw new Error(`chatwoot simulator: Chatwoot would refuse this contact: ${error.message}`);
        }
        throw error;
      }
    },
    createConversation: (accountId, body, { userId }) => createConversationAs(rt, accountId, body, userId),
    postAgentMessage: (input) => postAgentMessage(rt, input),
    setConversationStatus: (accountId, conversationId, status, options) =>
      setConversationStatus(rt, accountId, conversationId, status, options),
    deleteMessage: (ref) => deleteAgentMessage(rt, ref),
    retryMessage: (ref) => retryAgentMessage(rt, ref),
    setWebhookSigning(inboxId, signing) {
      requireInbox(inboxId).channel.webhookSigning = signing;
    },
    resetInboxSecret(inboxId) {
      const { channel } = requireInbox(inboxId);
      channel.secret = generateSecureToken();
      return channel.secret;
    },
    setAttachmentRedirects(count) {
      if (!Number.isInteger(count) || count < 0)
        throw new TypeError(`redirect count must be >= 0, got ${count}`);
      rt.attachmentRedirects = count;
    },
    setMessageFloodLimit(limit) {
      if (!Number.isInteger(limit) || limit < 1)
        throw new TypeError(`the flood limit must be a positive integer, got ${limit}`);
      rt.messageFloodLimit = limit;
    },
    contacts: (accountId) =>
      [...store.contacts.values()]
        .filter((c) => c.accountId === accountId)
        .map((c) => renderContact(store, c, { withContactInboxes: true })),
    contactInboxes: (accountId) =>
      [...store.contactInboxes.values()]
        .filter((ci) => store.inboxes.get(ci.inboxId)?.accountId === accountId)
        .map(renderContactInboxModel),
    conversations: (accountId) =>
      [...store.conversations.values()]
        .filter((c) => c.accountId === accountId)
        .sort((a, b) => a.displayId - b.displayId)
        .map((c) => renderConversation(rt, c)),
    messages(accountId, conversationId) {
      const conversation = findConversation(store, accountId, conversationId);
      return conversation ? messagesOf(store, conversation.id).map((m) => renderMessage(rt, m)) : [];
    },
    attachmentBytes(attachmentId) {
      const attachment = store.attachments.get(attachmentId);
      return attachment
        ? { data: attachment.data, contentType: attachment.contentType, fileName: attachment.fileName }
        : undefined;
    },
    broadcasts,
    waitForBroadcasts(filter = {}, { count = 1, timeoutMs = 5000 } = {}) {
      return waiters.until(
        () => {
          const found = broadcasts.filter((b) => b.sent && broadcastMatches(b, filter));
          return found.length >= count ? found : undefined;
        },
        timeoutMs,
        () => `fewer than ${count} broadcast(s) matching ${JSON.stringify(filter)}`,
      );
    },
    clearBroadcasts() {
      broadcasts.length = 0;
    },
    webhookDeliveries: deliveries,
    waitForWebhookDeliveries(filter = {}, { count = 1, timeoutMs = 5000 } = {}) {
      return waiters.until(
        () => {
          const found = deliveries.filter((d) => d.done && deliveryMatches(d, filter));
          return found.length >= count ? found : undefined;
        },
        timeoutMs,
        () => `fewer than ${count} finished webhook deliveries matching ${JSON.stringify(filter)}`,
      );
    },
    clearWebhookDeliveries() {
      deliveries.length = 0;
    },
    cable,
  };

  return {
    api,
    recordBroadcast(broadcast: RecordedBroadcast) {
      broadcasts.push(broadcast);
    },
    recordDelivery(delivery: WebhookDelivery) {
      deliveries.push(delivery);
      waiters.notify();
    },
  };
}
