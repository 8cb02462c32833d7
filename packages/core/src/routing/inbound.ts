import type {
  ChatwootAccountTarget,
  ChatwootApi,
  ChatwootConversation,
  ChatwootMessage,
  CreateMessageInput,
  Upload,
} from "../chatwoot/index.js";
import { isChatwootHttpError, isChatwootNotFound, isChatwootRequestError } from "../chatwoot/index.js";
import type { Integration } from "../integrations/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { ChatMapping, MappingStore } from "../store/ports.js";
import type { WhatsAppMessage } from "./events.js";
import { shieldFromLiquid } from "./markdown.js";
import { describeFile, type MediaFetcher, MediaUnavailableError } from "./media.js";
import { chatJidOf, type InboundWork, phoneOf, waSourceId } from "./work.js";

export interface InboundDeps {
  chatwoot: ChatwootApi;
  media: MediaFetcher;
  mappings: MappingStore;
  clock: Clock;
  logger: Logger;
  /** Counts what was skipped and why (observability). */
  count(event: string): void;
  /** Whether the delivery of this agent reply (a Chatwoot message id) was given up on and is still failed. */
  givenUp(integrationId: string, chatwootMessageId: number): Promise<boolean>;
}

export interface InboundContext {
  integration: Integration;
  target: ChatwootAccountTarget;
  inboxId: number;
  /** True when an earlier attempt may have created the message already (the outcome was unknown). */
  retrying: boolean;
  /** When the work was stored: a message an earlier attempt created is not older (give or take the clocks). */
  enqueuedAt: Date;
  /** How long a message sent from this number must wait before it is mirrored, so our own sends are recognised. */
  echoWaitMs: number;
  signal: AbortSignal;
}

/** Thrown to try an item again shortly, without it counting as an attempt. */
export class DeferDelivery extends Error {
  constructor(readonly afterMs: number) {
    super(`deferred: ${afterMs}ms`);
    this.name = "DeferDelivery";
  }
}

const RECEIPT_STATUS = {
  sent: "sent",
  delivered: "delivered",
  received: "delivered",
  read: "read",
  played: "read",
  error: "failed",
} as const;

/** Where an earlier attempt's message is looked for: pages of the messages list (20 each), newest first. */
const LOOKUP_PAGES = 10;
const MESSAGES_PAGE = 20;
/** How much Chatwoot's clock may differ from ours when a message's `created_at` bounds the look-up. */
const CLOCK_MARGIN_MS = 5 * 60_000;

/** Where a message was found or created in Chatwoot. */
interface Delivered {
  conversationId: number;
  messageId: number;
}

/**
 * WhatsApp → Chatwoot. A text message in a known chat costs exactly one Chatwoot request: contact and
 * conversation come from the local mapping. A new conversation of a known contact costs one (the conversation is
 * created with its first message), a new contact two (the contact with its contact inbox, then the conversation).
 */
export function createInboundDelivery(deps: InboundDeps) {
  const { chatwoot, mappings } = deps;

  /**
   * The chat's Chatwoot contact. A new chat's contact is created with our contact inbox in one request; a conflict
   * (422) means the contact exists (same phone or identifier, e.g. from another inbox): it is found by our
   * `source_id`, else by search, and given our contact inbox. `lookupFirst`: the chat had a contact that is gone
   * (merged into another contact, or deleted), so Chatwoot is first asked who owns our `source_id` now.
   */
  async function resolveContact(
    ctx: InboundContext,
    message: WhatsAppMessage,
    jid: string,
    lookupFirst = false,
  ): Promise<number> {
    const group = message.chat.type === "group";
    const phone = group ? null : phoneOf(jid);
    const name =
      (group
        ? message.chat.name
        : (message.chat.name ?? (message.direction === "incoming" ? message.sender?.name : null))) ??
      phone ??
      jid;
    const options = { signal: ctx.signal };
    if (lookupFirst) {
      const owner = await chatwoot.findContactBySourceId(ctx.target, ctx.inboxId, jid, options);
      if (owner) return owner.id;
    }
    const contactInbox = { inboxId: ctx.inboxId, sourceId: jid };
    let created: { id: number; sourceId: string | null };
    try {
      created = await chatwoot.createContact(
        ctx.target,
        {
          inboxId: ctx.inboxId,
          sourceId: jid,
          name,
          identifier: jid,
          ...(phone ? { phoneNumber: phone } : {}),
        },
        options,
      );
    } catch (error) {
      if (!isChatwootHttpError(error, 422)) throw error;
      const known = await chatwoot.findContactBySourceId(ctx.target, ctx.inboxId, jid, options);
      if (known) return known.id;
      // The contact exists (same phone or identifier, e.g. from another inbox): give it our contact-inbox.
      const matches = (contact: { identifier?: string | null; phone_number?: string | null }) =>
        contact.identifier === jid || (phone !== null && contact.phone_number === phone);
      // Search by phone, then by the JID: Chatwoot's search matches substrings, and "+55…" is not in "55…@s.whatsapp.net".
      let match = (await chatwoot.searchContacts(ctx.target, phone ?? jid, options)).find(matches);
      if (!match && phone) match = (await chatwoot.searchContacts(ctx.target, jid, options)).find(matches);
      if (!match) throw error;
      await chatwoot.attachContactInbox(ctx.target, match.id, contactInbox, options);
      return match.id;
    }
    // Chatwoot answers the contact inbox it made along with the contact; without one, ours is added.
    if (created.sourceId !== jid)
      await chatwoot.attachContactInbox(ctx.target, created.id, contactInbox, options);
    return created.id;
  }

  async function ensureChat(
    ctx: InboundContext,
    message: WhatsAppMessage,
    known: ChatMapping | null,
  ): Promise<ChatMapping> {
    if (known) return known;
    const jid = chatJidOf(message);
    const contactId = await resolveContact(ctx, message, jid);
    return mappings.putChat({
      integrationId: ctx.integration.id,
      chatJid: jid,
      contactId,
      sourceId: jid,
      conversationId: null,
      updatedAt: deps.clock.now(),
    });
  }

  /**
   * Opens a conversation with the message as its first one, in one request. When the chat's contact is gone (404:
   * an agent merged it into another contact or deleted it; or 422 `source_id should be unique`: our contact inbox
   * now belongs to another contact), the contact is resolved again and the conversation opened for it, once. The
   * chat mapping keeps the contact id it was created with (the mapping store cannot change it): a later conversation
   * of this chat resolves it again the same way.
   */
  async function openConversation(
    ctx: InboundContext,
    message: WhatsAppMessage,
    chat: ChatMapping,
    input: CreateMessageInput & { sourceId: string },
  ): Promise<Delivered> {
    const open = (contactId: number) =>
      chatwoot.createConversation(
        ctx.target,
        {
          inboxId: ctx.inboxId,
          contactId,
          sourceId: chat.sourceId,
          // Only at creation: an existing conversation's status is the agents' business.
          status: ctx.integration.startAsPending ? "pending" : "open",
          message: input,
        },
        { signal: ctx.signal },
      );
    let conversation: ChatwootConversation;
    try {
      conversation = await open(chat.contactId);
    } catch (error) {
      if (!isChatwootNotFound(error) && !isSourceIdTaken(error)) throw error;
      deps.count("contact_resolved_again");
      conversation = await open(await resolveContact(ctx, message, chat.chatJid, true));
    }
    await mappings.setChatConversation(ctx.integration.id, chat.chatJid, conversation.id);
    // The answer shows the conversation's last message: ours, unless Chatwoot added one after it (a greeting).
    const created =
      conversation.messages?.find((entry) => entry.source_id === input.sourceId) ??
      (await findMessage(ctx, conversation.id, input.sourceId));
    if (!created)
      throw new Error(`conversation ${conversation.id} was opened without message ${input.sourceId}`);
    return { conversationId: conversation.id, messageId: created.id };
  }

  /**
   * The message with this `source_id` in a conversation, or null (also when the conversation is gone, which
   * `onGone` is told): the latest page of its messages, then older pages as long as they are newer than the work
   * (at most `LOOKUP_PAGES`).
   */
  async function findMessage(
    ctx: InboundContext,
    conversationId: number,
    sourceId: string,
    onGone?: () => void,
  ): Promise<{ id: number } | null> {
    const since = (ctx.enqueuedAt.getTime() - CLOCK_MARGIN_MS) / 1000;
    let beforeId: number | undefined;
    for (let page = 0; page < LOOKUP_PAGES; page++) {
      let messages: ChatwootMessage[];
      try {
        messages = await chatwoot.listMessages(
          ctx.target,
          conversationId,
          beforeId === undefined ? {} : { beforeId },
          { signal: ctx.signal },
        );
      } catch (error) {
        if (!isChatwootNotFound(error)) throw error;
        onGone?.();
        return null;
      }
      const found = messages.find((entry) => entry.source_id === sourceId);
      if (found) return found;
      const oldest = messages[0];
      if (!oldest || messages.length < MESSAGES_PAGE || createdAtSeconds(oldest) < since) return null;
      beforeId = oldest.id;
    }
    return null;
  }

  /**
   * Where an earlier attempt, whose outcome is unknown, created this message: in the chat's conversation; or, when
   * the chat has none (or it is gone), as the first message of a conversation it opened (the newest of our contact
   * inbox).
   */
  async function findEarlierAttempt(
    ctx: InboundContext,
    chat: ChatMapping,
    sourceId: string,
  ): Promise<Delivered | null> {
    if (chat.conversationId !== null) {
      let gone = false;
      const found = await findMessage(ctx, chat.conversationId, sourceId, () => {
        gone = true;
      });
      if (found) return { conversationId: chat.conversationId, messageId: found.id };
      if (!gone) return null;
    }
    const conversations = await chatwoot.listConversationsBySourceId(ctx.target, ctx.inboxId, chat.sourceId, {
      signal: ctx.signal,
    });
    const newest = conversations.reduce<ChatwootConversation | null>(
      (latest, conversation) => (latest === null || conversation.id > latest.id ? conversation : latest),
      null,
    );
    if (!newest) return null;
    const found =
      newest.messages?.find((entry) => entry.source_id === sourceId) ??
      (await findMessage(ctx, newest.id, sourceId));
    if (!found) return null;
    // The chat follows that conversation, unless it was resolved meanwhile and must not be reused.
    if (newest.status !== "resolved" || ctx.integration.reopenResolved)
      await mappings.setChatConversation(ctx.integration.id, chat.chatJid, newest.id);
    return { conversationId: newest.id, messageId: found.id };
  }

  /** The Chatwoot message a WhatsApp id maps to (for quotes, edits, reactions). */
  async function chatwootIdOf(ctx: InboundContext, waMessageId: string): Promise<number | null> {
    const [first] = await mappings.getMessagesByWa(ctx.integration.id, waMessageId);
    return first?.chatwootMessageId ?? null;
  }

  /** The file of a media message, from `base64` or else downloaded from `url`, capped. */
  async function loadMedia(message: WhatsAppMessage, signal: AbortSignal): Promise<Upload> {
    const media = message.media!;
    let data: Buffer;
    let contentType: string | null = null;
    let fileName = media.fileName ?? null;
    if (media.base64) {
      data = deps.media.fromBase64(media.base64);
    } else if (media.url) {
      const downloaded = await deps.media.download(media.url, signal);
      data = downloaded.data;
      contentType = downloaded.contentType;
      fileName ??= downloaded.fileName;
    } else {
      throw new MediaUnavailableError("the event carries neither base64 nor url");
    }
    const described = describeFile(media.type, message.id, media.mimetype ?? contentType, fileName);
    return { data, mimetype: described.mimetype, fileName: described.fileName };
  }

  async function deliverMessage(ctx: InboundContext, message: WhatsAppMessage): Promise<void> {
    const integrationId = ctx.integration.id;
    // Both reads at once: they are independent, and a known chat's message needs both.
    const [mapped, known] = await Promise.all([
      mappings.getMessagesByWa(integrationId, message.id),
      mappings.getChat(integrationId, chatJidOf(message)),
    ]);
    if (mapped.some((entry) => entry.direction === "outbound")) return deps.count("echo_skipped");
    if (mapped.length > 0) return deps.count("duplicate_skipped");
    // A send of ours is recorded right after the gateway returns its id; its echo may arrive a moment earlier.
    if (message.direction === "outgoing" && ctx.echoWaitMs > 0) throw new DeferDelivery(ctx.echoWaitMs);

    const annotation = message.reaction ?? message.edit ?? message.revoke;
    const mappedChat = annotation ? known : await ensureChat(ctx, message, known);
    // Edits, revokes and reactions thread to an existing conversation; they never start one.
    if (!mappedChat || (annotation && mappedChat.conversationId === null))
      return deps.count("annotation_without_conversation");
    const chat = mappedChat;

    const contentAttributes: Record<string, unknown> = {};
    let content = message.content?.text ?? message.media?.caption ?? "";
    let attachments: Upload[] | undefined;
    if (message.media && !annotation) {
      try {
        attachments = [await loadMedia(message, ctx.signal)];
      } catch (error) {
        if (!(error instanceof MediaUnavailableError)) throw error;
        // Never dropped silently: the agent sees that a file was sent and why it is missing.
        deps.count("media_unavailable");
        const label = message.media.type === "ptt" ? "voice note" : message.media.type;
        const note = `[${label} from WhatsApp not delivered: ${error.message}]`;
        content = content ? `${content}\n${note}` : note;
      }
    }
    const quotedId = message.quoted?.id ?? annotation?.targetId;
    if (quotedId) {
      contentAttributes.in_reply_to_external_id = waSourceId(quotedId);
      const inReplyTo = await chatwootIdOf(ctx, quotedId);
      if (inReplyTo !== null) contentAttributes.in_reply_to = inReplyTo;
    }
    if (message.reaction) content = message.reaction.emoji || "(reaction removed)";
    else if (message.edit) content = `✏️ ${content}`;
    else if (message.revoke) content = "🚫 This message was deleted on WhatsApp";
    if (message.chat.type === "group" && message.direction === "incoming") {
      const who =
        message.sender?.name ?? (message.sender?.jid ? phoneOf(message.sender.jid) : null) ?? "unknown";
      content = `*${who}*:\n${content}`;
    }

    const sourceId = waSourceId(message.id);
    const record = (delivered: Delivered) =>
      mappings.putMessage({
        integrationId,
        waMessageId: message.id,
        part: 0,
        chatwootMessageId: delivered.messageId,
        conversationId: delivered.conversationId,
        direction: "inbound",
        createdAt: deps.clock.now(),
      });
    if (ctx.retrying) {
      // The previous attempt's outcome is unknown (a timeout, or an error after Chatwoot saved the message): look
      // the message up before creating it again.
      const earlier = await findEarlierAttempt(ctx, chat, sourceId);
      if (earlier) {
        await record(earlier);
        return deps.count("reconciled");
      }
    }
    const input = {
      // Chatwoot renders Liquid in outgoing messages (text typed on the phone): shielded, it shows as typed.
      content: message.direction === "incoming" ? content : shieldFromLiquid(content),
      messageType: message.direction === "incoming" ? ("incoming" as const) : ("outgoing" as const),
      sourceId,
      ...(Object.keys(contentAttributes).length > 0 ? { contentAttributes } : {}),
      ...(attachments ? { attachments } : {}),
    };
    if (chat.conversationId !== null) {
      try {
        const created = await chatwoot.createMessage(ctx.target, chat.conversationId, input, {
          signal: ctx.signal,
        });
        await record({ conversationId: chat.conversationId, messageId: created.id });
        return;
      } catch (error) {
        // The conversation was deleted in Chatwoot (alone, or with its contact): start a new one, once.
        if (!isChatwootNotFound(error) || annotation) throw error;
        await mappings.setChatConversation(integrationId, chat.chatJid, null);
      }
    }
    await record(await openConversation(ctx, message, chat, input));
  }

  async function deliverReceipt(
    ctx: InboundContext,
    work: Extract<InboundWork, { kind: "receipt" }>,
  ): Promise<void> {
    const status = work.status === "pending" ? null : RECEIPT_STATUS[work.status];
    const [mapped] = (await mappings.getMessagesByWa(ctx.integration.id, work.waMessageId)).filter(
      (entry) => entry.direction === "outbound",
    );
    if (!status || !mapped) return deps.count("receipt_ignored");
    // A part of a reply we gave up on: the agent must keep seeing `failed` (a receipt would hide it, and its update
    // would look like the agent's retry).
    if (await deps.givenUp(ctx.integration.id, mapped.chatwootMessageId))
      return deps.count("receipt_ignored");
    await chatwoot.updateMessageStatus(
      ctx.target,
      mapped.conversationId,
      mapped.chatwootMessageId,
      status === "failed" ? { status, externalError: "WhatsApp reported a delivery error" } : { status },
      { signal: ctx.signal },
    );
  }

  return {
    deliver(ctx: InboundContext, work: InboundWork): Promise<void> {
      return work.kind === "message" ? deliverMessage(ctx, work.message) : deliverReceipt(ctx, work);
    },
  };
}

/** conversations#create's 422 when our contact inbox belongs to another contact than the one named. */
function isSourceIdTaken(error: unknown): boolean {
  return (
    isChatwootRequestError(error) &&
    error.failure.kind === "http" &&
    error.failure.status === 422 &&
    error.failure.body.includes("source_id should be unique")
  );
}

/** A message's `created_at` in unix seconds (Chatwoot answers a number; a date string is read too). */
function createdAtSeconds(message: ChatwootMessage): number {
  const value = message.created_at;
  if (typeof value === "number") return value;
  const parsed = Date.parse(String(value));
  return Number.isNaN(parsed) ? Number.POSITIVE_INFINITY : parsed / 1000;
}
