/** One message to send to WhatsApp. */
export interface WhatsAppSend {
  instance: string;
  /** The chat JID. */
  to: string;
  kind: "text" | "image" | "video" | "audio" | "document" | "sticker" | "reaction" | "revoke";
  text?: string;
  caption?: string;
  media?: { data: Uint8Array; mimetype: string; fileName?: string };
  /** WhatsApp id of the quoted message. */
  replyTo?: string | null;
  /** Reaction and revoke: the WhatsApp id they apply to. */
  targetId?: string;
  emoji?: string;
}

/** Host-provided: sends to a chat of one of the host's WhatsApp instances. */
export interface WhatsAppGateway {
  /** Resolves with the WhatsApp message id; rejects when WhatsApp did not take the message. */
  send(message: WhatsAppSend, options?: { signal?: AbortSignal }): Promise<{ id: string }>;
  /** Whether `revoke` sends are supported (a message deleted in Chatwoot is then revoked on WhatsApp). */
  readonly supportsRevoke?: boolean;
}
