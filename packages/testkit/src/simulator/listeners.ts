/**
 * Chatwoot's `ActionCableListener` and `WebhookListener`: who receives an event and with which
 * payload. Cable events go to the pubsub tokens of the inbox's members and every administrator
 * of the account; webhooks go to the API inbox's `webhook_url` (activity messages excluded,
 * private notes included).
 */
import type { DomainEvent, EventListener, SimulatorRuntime } from "./runtime.js";
import { administratorsOf, type ConversationRecord, type UserRecord } from "./store.js";
import {
  conversationPushData,
  messagePushData,
  messageWebhookData,
  userPushData,
} from "./views-messaging.js";
import type { WebhookSender } from "./webhooks.js";

/** One cable broadcast, as recorded in `sim.broadcasts`. */
export interface RecordedBroadcast {
  /** `message.created`, `message.updated`, `conversation.created`, `conversation.status_changed`. */
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
    const users = recipients(rt, conversation);
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

/** The webhook listener for API inboxes with a `webhook_url`. */
export function createWebhookListener(rt: SimulatorRuntime, sender: WebhookSender): EventListener {
  return (event) => {
    const conversation = conversationOf(rt, event);
    const inbox = conversation ? rt.store.inboxes.get(conversation.inboxId) : undefined;
    const channel = inbox ? rt.store.apiChannels.get(inbox.channelId) : undefined;
    if (!conversation || !inbox || !channel || inbox.channelType !== "Channel::Api") return;
    const url = channel.webhookUrl;
    if (url === null || url.trim() === "") return;
    switch (event.name) {
      case "message.created":
      case "message.updated": {
        // `webhook_sendable?`: incoming, outgoing and template (private notes too), not activity.
        if (event.message.messageType === "activity") return;
        const name = event.name === "message.created" ? "message_created" : "message_updated";
        sender.deliver(inbox, url, { ...messageWebhookData(rt, event.message), event: name });
        return;
      }
      case "conversation.created":
        sender.deliver(inbox, url, {
          ...conversationPushData(rt, conversation),
          event: "conversation_created",
        });
        return;
      case "conversation.status_changed":
        sender.deliver(inbox, url, {
          ...conversationPushData(rt, conversation),
          event: "conversation_status_changed",
          changed_attributes: [
            { status: { previous_value: event.previousStatus, current_value: event.conversation.status } },
          ],
        });
        return;
    }
  };
}
