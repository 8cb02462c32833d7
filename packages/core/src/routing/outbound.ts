import type { ChatwootAccountTarget, ChatwootApi } from "../chatwoot/index.js";
import type { Integration } from "../integrations/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { MappingStore } from "../store/ports.js";
import type { WhatsAppGateway, WhatsAppSend } from "./gateway.js";
import { shieldFromLiquid, toWhatsApp } from "./markdown.js";
import { describeFile, type MediaFetcher, MediaUnavailableError, whatsappKindOf } from "./media.js";
import { type AgentAttachment, type OutboundWork, type RevokeWork, WAID_PREFIX } from "./work.js";

type Json = Record<string, unknown>;
const record = (value: unknown): Json | null =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : null;
const num = (value: unknown): number | null =>
  typeof value === "number" && Number.isFinite(value) ? value : null;
const str = (value: unknown): string | null => (typeof value === "string" ? value : null);

/**
 * `message_type` of what goes to the contact, as Chatwoot's own channels decide (`outgoing? || template?`,
 * `app/services/base/send_on_channel_service.rb`): agent replies (1, `"outgoing"`) and the messages Chatwoot writes
 * itself (3, `"template"`: greeting, out of office, CSAT survey). Numeric in realtime and REST payloads, a string in
 * webhooks.
 */
const SENT_TYPES: readonly unknown[] = [1, "outgoing", 3, "template"];

/** `I18n.t('conversations.templates.csat_input_message_body')`: a CSAT survey's content when the inbox sets none. */
const CSAT_DEFAULT_MESSAGE = "Please rate the conversation";

/**
 * A CSAT survey's text with its link, as Chatwoot's channels and webhooks send it
 * (`app/presenters/message_content_presenter.rb`): the inbox's message and the link, or, for the default message,
 * `I18n.t('conversations.survey.response', link:)`.
 */
export function withSurveyLink(content: string, link: string): string {
  return content === CSAT_DEFAULT_MESSAGE ? `Please rate this conversation, ${link}` : `${content} ${link}`;
}

/** Outgoing or template, not private, not from the contact, not created by us: judged from the message alone. */
export function looksLikeAgentReply(data: unknown): boolean {
  const message = record(data);
  if (!message) return false;
  if (!SENT_TYPES.includes(message.message_type)) return false;
  if (message.private === true) return false;
  const senderType = str(message.sender_type) ?? str(record(message.sender)?.type);
  if (senderType !== null && senderType.toLowerCase() === "contact") return false;
  return !str(message.source_id)?.startsWith(WAID_PREFIX);
}

/**
 * Reads an agent message out of a Chatwoot event (realtime `message.created` with numeric `message_type`, or a
 * webhook `message_created` with a string one), or out of a REST message with its conversation. Null when it is
 * not one to forward: neither outgoing nor template, private, another inbox, sent by the contact, or created by us
 * (`WAID:` source id).
 */
export function agentMessageOf(data: unknown, inboxId: number): OutboundWork | null {
  const message = record(data);
  if (!message || !looksLikeAgentReply(message)) return null;
  const conversation = record(message.conversation);
  const messageInbox = num(message.inbox_id) ?? num(record(message.inbox)?.id) ?? num(conversation?.inbox_id);
  if (messageInbox !== inboxId) return null;
  const sender = record(message.sender);
  const messageId = num(message.id);
  const conversationId = num(message.conversation_id) ?? num(conversation?.id);
  if (messageId === null || conversationId === null) return null;
  const contactInbox = record(conversation?.contact_inbox);
  const attributes = record(message.content_attributes);
  const attachments: AgentAttachment[] = [];
  for (const entry of Array.isArray(message.attachments) ? message.attachments : []) {
    const attachment = record(entry);
    const dataUrl = str(attachment?.data_url);
    if (dataUrl) {
      attachments.push({
        dataUrl,
        fileType: str(attachment?.file_type) ?? "file",
        extension: str(attachment?.extension),
      });
    }
  }
  // Webhooks carry a CSAT survey's content with its link already; realtime and REST payloads do not.
  const survey =
    message.content_type === "input_csat" && typeof message.message_type === "number"
      ? { survey: { conversationUuid: str(conversation?.uuid) } }
      : {};
  return {
    kind: "agent-message",
    messageId,
    conversationId,
    content: str(message.content) ?? "",
    attachments,
    senderName: str(sender?.available_name) ?? str(sender?.name),
    contactSourceId: str(contactInbox?.source_id),
    inReplyTo: num(attributes?.in_reply_to),
    ...survey,
  };
}

export interface OutboundDeps {
  chatwoot: ChatwootApi;
  media: MediaFetcher;
  mappings: MappingStore;
  gateway: WhatsAppGateway;
  clock: Clock;
  logger: Logger;
  count(event: string): void;
  /** Attachments sent per reply; the rest are not sent and the reply fails, naming the cap. */
  maxAttachments: number;
}

export interface OutboundContext {
  integration: Integration;
  target: ChatwootAccountTarget;
  signal: AbortSignal;
}

/** Chatwoot → WhatsApp: sends an agent reply, part by part, recording each part so a retry never re-sends one. */
export function createOutboundDelivery(deps: OutboundDeps) {
  const { mappings, gateway, chatwoot } = deps;

  /**
   * Where a reply goes: the conversation's contact-inbox JID, except that a LID whose phone JID is known goes to the
   * phone JID (`docs/identity.md`).
   */
  async function replyJidOf(integrationId: string, jid: string | null): Promise<string | null> {
    if (!jid?.endsWith("@lid")) return jid;
    return (await mappings.resolveIdentity(integrationId, jid))?.jid ?? jid;
  }

  async function deliver(ctx: OutboundContext, work: OutboundWork): Promise<void> {
    const integrationId = ctx.integration.id;
    const sent = await mappings.getMessagesByChatwoot(integrationId, work.messageId);
    const jid = await replyJidOf(
      integrationId,
      work.contactSourceId ??
        (await mappings.getChatByConversation(integrationId, work.conversationId))?.chatJid ??
        null,
    );
    if (!jid)
      throw new PermanentDeliveryError(`no WhatsApp chat is known for conversation ${work.conversationId}`);

    let replyTo: string | null = null;
    if (work.inReplyTo !== null) {
      const [quoted] = await mappings.getMessagesByChatwoot(integrationId, work.inReplyTo);
      replyTo = quoted?.waMessageId ?? null;
    }
    // Chatwoot's Markdown as WhatsApp markup, as Chatwoot's own WhatsApp channel sends it.
    const content = toWhatsApp(work.survey ? await withSurvey(ctx, work, work.survey) : work.content);
    // Template messages have no sender, so no signature.
    const text =
      ctx.integration.signMessages && work.senderName ? `*${work.senderName}*:\n${content}` : content;
    // Part 0 is the text, parts 1..n the attachments; each part is recorded as soon as it is sent.
    const parts: Array<() => Promise<WhatsAppSend>> = [];
    const base = { instance: ctx.integration.instance, to: jid, replyTo };
    parts.push(async () => ({ ...base, kind: "text", text }));
    work.attachments.slice(0, deps.maxAttachments).forEach((attachment, index) => {
      parts.push(async () => {
        const file = await deps.media.download(attachment.dataUrl, ctx.signal).catch((error: unknown) => {
          // Over the cap or refused by the network policy: nothing to retry; a failed download may work next time.
          if (error instanceof MediaUnavailableError && error.permanent) {
            throw new PermanentDeliveryError(`attachment ${index + 1}: ${error.message}`);
          }
          throw error;
        });
        const described = describeFile(
          attachment.fileType,
          `${work.messageId}-${index + 1}`,
          file.contentType,
          file.fileName,
        );
        const kind = whatsappKindOf(attachment.fileType, described.mimetype);
        return {
          ...base,
          kind,
          media: { data: file.data, mimetype: described.mimetype, fileName: described.fileName },
          ...(kind === "document" ? { caption: "" } : {}),
        };
      });
    });
    let sentAny = false;
    for (const [part, build] of parts.entries()) {
      if (part === 0 && !content.trim()) continue;
      // Sent already, unless WhatsApp refused it (a retry after an `error` receipt sends those parts again).
      if (sent.some((entry) => entry.part === part && !work.failedWaIds?.includes(entry.waMessageId)))
        continue;
      const result = await gateway.send(await build(), { signal: ctx.signal });
      sentAny = true;
      await mappings.putMessage({
        integrationId,
        waMessageId: result.id,
        part,
        chatwootMessageId: work.messageId,
        conversationId: work.conversationId,
        direction: "outbound",
        createdAt: deps.clock.now(),
      });
    }
    if (!sentAny && sent.length > 0) deps.count("outbound_duplicate_skipped");
    // What fits went out; the rest cannot go, whatever the retries: the agent is told why.
    const total = work.attachments.length;
    if (total > deps.maxAttachments) {
      const cap = deps.maxAttachments;
      throw new PermanentDeliveryError(
        `attachments ${cap + 1} to ${total} not sent: a reply carries at most ${cap} attachments`,
      );
    }
    // Chatwoot's "retry" left the message failed; it is delivered now.
    if (work.retry && sentAny) {
      await chatwoot.updateMessageStatus(
        ctx.target,
        work.conversationId,
        work.messageId,
        { status: "sent" },
        { signal: ctx.signal },
      );
    }
  }

  /**
   * A CSAT survey from a realtime or REST payload gets the link Chatwoot's webhook would carry:
   * `<FRONTEND_URL>/survey/responses/<conversation uuid>`, with the Chatwoot URL the integration uses as FRONTEND_URL.
   */
  async function withSurvey(
    ctx: OutboundContext,
    work: OutboundWork,
    survey: NonNullable<OutboundWork["survey"]>,
  ): Promise<string> {
    const uuid =
      survey.conversationUuid ??
      str(
        record(await chatwoot.getConversation(ctx.target, work.conversationId, { signal: ctx.signal }))?.uuid,
      );
    if (!uuid) {
      deps.logger.warn(
        { instance: ctx.integration.instance, conversationId: work.conversationId },
        "chatwoot: no conversation uuid for the CSAT survey link",
      );
      return work.content;
    }
    const frontendUrl = ctx.integration.baseUrl.replace(/\/+$/, "");
    return withSurveyLink(work.content, `${frontendUrl}/survey/responses/${uuid}`);
  }

  /** After the last attempt: the agent sees `failed` with the reason, and a private note says why. */
  async function reportFailure(ctx: OutboundContext, work: OutboundWork, reason: string): Promise<void> {
    const externalError = `Not delivered to WhatsApp: ${reason}`;
    await chatwoot.updateMessageStatus(ctx.target, work.conversationId, work.messageId, {
      status: "failed",
      externalError,
    });
    await chatwoot.createMessage(ctx.target, work.conversationId, {
      content: shieldFromLiquid(
        `⚠️ The reply (message ${work.messageId}) could not be delivered to WhatsApp: ${reason}. Use "retry" on the message to send it again.`,
      ),
      messageType: "outgoing",
      private: true,
    });
  }

  /** A message deleted in Chatwoot: revoke every part we sent for it. */
  async function revoke(ctx: OutboundContext, work: RevokeWork): Promise<void> {
    const integrationId = ctx.integration.id;
    const sent = (await mappings.getMessagesByChatwoot(integrationId, work.messageId)).filter(
      (entry) => entry.direction === "outbound",
    );
    const jid = await replyJidOf(
      integrationId,
      work.contactSourceId ??
        (await mappings.getChatByConversation(integrationId, work.conversationId))?.chatJid ??
        null,
    );
    if (!jid || sent.length === 0) return deps.count("revoke_nothing_sent");
    for (const entry of sent) {
      await gateway.send(
        { instance: ctx.integration.instance, to: jid, kind: "revoke", targetId: entry.waMessageId },
        { signal: ctx.signal },
      );
    }
  }

  return { deliver, reportFailure, revoke };
}

/** A failure that retrying cannot fix. */
export class PermanentDeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PermanentDeliveryError";
  }
}
