import { type ChatwootApi, isChatwootRequestError } from "../chatwoot/index.js";
import { chatwootTargetOf, type Integration } from "../integrations/index.js";

/** The contact inbox `source_id` of an inbox's status conversation: not a WhatsApp JID, so nothing is routed to it. */
export const statusSourceId = (inboxId: number) => `bridge-status-${inboxId}`;

/** Whether a contact inbox `source_id` is a status conversation's. */
export const isStatusSourceId = (sourceId: string | null): boolean =>
  sourceId !== null && /^bridge-status-\d+$/.test(sourceId);

/**
 * Tells the agents of an inbox something about the bridge, as a private note in the inbox's status conversation (one
 * conversation per inbox, found by its contact inbox `source_id`, created on first use). Idempotent: a note whose
 * `marker` is already among the conversation's latest messages is not posted again, so a retry, or another process
 * after a takeover, does not repeat it. Answers whether a note was posted.
 */
export async function postStatusNote(
  chatwoot: ChatwootApi,
  integration: Integration,
  note: { content: string; marker: string },
): Promise<boolean> {
  const inboxId = integration.inboxId;
  if (inboxId === null) return false;
  const target = chatwootTargetOf(integration);
  const sourceId = statusSourceId(inboxId);
  const conversationId = await statusConversation(chatwoot, integration, inboxId, sourceId);
  const latest = await chatwoot.listMessages(target, conversationId);
  if (latest.some((message) => message.private === true && message.content?.includes(note.marker)))
    return false;
  await chatwoot.createMessage(target, conversationId, {
    content: `${note.content}\n\n${note.marker}`,
    messageType: "outgoing",
    private: true,
  });
  return true;
}

async function statusConversation(
  chatwoot: ChatwootApi,
  integration: Integration,
  inboxId: number,
  sourceId: string,
): Promise<number> {
  const target = chatwootTargetOf(integration);
  const [existing] = await chatwoot.listConversationsBySourceId(target, inboxId, sourceId);
  if (existing) return existing.id;
  let contact = await chatwoot.findContactBySourceId(target, inboxId, sourceId);
  if (!contact) {
    try {
      contact = await chatwoot.createContact(target, {
        inboxId,
        sourceId,
        name: "WhatsApp bridge status",
        identifier: sourceId,
      });
    } catch (error) {
      // Created meanwhile (another process): 422 "Identifier has already been taken".
      if (!isChatwootRequestError(error)) throw error;
      contact = await chatwoot.findContactBySourceId(target, inboxId, sourceId);
      if (!contact) throw error;
    }
  }
  const conversation = await chatwoot.createConversation(target, {
    inboxId,
    contactId: contact.id,
    sourceId,
    status: "open",
  });
  return conversation.id;
}
