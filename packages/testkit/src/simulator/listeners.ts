/**
 * Chatwoot's `ActionCableListener` and `WebhookListener`: who receives an event and with which
 * payload. Cable events go to the pubsub tokens of the inbox's members and every administrator
 * of the account (typing events not to the typer); webhooks go to the API inbox's `webhook_url`
 * (activity messages excluded, private notes included), every event of the inbox with no
 * subscription filter (`app/listeners/webhook_listener.rb`, the same list in 4.10.0 and 4.13.0).
 */
import type { DomainEvent, EventListener, SimulatorRuntime } from "./runtime.js";
import { administratorsOf, type ConversationRecord, type UserRecord } from "./store.js";
import { stripHardBreaks } from "./versions.js";
import {
  conversationPushData,
  messagePushData,
  messageWebhookData,
  userPushData,
  userWebhookData,
} from "./views-messaging.js";
import type { WebhookSender } from "./webhooks.js";

/** One cable broadcast, as recorded in `sim.broadcasts`. */
export interface RecordedBroadcast {
  /**
   * `message.created`, `message.updated`, `conversation.created`, `conversation.status_changed`,
   * `conversation.typing_on`, `conversation.typing_off` (`conversation.updated` is not simulated on the cable).
   */
  event: string;
  /** The `data` of the frame's `message` (payload + `account_id` + `performer`). */
  data: Record<string, unknown>;
  accountId: number;
  /** The users whose pubsub tokens it was sent to (inbox members and administrators). */
  userIds: number[];
  /** Their pubsub tokens at the time. */
  tokens: string[];
  at: Date;
  /** Whether it has been handed to the sockets (it is queued briefly, as in Chatwoot's job). */
  sent: boolean;
  /** Frames written to sockets (0 while queued, when nobody listened, or when sockets are stalled). */
  frames: number;
}

/** `user_tokens(account, inbox.members)`: inbox members plus all administrators, once each. */
function recipients(rt: SimulatorRuntime, conversation: ConversationRecord): UserRecord[] {
  const inbox = rt.store.inboxes.get(conversation.inboxId);
  const members = [...(inbox?.memberUserIds ?? [])]
    .map((id) => rt.store.users.get(id))
    .filter((user): user is UserRecord => user !== undefined);
  const byId = new Map<number, UserRecord>();
  for (const user of [...members, ...administratorsOf(rt.store, conversation.accountId)])
    byId.set(user.id, user);
  return [...byId.values()];
}

function conversationOf(rt: SimulatorRuntime, event: DomainEvent): ConversationRecord | undefined {
  return "conversation" in event
    ? event.conversation
    : rt.store.conversations.get(event.message.conversationId);
}

/** The broadcast `data` for an event, before `account_id` and `performer` are added. */
function cableData(rt: SimulatorRuntime, event: DomainEvent): Record<string, unknown> {
  switch (event.name) {
    case "message.created":
      return messagePushData(rt, event.message, { echoId: event.echoId });
    case "message.updated":
      return { ...messagePushData(rt, event.message), previous_changes: event.previousChanges };
    case "conversation.created":
    case "conversation.status_changed":
      return conversationPushData(rt, event.conversation);
    case "conversation.typing_on":
    case "conversation.typing_off":
      return {
        conversation: conversationPushData(rt, event.conversation),
        user: userPushData(rt.store, event.performer, event.conversation.accountId),
        is_private: event.isPrivate,
      };
  }
}

/**
 * The cable listener: builds the payload now, records it, and sends it a moment later (Chatwoot
 * sends from `ActionCableBroadcastJob`), in event order.
 */
export function createCableListener(
  rt: SimulatorRuntime,
  options: {
    send: (tokens: string[], message: unknown) => number;
    record: (b: RecordedBroadcast) => void;
    sent: () => void;
  },
): EventListener {
  return (event) => {
    const conversation = conversationOf(rt, event);
    if (!conversation) return;
    const typing = event.name === "conversation.typing_on" || event.name === "conversation.typing_off";
    // `typing_event_listener_tokens`: everyone but the typer.
    const users = recipients(rt, conversation).filter((user) => !typing || user.id !== event.performer.id);
    if (users.length === 0) return;
    const data: Record<string, unknown> = { ...cableData(rt, event), account_id: conversation.accountId };
    if (event.performer) data["performer"] = userPushData(rt.store, event.performer, conversation.accountId);
    const broadcast: RecordedBroadcast = {
      event: event.name,
      data,
      accountId: conversation.accountId,
      userIds: users.map((u) => u.id),
      tokens: users.map((u) => u.pubsubToken),
      at: new Date(),
      sent: false,
      frames: 0,
    };
    options.record(broadcast);
    setImmediate(() => {
      broadcast.frames = options.send(broadcast.tokens, { event: broadcast.event, data: broadcast.data });
      broadcast.sent = true;
      options.sent();
    });
  };
}

type Json = Record<string, unknown>;

/** A conversation payload with the `content` of its messages normalised as 4.13's webhooks do. */
function normalisedConversation(conversation: unknown): unknown {
  if (typeof conversation !== "object" || conversation === null) return conversation;
  const messages = (conversation as Json)["messages"];
  if (!Array.isArray(messages)) return conversation;
  return { ...conversation, messages: messages.map((message) => normalisedContent(message as Json)) };
}

function normalisedContent(payload: Json): Json {
  const content = payload["content"];
  return typeof content === "string" ? { ...payload, content: stripHardBreaks(content) } : payload;
}

/**
 * 4.13.0 (`Messages::WebhookContentNormalizer`): webhook `content`, and the `content` of the messages in conversation
 * payloads, lose the backslash of hard breaks. Earlier versions (and every cable and REST payload) keep it.
 */
function forWebhook(rt: SimulatorRuntime, payload: Json): Json {
  if (!rt.store.settings.features.stripsWebhookHardBreaks) return payload;
  const normalised = normalisedContent(payload);
  if ("conversation" in normalised)
    normalised["conversation"] = normalisedConversation(normalised["conversation"]);
  if (Array.isArray(normalised["messages"])) return normalisedConversation(normalised) as Json;
  return normalised;
}

/** The webhook listener for API inboxes with a `webhook_url`. */
export function createWebhookListener(rt: SimulatorRuntime, sender: WebhookSender): EventListener {
  return (event) => {
    const conversation = conversationOf(rt, event);
    const inbox = conversation ? rt.store.inboxes.get(conversation.inboxId) : undefined;
    const channel = inbox ? rt.store.apiChannels.get(inbox.channelId) : undefined;
    if (!conversation || !inbox || !channel || inbox.channelType !== "Channel::Api") return;
    const url = channel.webhookUrl;
    if (url === null || url.trim() === "") return;
    const deliver = (payload: Json) => sender.deliver(inbox, url, forWebhook(rt, payload));
    switch (event.name) {
      case "message.created":
      case "message.updated": {
        // `webhook_sendable?`: incoming, outgoing and template (private notes too), not activity.
        if (event.message.messageType === "activity") return;
        const name = event.name === "message.created" ? "message_created" : "message_updated";
        deliver({ ...messageWebhookData(rt, event.message), event: name });
        return;
      }
      case "conversation.created":
        deliver({ ...conversationPushData(rt, conversation), event: "conversation_created" });
        return;
      case "conversation.status_changed": {
        const changedAttributes = [
          { status: { previous_value: event.previousStatus, current_value: event.conversation.status } },
        ];
        deliver({
          ...conversationPushData(rt, conversation),
          event: "conversation_status_changed",
          changed_attributes: changedAttributes,
        });
        // `status` is in `Conversation#list_of_keys`: the same change is also a `conversation_updated`.
        deliver({
          ...conversationPushData(rt, conversation),
          event: "conversation_updated",
          changed_attributes: changedAttributes,
        });
        return;
      }
      case "conversation.typing_on":
      case "conversation.typing_off":
        deliver({
          event:
            event.name === "conversation.typing_on" ? "conversation_typing_on" : "conversation_typing_off",
          user: userWebhookData(event.performer),
          conversation: conversationPushData(rt, conversation),
          is_private: event.isPrivate,
        });
        return;
    }
  };
}
