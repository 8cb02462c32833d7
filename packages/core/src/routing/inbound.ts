import type { ChatwootAccountTarget, ChatwootApi, Upload } from "../chatwoot/index.js";
import { isChatwootHttpError, isChatwootNotFound } from "../chatwoot/index.js";
import type { Integration } from "../integrations/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { ChatMapping, MappingStore } from "../store/ports.js";
import type { WhatsAppMessage } from "./events.js";
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

/**
 * WhatsApp → Chatwoot. A text message in a known chat costs exactly one Chatwoot request: contact and
 * conversation come from the local mapping.
 */
export function createInboundDelivery(deps: InboundDeps) {
  const { chatwoot, mappings } = deps;

  async function resolveContact(ctx: InboundContext, message: WhatsAppMessage, jid: string): Promise<number> {
    const group = message.chat.type === "group";
    const phone = group ? null : phoneOf(jid);
    const name =
      (group
        ? message.chat.name
        : (message.chat.name ?? (message.direction === "incoming" ? message.sender?.name : null))) ??
      phone ??
      jid;
    const options = { signal: ctx.signal };
    try {
      // Creating first keeps the cold path at three requests; a conflict means the contact exists.
      const created = await chatwoot.createContact(
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
      return created.id;
    } catch (error) {
      if (!isChatwootHttpError(error, 422)) throw error;
      const known = await chatwoot.findContactBySourceId(ctx.target, ctx.inboxId, jid, options);
      if (known) return known.id;
      // The contact exists (same phone or identifier, e.g. from another inbox): give it our contact-inbox.
      const candidates = await chatwoot.searchContacts(ctx.target, phone ?? jid, options);
      const match = candidates.find(
        (contact) => contact.identifier === jid || (phone && contact.phone_number === phone),
      );
      if (!match) throw error;
      await chatwoot.attachContactInbox(
        ctx.target,
        match.id,
        { inboxId: ctx.inboxId, sourceId: jid },
        options,
      );
      return match.id;
    }
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

  async function openConversation(ctx: InboundContext, chat: ChatMapping): Promise<number> {
    const conversation = await chatwoot.createConversation(
      ctx.target,
      {
        inboxId: ctx.inboxId,
        contactId: chat.contactId,
        sourceId: chat.sourceId,
        // Only at creation: an existing conversation's status is the agents' business.
        status: ctx.integration.startAsPending ? "pending" : "open",
      },
      { signal: ctx.signal },
    );
    await mappings.setChatConversation(ctx.integration.id, chat.chatJid, conversation.id);
    return conversation.id;
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
    const chat = annotation ? known : await ensureChat(ctx, message, known);
    // Edits, revokes and reactions thread to an existing conversation; they never start one.
    if (annotation && (!chat || chat.conversationId === null))
      return deps.count("annotation_without_conversation");
    let conversationId = chat!.conversationId ?? (await openConversation(ctx, chat!));

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
    if (ctx.retrying) {
      // The previous attempt's outcome is unknown: look the message up before creating it again.
      const recent = await chatwoot
        .listMessages(ctx.target, conversationId, {}, { signal: ctx.signal })
        .catch((error) => {
          if (isChatwootNotFound(error)) return [];
          throw error;
        });
      const found = recent.find((entry) => entry.source_id === sourceId);
      if (found) {
        await mappings.putMessage({
          integrationId,
          waMessageId: message.id,
          part: 0,
          chatwootMessageId: found.id,
          conversationId,
          direction: "inbound",
          createdAt: deps.clock.now(),
        });
        return deps.count("reconciled");
      }
    }
    const input = {
      content,
      messageType: message.direction === "incoming" ? ("incoming" as const) : ("outgoing" as const),
      sourceId,
      ...(Object.keys(contentAttributes).length > 0 ? { contentAttributes } : {}),
      ...(attachments ? { attachments } : {}),
    };
    let created: Awaited<ReturnType<ChatwootApi["createMessage"]>>;
    try {
      created = await chatwoot.createMessage(ctx.target, conversationId, input, { signal: ctx.signal });
    } catch (error) {
      // The conversation was deleted in Chatwoot: start a new one, once.
      if (!isChatwootNotFound(error) || annotation) throw error;
      conversationId = await openConversation(ctx, { ...chat!, conversationId: null });
      created = await chatwoot.createMessage(ctx.target, conversationId, input, { signal: ctx.signal });
    }
    await mappings.putMessage({
      integrationId,
      waMessageId: message.id,
      part: 0,
      chatwootMessageId: created.id,
      conversationId,
      direction: "inbound",
      createdAt: deps.clock.now(),
    });
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
