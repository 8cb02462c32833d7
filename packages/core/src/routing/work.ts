import type { ReceiptStatus, WhatsAppMessage } from "./events.js";

/** WhatsApp → Chatwoot work, as stored in the outbox. */
export type InboundWork =
  | { kind: "message"; message: WhatsAppMessage }
  | { kind: "receipt"; waMessageId: string; chatJid: string; status: ReceiptStatus }
  | IdentityWork;

/** `contact.identity`: a LID and a phone JID are one person; their chats become one (`docs/identity.md`). */
export interface IdentityWork {
  kind: "identity";
  lid: string;
  jid: string;
}

/** An attachment of an agent message. */
export interface AgentAttachment {
  dataUrl: string;
  fileType: string;
  extension: string | null;
}

/** Chatwoot → WhatsApp work, as stored in the outbox. */
export interface OutboundWork {
  kind: "agent-message";
  messageId: number;
  conversationId: number;
  content: string;
  attachments: AgentAttachment[];
  senderName: string | null;
  /** The contact-inbox `source_id`: the chat JID we registered. */
  contactSourceId: string | null;
  /** Chatwoot id of the quoted message. */
  inReplyTo: number | null;
  /** Set when this is Chatwoot's "retry" of a failed message: send again once. */
  retry?: number;
  /**
   * A CSAT survey (`content_type` `input_csat`) from a realtime or REST payload, whose `content` lacks the survey
   * link Chatwoot's webhooks and channels add: the conversation's `uuid` when the payload had it.
   */
  survey?: { conversationUuid: string | null };
  /** For a retry: the WhatsApp ids WhatsApp reported failed (an `error` receipt); their parts are sent again. */
  failedWaIds?: string[];
}

/** A message deleted in Chatwoot: revoke what we sent for it (when the gateway can). */
export interface RevokeWork {
  kind: "revoke";
  messageId: number;
  conversationId: number;
  contactSourceId: string | null;
}

export type Work = InboundWork | OutboundWork | RevokeWork;

/** The chat key of a JID: the phone JID when WhatsApp gave one, so a LID and its phone JID are one chat. */
export function chatJidOf(message: WhatsAppMessage): string {
  const { chat } = message;
  if (
    chat.jid.endsWith("@lid") &&
    chat.type === "private" &&
    message.sender?.jid?.endsWith("@s.whatsapp.net")
  ) {
    return message.sender.jid;
  }
  return chat.jid;
}

/** `+<digits>` of a phone JID, when it is one. */
export function phoneOf(jid: string): string | null {
  const match = /^(\d{6,15})(?::\d+)?@s\.whatsapp\.net$/.exec(jid);
  return match ? `+${match[1]}` : null;
}

export const WAID_PREFIX = "WAID:";
export const waSourceId = (waMessageId: string) => `${WAID_PREFIX}${waMessageId}`;
