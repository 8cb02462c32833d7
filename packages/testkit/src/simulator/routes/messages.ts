/**
 * `Api::V1::Accounts::Conversations::MessagesController`: index, create (JSON or multipart with
 * `attachments[]`), update (delivery status, API inboxes only) and destroy.
 */
import { fetchConversation } from "../conversations.js";
import { ChatwootHttpError, recordNotFound } from "../errors.js";
import {
  createMessage,
  deleteMessage,
  findMessages,
  MessageBuildError,
  messagesCreateError,
  updateMessageStatus,
} from "../messages.js";
import { rubyToI } from "../rails-params.js";
import type { AccountContext, Route } from "../router.js";
import type { ConversationRecord, MessageRecord } from "../store.js";
import { renderContactModel, renderMessage, renderUserModel } from "../views-messaging.js";

const BASE = "/api/v1/accounts/:account_id/conversations/:conversation_id/messages";

function conversationOf(ctx: AccountContext) {
  return fetchConversation(ctx.runtime, ctx, ctx.params["conversation_id"]);
}

/** `@conversation.messages.find(params[:id])`. */
function messageOf(ctx: AccountContext, conversation: ConversationRecord): MessageRecord {
  const message = ctx.store.messages.get(rubyToI(ctx.params["id"]));
  if (!message || message.conversationId !== conversation.id) throw recordNotFound();
  return message;
}

export const messageRoutes: Route[] = [
  {
    method: "GET",
    pattern: BASE,
    scope: "account",
    handle: (ctx) => {
      const conversation = conversationOf(ctx);
      const contact = ctx.store.contacts.get(conversation.contactId);
      const assignee =
        conversation.assigneeId === null ? undefined : ctx.store.users.get(conversation.assigneeId);
      return {
        body: {
          meta: {
            labels: [],
            additional_attributes: conversation.additionalAttributes,
            contact: contact ? renderContactModel(contact) : null,
            assignee: assignee ? renderUserModel(assignee) : null,
            agent_last_seen_at: conversation.agentLastSeenAt?.toISOString() ?? null,
            assignee_last_seen_at: conversation.assigneeLastSeenAt?.toISOString() ?? null,
          },
          payload: findMessages(ctx.runtime, conversation, ctx.params).map((m) =>
            renderMessage(ctx.runtime, m),
          ),
        },
      };
    },
  },
  {
    method: "POST",
    pattern: BASE,
    scope: "account",
    handle: (ctx) => {
      const conversation = conversationOf(ctx);
      try {
        const { message, echoId } = createMessage(ctx.runtime, conversation, ctx.user, ctx.params);
        return { body: renderMessage(ctx.runtime, message, { echoId }) };
      } catch (error) {
        // messages#create rescues StandardError: every failure is 422 {"error": message}.
        if (error instanceof MessageBuildError) throw messagesCreateError(error);
        throw error;
      }
    },
  },
  {
    method: ["PATCH", "PUT"],
    pattern: `${BASE}/:id`,
    scope: "account",
    handle: (ctx) => {
      const conversation = conversationOf(ctx);
      const inbox = ctx.store.inboxes.get(conversation.inboxId);
      if (inbox?.channelType !== "Channel::Api") {
        throw new ChatwootHttpError(403, { error: "Message status update is only allowed for API inboxes" });
      }
      const message = messageOf(ctx, conversation);
      updateMessageStatus(ctx.runtime, message, ctx.params["status"], ctx.params["external_error"], ctx.user);
      return { body: renderMessage(ctx.runtime, message) };
    },
  },
  {
    method: "DELETE",
    pattern: `${BASE}/:id`,
    scope: "account",
    handle: (ctx) => {
      const conversation = conversationOf(ctx);
      const message = messageOf(ctx, conversation);
      deleteMessage(ctx.runtime, message, ctx.user);
      return { body: renderMessage(ctx.runtime, message) };
    },
  },
];
