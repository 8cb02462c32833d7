/**
 * `Api::V1::Accounts::Conversations::MessagesController`: index, create (JSON or multipart with
 * `attachments[]`), update (delivery status, API inboxes only), retry and destroy; and the public CSAT survey
 * update the contact's survey page makes.
 */
import { fetchConversation } from "../conversations.js";
import { ChatwootHttpError, recordNotFound } from "../errors.js";
import {
  createMessage,
  deleteMessage,
  findMessages,
  MessageBuildError,
  messagesCreateError,
  retryMessage,
  updateMessage,
  updateMessageStatus,
} from "../messages.js";
import { isPlainObject, rubyToI } from "../rails-params.js";
import type { AccountContext, Route } from "../router.js";
import { type ConversationRecord, type MessageRecord, messagesOf } from "../store.js";
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

/** `Public::Api::V1::CsatSurveyController#check_csat_locked`: more than 14 days after the survey. */
const CSAT_LOCK_DAYS = 14;

export const messageRoutes: Route[] = [
  {
    // `Public::Api::V1::CsatSurveyController#update` (config/routes.rb `resources :csat_survey`): the survey page the
    // contact opens from the link (`/survey/responses/<conversation uuid>`) submits the rating into the CSAT
    // message's `content_attributes.submitted_values`, a `message.updated` (the rating record is written later by
    // `CsatSurveyListener`, so the answer has none yet).
    method: ["PATCH", "PUT"],
    pattern: "/public/api/v1/csat_survey/:id",
    scope: "public",
    handle: ({ runtime, store, params }) => {
      const conversation = [...store.conversations.values()].find((c) => c.uuid === params["id"]);
      const message = conversation
        ? messagesOf(store, conversation.id).find((m) => m.contentType === "input_csat")
        : undefined;
      if (!conversation || !message) throw recordNotFound();
      const day = (date: Date) => Math.floor(date.getTime() / 86_400_000);
      if (day(runtime.now()) - day(message.createdAt) > CSAT_LOCK_DAYS) {
        throw new ChatwootHttpError(422, { error: "You cannot update the CSAT survey after 14 days" });
      }
      const submitted = isPlainObject(params["message"]) ? params["message"]["submitted_values"] : undefined;
      if (submitted !== undefined) {
        updateMessage(runtime, message, null, (m) => {
          m.contentAttributes = { ...m.contentAttributes, submitted_values: submitted };
        });
      }
      const inbox = store.inboxes.get(message.inboxId);
      const config = inbox?.csatConfig ?? {};
      return {
        body: {
          id: message.id,
          csat_survey_response: null,
          display_type: config["display_type"] ?? "emoji",
          content: config["message"] ?? null,
          inbox_avatar_url: "",
          inbox_name: inbox?.name ?? null,
          locale: "en",
          conversation_id: message.conversationId,
          created_at: message.createdAt.toISOString(),
        },
      };
    },
  },
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
    // `MessagesController#retry` (the dashboard's retry button on a failed message): status `sent`, then
    // `content_attributes` cleared, each a `message.updated`; answers the message JSON (`retry.json.jbuilder`).
    method: "POST",
    pattern: `${BASE}/:id/retry`,
    scope: "account",
    handle: (ctx) => {
      const conversation = conversationOf(ctx);
      const message = messageOf(ctx, conversation);
      retryMessage(ctx.runtime, message, ctx.user);
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
