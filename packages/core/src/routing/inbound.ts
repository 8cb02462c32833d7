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
import type { ChatMapping, IdentityLink, MappingStore } from "../store/ports.js";
import type { WhatsAppMessage } from "./events.js";
import { type Addresses, addressesOf, brazilOtherJid, contactPhoneOf, phoneFormsOf } from "./identity.js";
import { shieldFromLiquid } from "./markdown.js";
import { describeFile, type MediaFetcher, MediaUnavailableError } from "./media.js";
import { chatJidOf, type IdentityWork, type InboundWork, phoneOf, waSourceId } from "./work.js";

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
  /** Brazil's mobile numbers with and without the 9th digit are one person (`docs/identity.md`). */
  brazilNinthDigit: boolean;
}

/**
 * The chat mappings a message may belong to. A private chat's person can be known by a phone JID (`pn`, in
 * Brazil under either form) and a LID, each possibly with a mapping of its own (`pnChat`, `lidChat`); `learned`: the
 * message linked the two and the link is not stored yet. Other chats (groups) have `plain` only.
 */
interface ChatLookup {
  jid: string;
  addresses: Addresses;
  learned: boolean;
  pnChat: ChatMapping | null;
  lidChat: ChatMapping | null;
  plain: ChatMapping | null;
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
  /** The outbox chat key the work was queued under (`in:<jid>`). */
  chatKey?: string;
  signal: AbortSignal;
}

/**
 * Thrown for a message queued under its LID before the LID's phone JID was known: it is queued again under the phone
 * JID's chat key, so that one person's deliveries (and the merge of their chats) never run side by side.
 */
export class MoveToChat extends Error {
  constructor(readonly chatKey: string) {
    super(`moved to ${chatKey}`);
    this.name = "MoveToChat";
  }
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
    const phone = group ? null : contactPhoneOf(jid, deps.brazilNinthDigit);
    const phones = group ? [] : phoneFormsOf(jid, deps.brazilNinthDigit);
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
    if (phones.length > 1) {
      // A Brazilian mobile number: a contact saved under the other form (an agent typed the number with its 9th
      // digit, WhatsApp's JID lacks it) is the same person. Chatwoot would not refuse a second contact for it.
      const saved = await findByPhone(ctx, phones);
      if (saved) {
        await attachOrFind(ctx, saved.id, jid);
        deps.count("contact_found_by_phone");
        return saved.id;
      }
    }
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
        contact.identifier === jid || (!!contact.phone_number && phones.includes(contact.phone_number));
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

  /**
   * A contact whose phone number is one of `phones`. One search: Chatwoot's search matches substrings, and the last 8
   * digits are common to every form (both Brazilian forms of a number end with the same subscriber digits).
   */
  async function findByPhone(ctx: InboundContext, phones: string[]): Promise<{ id: number } | null> {
    if (phones.length === 0) return null;
    const found = await chatwoot.searchContacts(ctx.target, phones[0]!.slice(-8), { signal: ctx.signal });
    for (const phone of phones) {
      const match = found.find((contact) => contact.phone_number === phone);
      if (match) return match;
    }
    return null;
  }

  /** Gives a contact our contact inbox for `sourceId`, unless another contact holds it already (then that one). */
  async function attachOrFind(ctx: InboundContext, contactId: number, sourceId: string): Promise<number> {
    const options = { signal: ctx.signal };
    const owner = await chatwoot.findContactBySourceId(ctx.target, ctx.inboxId, sourceId, options);
    if (owner) return owner.id;
    await chatwoot.attachContactInbox(ctx.target, contactId, { inboxId: ctx.inboxId, sourceId }, options);
    return contactId;
  }

  /**
   * The mappings a message may belong to, read together: the chat itself, and for a private chat its phone JID (both
   * Brazilian forms) and LID, completed by the stored link when the message carries one form only.
   */
  async function lookupChat(ctx: InboundContext, message: WhatsAppMessage): Promise<ChatLookup> {
    const integrationId = ctx.integration.id;
    const jid = chatJidOf(message);
    const given = addressesOf(message);
    if (!given.pn && !given.lid) {
      const plain = await mappings.getChat(integrationId, jid);
      return { jid, addresses: given, learned: false, pnChat: null, lidChat: null, plain };
    }
    return lookupPerson(integrationId, jid, given, ctx.enqueuedAt);
  }

  /**
   * Whether a LID and phone JID a message carries are older news than the stored link of that LID: another number
   * was linked to it after the message was queued (`ingest` stores each `contact.identity` at once; a delivery stores
   * what it learned as of the time its work was queued), so the person changed numbers since and the newest link
   * stays (`docs/identity.md`). Queued in the same millisecond, the message counts as the newer.
   */
  const outdatedPair = (link: IdentityLink | null, given: Addresses, queuedAt: Date) =>
    !!link &&
    link.lid === given.lid &&
    link.jid !== given.pn &&
    link.createdAt.getTime() > queuedAt.getTime();

  async function lookupPerson(
    integrationId: string,
    jid: string,
    given: Addresses,
    queuedAt: Date,
  ): Promise<ChatLookup> {
    const read = (address: string | null) =>
      address ? mappings.getChat(integrationId, address) : Promise.resolve(null);
    const pnOther = given.pn && deps.brazilNinthDigit ? brazilOtherJid(given.pn) : null;
    const [link, pnChat, pnOtherChat, lidChat] = await Promise.all([
      mappings.resolveIdentity(integrationId, (given.lid ?? given.pn)!),
      read(given.pn),
      read(pnOther),
      read(given.lid),
    ]);
    // A message of the old number, sent before the change: the old number's alone (no link, no LID chat joined).
    const outdated = !!given.pn && !!given.lid && outdatedPair(link, given, queuedAt);
    const addresses = outdated ? { pn: given.pn, lid: null } : { ...given };
    let learned = false;
    if (outdated) deps.count("identity_outdated");
    else if (given.pn && given.lid) learned = link?.jid !== given.pn || link.lid !== given.lid;
    else if (link && given.lid) addresses.pn = link.jid;
    else if (link && given.pn && link.jid === given.pn) addresses.lid = link.lid;
    const lookup: ChatLookup = {
      jid,
      addresses,
      learned,
      pnChat: pnChat ?? pnOtherChat,
      lidChat: outdated ? null : lidChat,
      plain: null,
    };
    // What the link added: the other form's mapping.
    if (!given.pn && addresses.pn) {
      const other = deps.brazilNinthDigit ? brazilOtherJid(addresses.pn) : null;
      lookup.pnChat = (await read(addresses.pn)) ?? (await read(other));
    } else if (!given.lid && addresses.lid) {
      lookup.lidChat = await read(addresses.lid);
    }
    return lookup;
  }

  /** The mapping a lookup settles on without writing anything (edits, reactions and revokes never create a chat). */
  const settled = (lookup: ChatLookup) => lookup.pnChat ?? lookup.lidChat ?? lookup.plain;

  /**
   * Makes one chat of one person: stores a link the message taught, moves a chat first seen by LID to its phone
   * JID (the contact gets its phone number), merges the contacts two forms produced, and creates the chat (contact
   * first) when there is none. Every step can be repeated: a retry, or another process doing the same, ends in the same
   * state (`docs/identity.md`).
   */
  async function ensureChat(
    ctx: InboundContext,
    message: WhatsAppMessage | null,
    lookup: ChatLookup,
  ): Promise<ChatMapping | null> {
    const integrationId = ctx.integration.id;
    const { pn, lid } = lookup.addresses;
    if (lookup.learned && pn && lid) {
      await mappings.linkIdentity({ integrationId, lid, jid: pn, createdAt: deps.clock.now() });
      deps.count("identity_learned");
    }
    const { pnChat, lidChat } = lookup;
    if (pnChat && lidChat) {
      if (pnChat.contactId === lidChat.contactId && lidChat.conversationId === null) return pnChat;
      return mergeChats(ctx, pnChat, lidChat);
    }
    if (lidChat && pn) {
      // First seen by LID, now the phone number is known: the chat moves to the phone JID, with its contact (now
      // given the number) and its conversation; the LID's mapping keeps no conversation of its own.
      const contactId = await givePhone(ctx, lidChat.contactId, pn);
      const moved = await mappings.putChat({
        ...lidChat,
        chatJid: pn,
        contactId,
        updatedAt: deps.clock.now(),
      });
      if (moved.contactId !== contactId) return mergeChats(ctx, moved, { ...lidChat, contactId });
      if (lidChat.contactId !== contactId)
        await mappings.setChatContact(integrationId, lidChat.chatJid, contactId);
      await mappings.setChatConversation(integrationId, lidChat.chatJid, null);
      deps.count("chat_moved_to_phone");
      return moved;
    }
    const known = settled(lookup);
    if (known || !message) return known;
    const jid = pn ?? lid ?? lookup.jid;
    const contactId = await resolveContact(ctx, message, jid);
    return mappings.putChat({
      integrationId,
      chatJid: jid,
      contactId,
      sourceId: jid,
      conversationId: null,
      updatedAt: deps.clock.now(),
    });
  }

  /**
   * Gives a contact known by LID the phone number of its phone JID. When Chatwoot refuses it because another contact
   * has that number (or the contact is gone: merged already), the contact with the number is the person's: the LID's
   * contact is merged into it. A contact gone with no other holding the number was deleted: it is kept, and the
   * conversation open that follows makes it again. Answers the contact to keep.
   */
  async function givePhone(ctx: InboundContext, contactId: number, pn: string): Promise<number> {
    const phone = contactPhoneOf(pn, deps.brazilNinthDigit);
    if (!phone) return contactId;
    try {
      await chatwoot.updateContact(ctx.target, contactId, { phoneNumber: phone }, { signal: ctx.signal });
      return contactId;
    } catch (error) {
      const gone = isChatwootNotFound(error);
      if (!gone && !isChatwootHttpError(error, 422)) throw error;
      const owner = await findByPhone(ctx, phoneFormsOf(pn, deps.brazilNinthDigit));
      if (!owner) {
        // Deleted by an agent, not merged: the chat keeps the contact, and opening its conversation finds it gone and
        // makes the person's contact again (docs/routing.md, "deleted in Chatwoot"), as for any deleted contact.
        if (gone) return contactId;
        deps.logger.warn(
          { instance: ctx.integration.instance, contactId },
          "chatwoot: the contact's phone number was refused",
        );
        return contactId;
      }
      if (!gone && owner.id !== contactId) await mergeContacts(ctx, owner.id, contactId);
      return owner.id;
    }
  }

  /** `contact_merge`, where a mergee that is gone means it was merged already (a retry, or another process). */
  async function mergeContacts(ctx: InboundContext, baseId: number, mergeeId: number): Promise<void> {
    try {
      await chatwoot.mergeContacts(ctx.target, baseId, mergeeId, { signal: ctx.signal });
      deps.count("contacts_merged");
      deps.logger.info(
        { instance: ctx.integration.instance, baseId, mergeeId },
        "chatwoot: merged the contacts of one WhatsApp person",
      );
    } catch (error) {
      if (!isChatwootNotFound(error)) throw error;
    }
  }

  /**
   * The two forms of one person produced two chats: the LID's contact is merged into the phone JID's (the one with
   * the phone number), the person's conversation continues in the phone chat's (or the LID chat's when the phone
   * chat has none open), another open one is resolved, and the LID's mapping points at the kept contact.
   */
  async function mergeChats(
    ctx: InboundContext,
    pnChat: ChatMapping,
    lidChat: ChatMapping,
  ): Promise<ChatMapping> {
    const integrationId = ctx.integration.id;
    if (pnChat.contactId !== lidChat.contactId) await mergeContacts(ctx, pnChat.contactId, lidChat.contactId);
    let conversationId = pnChat.conversationId;
    if (lidChat.conversationId !== null && lidChat.conversationId !== conversationId) {
      if (conversationId === null) {
        conversationId = lidChat.conversationId;
        await mappings.setChatConversation(integrationId, pnChat.chatJid, conversationId);
      } else {
        try {
          await chatwoot.toggleConversationStatus(ctx.target, lidChat.conversationId, "resolved", {
            signal: ctx.signal,
          });
        } catch (error) {
          if (!isChatwootNotFound(error)) throw error;
        }
      }
    }
    if (lidChat.contactId !== pnChat.contactId)
      await mappings.setChatContact(integrationId, lidChat.chatJid, pnChat.contactId);
    await mappings.setChatConversation(integrationId, lidChat.chatJid, null);
    return { ...pnChat, conversationId };
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
    const [mapped, lookup] = await Promise.all([
      mappings.getMessagesByWa(integrationId, message.id),
      lookupChat(ctx, message),
    ]);
    if (mapped.some((entry) => entry.direction === "outbound")) return deps.count("echo_skipped");
    if (mapped.length > 0) {
      // A retry of a message recorded before its attempt failed: what follows the record may not have run.
      if (ctx.retrying) await afterLidOnly(ctx, lookup, mapped[0]!.conversationId, true);
      return deps.count("duplicate_skipped");
    }
    const { pn, lid } = lookup.addresses;
    if (pn && lid && ctx.chatKey === `in:${lid}` && lookup.learned === false && chatJidOf(message) === lid) {
      deps.count("moved_to_phone_chat");
      throw new MoveToChat(`in:${pn}`);
    }
    // History sync (`docs/history.md`): routed like a live message only in the gap after the chat's last routed
    // message (Chatwoot shows messages in the order they were created); older history is imported or skipped.
    const at = message.timestamp ? new Date(message.timestamp) : null;
    const historyJids = [...new Set([pn, lid, lookup.jid].filter((jid): jid is string => !!jid))];
    const historyJid = historyJids[0]!;
    if (message.history && at) {
      const records = await Promise.all(historyJids.map((jid) => mappings.getHistory(integrationId, jid)));
      const floor = Math.max(
        ctx.integration.createdAt.getTime(),
        ...records.map((record) => record.lastRoutedAt?.getTime() ?? 0),
      );
      if (at.getTime() < floor) {
        const history = records.find((record) => record.conversationId !== null) ?? records[0]!;
        return importOlder(ctx, message, lookup, at, historyJid, history.conversationId);
      }
    }
    // A send of ours is recorded right after the gateway returns its id; its echo may arrive a moment earlier.
    if (message.direction === "outgoing" && ctx.echoWaitMs > 0) throw new DeferDelivery(ctx.echoWaitMs);

    const annotation = message.reaction ?? message.edit ?? message.revoke;
    const mappedChat = annotation ? settled(lookup) : await ensureChat(ctx, message, lookup);
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
    const record = async (delivered: Delivered) => {
      await mappings.putMessage({
        integrationId,
        waMessageId: message.id,
        part: 0,
        chatwootMessageId: delivered.messageId,
        conversationId: delivered.conversationId,
        direction: "inbound",
        createdAt: deps.clock.now(),
      });
      // The chat's last routed message moves on: a history message older than this one is not in the gap any more.
      await mappings.recordHistory(integrationId, historyJid, {
        routedAt: at ?? deps.clock.now(),
        ...(message.history ? { imported: 1 } : {}),
      });
      if (message.history) await historyDone(ctx, "history_routed");
    };
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
        return await afterLidOnly(ctx, lookup, chat.conversationId);
      } catch (error) {
        // The conversation was deleted in Chatwoot (alone, or with its contact): start a new one, once.
        if (!isChatwootNotFound(error) || annotation) throw error;
        await mappings.setChatConversation(integrationId, chat.chatJid, null);
      }
    }
    const opened = await openConversation(ctx, message, chat, input);
    await record(opened);
    await afterLidOnly(ctx, lookup, opened.conversationId);
  }

  /**
   * A history message older than the chat's last routed message (or than the integration): imported as a private note
   * into the chat's resolved history conversation when the integration asks for its age (`importHistoryDays`), else
   * skipped. A private outgoing note never reopens the conversation (Chatwoot's `Message#reopen_conversation` returns
   * unless the message is incoming, app/models/message.rb) and is never sent to WhatsApp; the conversation is created
   * resolved, so no `conversation_resolved` event (CSAT survey, automation) runs for it.
   */
  async function importOlder(
    ctx: InboundContext,
    message: WhatsAppMessage,
    lookup: ChatLookup,
    at: Date,
    historyJid: string,
    conversationId: number | null,
  ): Promise<void> {
    const integrationId = ctx.integration.id;
    const days = ctx.integration.importHistoryDays ?? 0;
    const annotation = message.reaction ?? message.edit ?? message.revoke;
    if (days <= 0 || annotation || at.getTime() < deps.clock.now().getTime() - days * DAY_MS) {
      await mappings.recordHistory(integrationId, historyJid, { skipped: 1 });
      return historyDone(ctx, "history_skipped");
    }
    const chat = await ensureChat(ctx, message, lookup);
    if (!chat) throw new Error(`no chat for history message ${message.id}`);
    const sourceId = waSourceId(message.id);
    const input = {
      content: historyNote(message, at),
      messageType: "outgoing" as const,
      private: true,
      sourceId,
    };
    let delivered: Delivered | null = null;
    if (ctx.retrying) {
      // An earlier attempt's outcome is unknown: it may have added the note, or opened the history conversation.
      const candidates =
        conversationId !== null
          ? [conversationId]
          : (
              await chatwoot.listConversationsBySourceId(ctx.target, ctx.inboxId, chat.sourceId, {
                signal: ctx.signal,
              })
            )
              .filter((conversation) => conversation.status === "resolved")
              .map((conversation) => conversation.id);
      for (const candidate of candidates) {
        const found = await findMessage(ctx, candidate, sourceId);
        if (!found) continue;
        delivered = { conversationId: candidate, messageId: found.id };
        if (candidate !== conversationId)
          await mappings.recordHistory(integrationId, historyJid, { conversationId: candidate });
        break;
      }
    }
    if (!delivered && conversationId !== null) {
      try {
        const created = await chatwoot.createMessage(ctx.target, conversationId, input, {
          signal: ctx.signal,
        });
        delivered = { conversationId, messageId: created.id };
      } catch (error) {
        if (!isChatwootNotFound(error)) throw error; // the history conversation was deleted: a new one
      }
    }
    if (!delivered) {
      const conversation = await chatwoot.createConversation(
        ctx.target,
        {
          inboxId: ctx.inboxId,
          contactId: chat.contactId,
          sourceId: chat.sourceId,
          status: "resolved",
          message: input,
        },
        { signal: ctx.signal },
      );
      await mappings.recordHistory(integrationId, historyJid, { conversationId: conversation.id });
      const created =
        conversation.messages?.find((entry) => entry.source_id === sourceId) ??
        (await findMessage(ctx, conversation.id, sourceId));
      if (!created) throw new Error(`conversation ${conversation.id} was opened without message ${sourceId}`);
      delivered = { conversationId: conversation.id, messageId: created.id };
    }
    await mappings.putMessage({
      integrationId,
      waMessageId: message.id,
      part: 0,
      chatwootMessageId: delivered.messageId,
      conversationId: delivered.conversationId,
      direction: "inbound",
      createdAt: deps.clock.now(),
    });
    await mappings.recordHistory(integrationId, historyJid, { imported: 1 });
    await historyDone(ctx, "history_imported");
  }

  /** Counts a delivered history message and logs the integration's progress now and then, and when it caught up. */
  async function historyDone(ctx: InboundContext, outcome: string): Promise<void> {
    deps.count(outcome);
    const progress = await mappings.historyProgress(ctx.integration.id);
    const done = progress.imported + progress.skipped;
    const pending = Math.max(0, progress.queued - done);
    if (pending > 0 && done % HISTORY_LOG_EVERY !== 0) return;
    deps.logger.info(
      { instance: ctx.integration.instance, imported: progress.imported, skipped: progress.skipped, pending },
      pending === 0 ? "whatsapp: history sync caught up" : "whatsapp: history sync progress",
    );
  }

  /**
   * A message by LID alone, delivered into the LID chat's conversation while its link was unknown, may have raced
   * with the merge of the person's two chats (another chat key, or another process): Chatwoot then reopened the
   * conversation the merge resolved, or the merge read the LID chat before this message recorded the conversation it
   * opened (the message that made the LID chat: the merge resolved nothing, and wrote the LID chat's conversation
   * off). When the link is known now and the person's conversation is another one, this message's conversation is
   * resolved, so that one conversation stays open. `retried`: the message was recorded by an earlier attempt that
   * failed after it; its lookup may know the link by now, so only the conversations tell.
   */
  async function afterLidOnly(
    ctx: InboundContext,
    lookup: ChatLookup,
    conversationId: number,
    retried = false,
  ): Promise<void> {
    const { pn, lid } = lookup.addresses;
    // Whether the LID chat existed before this message does not matter: a chat this message made races alike.
    if (!lid || (!retried && pn)) return;
    const link = await mappings.resolveIdentity(ctx.integration.id, lid);
    if (!link) return;
    const person = await mappings.getChat(ctx.integration.id, link.jid);
    if (!person || person.conversationId === null || person.conversationId === conversationId) return;
    await chatwoot.toggleConversationStatus(ctx.target, conversationId, "resolved", { signal: ctx.signal });
    deps.count("late_conversation_resolved");
  }

  /** A link told by `contact.identity`: the person's two chats, when both exist, become one; nothing is created. */
  async function deliverIdentity(ctx: InboundContext, work: IdentityWork): Promise<void> {
    const given = { pn: work.jid, lid: work.lid };
    // `ingest` stored this link before it queued this work, so another stored link of the LID is newer: the person
    // changed numbers while this work waited, and the newer link's own work makes the person's chats one.
    const stored = await mappings.resolveIdentity(ctx.integration.id, work.lid);
    if (stored && stored.lid === work.lid && stored.jid !== work.jid) return deps.count("identity_outdated");
    const lookup = await lookupPerson(ctx.integration.id, work.jid, given, ctx.enqueuedAt);
    if (!lookup.pnChat && !lookup.lidChat) {
      if (lookup.learned)
        await mappings.linkIdentity({
          integrationId: ctx.integration.id,
          lid: work.lid,
          jid: work.jid,
          createdAt: ctx.enqueuedAt,
        });
      return deps.count("identity_without_chat");
    }
    await ensureChat(ctx, null, lookup);
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
      if (work.kind === "identity") return deliverIdentity(ctx, work);
      return work.kind === "message" ? deliverMessage(ctx, work.message) : deliverReceipt(ctx, work);
    },
  };
}

const DAY_MS = 86_400_000;
/** A history progress line in the logs every this many history messages (and when the sync caught up). */
const HISTORY_LOG_EVERY = 100;

/**
 * An imported history message as a private note: who wrote it and when (UTC), then its text; a file is named by its
 * kind (history is imported without files).
 */
function historyNote(message: WhatsAppMessage, at: Date): string {
  const who =
    message.direction === "outgoing"
      ? "You"
      : (message.sender?.name ??
        (message.sender?.jid ? phoneOf(message.sender.jid) : null) ??
        message.chat.name ??
        phoneOf(message.chat.jid) ??
        "Contact");
  const when = at
    .toISOString()
    .replace(/:\d\d\.\d{3}Z$/, " UTC")
    .replace("T", " ");
  const text = message.content?.text ?? message.media?.caption ?? "";
  const file = message.media ? `[${message.media.type === "ptt" ? "voice note" : message.media.type}]` : "";
  const body = [file, text].filter(Boolean).join(" ");
  return shieldFromLiquid(`🕘 ${who}, ${when}:\n${body}`);
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
