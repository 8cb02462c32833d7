import type { ChatwootSimulator } from "../simulator/index.js";

/** What the routing tests read of a simulated Chatwoot message (messages API JSON). */
export interface SeenMessage {
  id: number;
  content: string | null;
  message_type: number;
  source_id: string | null;
  private: boolean;
  status: string;
  content_attributes: Record<string, unknown>;
  attachments?: Array<Record<string, unknown>>;
}

export interface SeenConversation {
  id: number;
  status: string;
}

type Scope = { sim: ChatwootSimulator; accountId: number };

export const conversationsOf = ({ sim, accountId }: Scope): SeenConversation[] =>
  sim.conversations(accountId) as unknown as SeenConversation[];

export const chatMessagesIn = (
  sim: ChatwootSimulator,
  accountId: number,
  conversationId: number,
): SeenMessage[] =>
  (sim.messages(accountId, conversationId) as unknown as SeenMessage[]).filter(
    // Activity messages (status changes) are Chatwoot's, not ours.
    (message) => message.message_type !== 2,
  );

export const chatMessages = (scope: Scope, conversationId: number): SeenMessage[] =>
  chatMessagesIn(scope.sim, scope.accountId, conversationId);

/** Every non-activity message of the account, across conversations. */
export const allMessages = (sim: ChatwootSimulator, accountId: number): SeenMessage[] =>
  conversationsOf({ sim, accountId }).flatMap((conversation) =>
    chatMessagesIn(sim, accountId, conversation.id),
  );

/** Messages created through the bridge (not private notes). */
export const totalMessages = (scope: Scope): number =>
  allMessages(scope.sim, scope.accountId).filter((message) => !message.private).length;

export const countContacts = ({ sim, accountId }: Scope): number => sim.contacts(accountId).length;
export const countContactInboxes = ({ sim, accountId }: Scope): number =>
  sim.contactInboxes(accountId).length;
