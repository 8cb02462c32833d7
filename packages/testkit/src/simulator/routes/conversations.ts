/**
 * `Api::V1::Accounts::ConversationsController`: create, index, show and toggle_status, behind
 * `ConversationPolicy` (administrators, or members of the conversation's inbox).
 */
import { createConversation, fetchConversation, findConversations, toggleStatus } from "../conversations.js";
import type { Route } from "../router.js";
import { renderConversation } from "../views-messaging.js";

const BASE = "/api/v1/accounts/:account_id/conversations";

export const conversationRoutes: Route[] = [
  {
    method: "GET",
    pattern: BASE,
    scope: "account",
    handle: (ctx) => {
      const { conversations, counts } = findConversations(ctx.runtime, ctx, ctx.params);
      return {
        body: {
          data: { meta: counts, payload: conversations.map((c) => renderConversation(ctx.runtime, c)) },
        },
      };
    },
  },
  {
    method: "POST",
    pattern: BASE,
    scope: "account",
    handle: (ctx) => {
      const { conversation } = createConversation(ctx.runtime, ctx, ctx.params);
      return { body: renderConversation(ctx.runtime, conversation) };
    },
  },
  {
    method: "GET",
    pattern: `${BASE}/:id`,
    scope: "account",
    handle: (ctx) => ({
      body: renderConversation(ctx.runtime, fetchConversation(ctx.runtime, ctx, ctx.params["id"])),
    }),
  },
  {
    method: "POST",
    pattern: `${BASE}/:id/toggle_status`,
    scope: "account",
    handle: (ctx) => {
      const conversation = fetchConversation(ctx.runtime, ctx, ctx.params["id"]);
      const actor = { user: ctx.user, role: ctx.accountUser.role };
      return { body: toggleStatus(ctx.runtime, conversation, actor, ctx.params) };
    },
  },
];
