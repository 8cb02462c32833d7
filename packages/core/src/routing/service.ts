import type * as z from "zod";
import { absentIsMissing, formatIssues } from "../activation/schema.js";
import {
  type ChatwootApi,
  failureClass,
  isChatwootRequestError,
  isTransientFailure,
} from "../chatwoot/index.js";
import { BridgeError, errorMessage } from "../errors/index.js";
import {
  chatwootTargetOf,
  type Integration,
  type IntegrationRepository,
  isProvisioned,
  isServing,
} from "../integrations/index.js";
import type { Clock, Logger } from "../observability/index.js";
import { isStatusSourceId } from "../realtime/status-note.js";
import type { OutboxItem, StoragePort } from "../store/ports.js";
import {
  type CommandWork,
  commandOf,
  helpText,
  looksLikeCommand,
  RESYNC_WINDOW_MS,
  resyncText,
  statusText,
} from "./commands.js";
import { type DispatcherOptions, OutboxDispatcher, type Outcome } from "./dispatcher.js";
import {
  type ContactIdentityEvent,
  contactIdentitySchema,
  envelopeSchema,
  type MessageStatusEvent,
  messageExchangeSchema,
  messageStatusSchema,
  type WhatsAppMessage,
} from "./events.js";
import type { WhatsAppGateway } from "./gateway.js";
import { addressesOf } from "./identity.js";
import { createInboundDelivery, DeferDelivery, MoveToChat } from "./inbound.js";
import { createMediaFetcher, type MediaFetcherOptions } from "./media.js";
import {
  agentMessageOf,
  createOutboundDelivery,
  looksLikeAgentReply,
  PermanentDeliveryError,
} from "./outbound.js";
import { chatJidOf, type InboundWork, type OutboundWork, type RevokeWork, type Work } from "./work.js";

export interface RouterOptions {
  integrations: IntegrationRepository;
  store: StoragePort;
  chatwoot: ChatwootApi;
  gateway: WhatsAppGateway | undefined;
  clock: Clock;
  logger: Logger;
  dispatcher: Pick<
    DispatcherOptions,
    "concurrency" | "claimTtlMs" | "pollIntervalMs" | "owner" | "itemTimeoutMs"
  >;
  /** Agent replies: attachments sent per reply. */
  outbound: { maxAttachments: number };
  retry: DispatcherOptions["retry"];
  /** How long a message sent from this number waits before it is mirrored. */
  echoWaitMs: number;
  /** Media size cap and download deadline. */
  media: MediaFetcherOptions;
  /** One person, one chat (`docs/identity.md`). */
  identity?: { brazilNinthDigit: boolean };
  /** Told how each attempt at an outbox item ended, and of each dead letter (metrics). */
  observe?: RouterObserver;
  /** The realtime link's state of an integration for `/status` (null in webhook mode). */
  realtimeState?: (integration: Integration) => Promise<string | null>;
}

/** What the metrics learn from routing. */
export interface RouterObserver {
  attempt(item: OutboxItem, outcome: Outcome, instance: string | null): void;
  dead(item: OutboxItem, instance: string | null): void;
}

/**
 * What `ingest` answers once the event is stored, or why nothing was stored. `id` is the WhatsApp message id the
 * event is about (`""` for an event kind routing does not know).
 */
export interface IngestResult {
  id: string;
  /** True when this event was already stored (a redelivery); always false when `ignored` is set. */
  duplicate: boolean;
  /**
   * Why the event was not stored, when it was not: `no_integration` (the instance has no integration, or its first
   * activation is still running), `unknown_event` (an event kind that is not routed), `status_broadcast`,
   * `newsletter`, `group_ignored` (a group message and the integration has `ignoreGroups`). Each is counted in
   * `counters()`.
   */
  ignored?: "no_integration" | "unknown_event" | "status_broadcast" | "newsletter" | "group_ignored";
}

const PAUSED_RETRY_MS = 60_000;
const BACKFILL_MARGIN_MS = 30_000;
/** Pages of 20 messages read back per conversation in one backfill (2,000 messages). */
const BACKFILL_MAX_PAGES = 100;

/** A REST message's `created_at` in unix seconds (a number, or an ISO string in some payloads). */
function createdAtOf(message: { created_at?: number | string | undefined }): number {
  return typeof message.created_at === "number"
    ? message.created_at
    : Date.parse(String(message.created_at)) / 1000;
}

/** Message routing both ways: `ingest` and agent events in, the outbox in between, the dispatcher out. */
export function createRouter(options: RouterOptions) {
  const { integrations, store, chatwoot, clock, logger } = options;
  const counters = new Map<string, number>();
  const count = (event: string) => counters.set(event, (counters.get(event) ?? 0) + 1);
  const media = createMediaFetcher(options.media);
  const replyKey = (messageId: number, generation: number) =>
    generation === 0 ? `cw:${messageId}` : `cw:${messageId}:retry:${generation}`;
  /**
   * Where an agent reply's delivery stands, from the outbox (it keeps every item, so this is the record on every
   * process and across restarts, in both delivery modes): null when the reply was never queued here; otherwise the
   * generation of its latest delivery (0: the first, n: the n-th retry) and whether the reply is failed now: that
   * delivery was given up on, or WhatsApp answered an `error` receipt (processed, so Chatwoot shows it failed) for
   * every send of one of its parts. `refused` lists those sends' WhatsApp ids. A delivery still queued is not failed.
   */
  async function replyState(
    integrationId: string,
    messageId: number,
  ): Promise<{ generation: number; failed: boolean; refused: string[] } | null> {
    let latest: OutboxItem | null = null;
    let generation = 0;
    for (; ; generation++) {
      const item = await store.outbox.find(integrationId, replyKey(messageId, generation));
      if (item === null) break;
      latest = item;
    }
    if (latest === null) return null;
    if (latest.status === "pending" || latest.status === "claimed")
      return { generation: generation - 1, failed: false, refused: [] };
    const refused = await refusedByWhatsApp(integrationId, messageId);
    return { generation: generation - 1, failed: latest.status === "dead" || refused.length > 0, refused };
  }
  /** The sends of a reply's parts whose every send got a processed `error` receipt (receipt key `st:<id>:error`). */
  async function refusedByWhatsApp(integrationId: string, messageId: number): Promise<string[]> {
    const sends = (await store.mappings.getMessagesByChatwoot(integrationId, messageId)).filter(
      (entry) => entry.direction === "outbound",
    );
    const refusedIds = new Set<string>();
    for (const entry of sends) {
      const receipt = await store.outbox.find(integrationId, `st:${entry.waMessageId}:error`);
      if (receipt?.status === "done") refusedIds.add(entry.waMessageId);
    }
    const refused: string[] = [];
    for (const part of new Set(sends.map((entry) => entry.part))) {
      const ofPart = sends.filter((entry) => entry.part === part);
      if (ofPart.every((entry) => refusedIds.has(entry.waMessageId)))
        refused.push(...ofPart.map((entry) => entry.waMessageId));
    }
    return refused;
  }
  const inbound = createInboundDelivery({
    chatwoot,
    media,
    mappings: store.mappings,
    clock,
    logger,
    count,
    // A failed reply's other receipts must not hide the failure (nor look like the agent's retry).
    givenUp: async (integrationId, messageId) =>
      (await replyState(integrationId, messageId))?.failed ?? false,
    brazilNinthDigit: options.identity?.brazilNinthDigit ?? true,
  });
  const outbound = options.gateway
    ? createOutboundDelivery({
        chatwoot,
        media,
        mappings: store.mappings,
        gateway: options.gateway,
        clock,
        logger,
        count,
        maxAttachments: options.outbound.maxAttachments,
      })
    : null;
  const { echoWaitMs } = options;

  async function pause(integration: Integration, reason: string): Promise<void> {
    const paused = await integrations.update(integration, { status: "paused", lastError: reason });
    if (paused) logger.warn({ instance: integration.instance, err: reason }, "chatwoot: integration paused");
  }

  function outcomeOf(error: unknown): Outcome {
    if (error instanceof DeferDelivery)
      return { kind: "defer", reason: error.message, afterMs: error.afterMs };
    if (error instanceof PermanentDeliveryError) return { kind: "permanent", error: error.message };
    if (isChatwootRequestError(error)) {
      if (isTransientFailure(error.failure)) return { kind: "retry", error: error.message };
      return { kind: "permanent", error: error.message };
    }
    return { kind: "retry", error: errorMessage(error) };
  }

  async function process(item: OutboxItem, signal: AbortSignal): Promise<Outcome> {
    const integration = await integrations.getById(item.integrationId);
    const outcome = await processFor(integration, item, signal);
    options.observe?.attempt(item, outcome, integration?.instance ?? null);
    return outcome;
  }

  /** Answers an agent's command from the inbox with a private note in the same conversation. */
  async function runCommand(integration: Integration, work: CommandWork, signal: AbortSignal): Promise<void> {
    const target = chatwootTargetOf(integration);
    let content: string;
    if (work.command === "help") content = helpText();
    else if (work.command === "resync") {
      const queued = await backfill(integration, new Date(clock.now().getTime() - RESYNC_WINDOW_MS));
      content = resyncText(queued);
    } else {
      const outbox = await store.outbox.summary(integration.id, clock.now());
      // This command is an unfinished item too: count the others only.
      const summary = { ...outbox, depth: Math.max(0, outbox.depth - 1) };
      if (summary.depth === 0) summary.oldestDueAt = null;
      content = statusText(
        {
          instance: integration.instance,
          status: integration.status,
          deliveryMode: integration.deliveryMode,
          realtime: (await options.realtimeState?.(integration)) ?? null,
          chatwootVersion: integration.chatwootVersion,
          ...summary,
          lastError: integration.lastError,
        },
        clock.now(),
      );
    }
    await chatwoot.createMessage(
      target,
      work.conversationId,
      { content, messageType: "outgoing", private: true },
      { signal },
    );
  }

  async function processFor(
    integration: Integration | null,
    item: OutboxItem,
    signal: AbortSignal,
  ): Promise<Outcome> {
    if (!integration) return { kind: "done" }; // deactivated meanwhile
    if (!isServing(integration)) {
      return { kind: "defer", reason: `integration is ${integration.status}`, afterMs: PAUSED_RETRY_MS };
    }
    const work = item.payload as Work | CommandWork;
    const target = chatwootTargetOf(integration);
    try {
      if (work.kind === "command") await runCommand(integration, work, signal);
      else if (work.kind === "agent-message" || work.kind === "revoke") {
        if (!outbound)
          return { kind: "defer", reason: "no WhatsApp gateway configured", afterMs: PAUSED_RETRY_MS };
        if (work.kind === "revoke") await outbound.revoke({ integration, target, signal }, work);
        else await outbound.deliver({ integration, target, signal }, work);
      } else {
        const age = clock.now().getTime() - item.createdAt.getTime();
        await inbound.deliver(
          {
            integration,
            target,
            inboxId: integration.inboxId,
            retrying: item.attempts > 0,
            enqueuedAt: item.createdAt,
            echoWaitMs: Math.max(0, echoWaitMs - age),
            chatKey: item.chatKey,
            signal,
          },
          work,
        );
      }
      return { kind: "done" };
    } catch (error) {
      if (error instanceof MoveToChat) {
        // Queued by LID before the link was known: the person's work runs in the phone JID's queue, one at a time.
        await enqueue(integration, error.chatKey, `${item.dedupeKey}:moved`, work as Work, "inbound");
        return { kind: "done" };
      }
      if (isChatwootRequestError(error) && failureClass(error.failure) === "CHATWOOT_TOKEN_REJECTED") {
        await pause(
          integration,
          `Chatwoot rejected the stored API token - re-activate the integration. Detail: ${error.message}`,
        );
        // Nothing was created (Chatwoot refused): the work waits for a re-activation, however long it takes.
        return { kind: "defer", reason: error.message, afterMs: PAUSED_RETRY_MS };
      }
      return outcomeOf(error);
    }
  }

  async function onDead(item: OutboxItem, error: string): Promise<void> {
    const integration = await integrations.getById(item.integrationId);
    options.observe?.dead(item, integration?.instance ?? null);
    if (!integration) return;
    const work = item.payload as Work | CommandWork;
    if (work.kind === "revoke" || work.kind === "command") return;
    if (work.kind === "agent-message") {
      await outbound
        ?.reportFailure(
          { integration, target: chatwootTargetOf(integration), signal: new AbortController().signal },
          work,
          error,
        )
        .catch((cause) =>
          logger.error(
            { instance: integration.instance, err: String(cause) },
            "chatwoot: could not report failure",
          ),
        );
      return;
    }
    const what =
      work.kind === "message"
        ? `WhatsApp message ${work.message.id}`
        : work.kind === "identity"
          ? `the link of ${work.lid} to ${work.jid}`
          : `receipt for ${work.waMessageId}`;
    await integrations.update(integration, {
      lastError: `${what} could not be delivered to Chatwoot: ${error}`,
    });
  }

  const dispatcher = new OutboxDispatcher({
    outbox: store.outbox,
    clock,
    logger,
    process,
    onDead,
    retry: options.retry,
    ...options.dispatcher,
  });

  async function enqueue(
    integration: Integration,
    chatKey: string,
    dedupeKey: string,
    work: Work | CommandWork,
    direction: "inbound" | "outbound",
  ) {
    const result = await store.outbox.enqueue(
      { integrationId: integration.id, direction, chatKey, dedupeKey, payload: work },
      clock.now(),
    );
    if (!result.duplicate) dispatcher.wake(integration.id);
    return result;
  }

  /**
   * Validates a WhatsApp event (every event, whatever its instance: a malformed one throws INVALID_EVENT), then
   * stores it durably for the instance's integration; resolves once it is stored, or says why it was not.
   */
  async function ingest(instance: string, event: unknown): Promise<IngestResult> {
    const parsed = parseEvent(event);
    const integration = await integrations.get(instance);
    const ignore = (id: string, reason: NonNullable<IngestResult["ignored"]>): IngestResult => {
      count(reason);
      return { id, duplicate: false, ignored: reason };
    };
    const eventId = parsed === null ? "" : parsed.kind === "identity" ? parsed.data.lid : parsed.data.id;
    if (!isProvisioned(integration)) return ignore(eventId, "no_integration");
    if (parsed === null) return ignore("", "unknown_event");
    if (parsed.kind === "identity") {
      // Stored at once, so that the person's next events already queue as one chat; the work item then makes their
      // chats one (a merge, when both forms have a contact), in order with the chat's messages.
      const { lid, jid } = parsed.data;
      await store.mappings.linkIdentity({ integrationId: integration.id, lid, jid, createdAt: clock.now() });
      const work: InboundWork = { kind: "identity", lid, jid };
      const stored = await enqueue(integration, `in:${jid}`, `id:${lid}:${jid}`, work, "inbound");
      return { id: lid, duplicate: stored.duplicate };
    }
    if (parsed.kind === "status") {
      const { id, chat, status } = parsed.data;
      const work: InboundWork = { kind: "receipt", waMessageId: id, chatJid: chat.jid, status };
      const stored = await enqueue(integration, `in:${chat.jid}`, `st:${id}:${status}`, work, "inbound");
      return { id, duplicate: stored.duplicate };
    }
    const message = parsed.data;
    const ignored =
      message.chat.jid === "status@broadcast"
        ? "status_broadcast"
        : message.chat.type === "newsletter" || message.chat.jid.endsWith("@newsletter")
          ? "newsletter"
          : message.chat.type === "group" && integration.ignoreGroups
            ? "group_ignored"
            : undefined;
    if (ignored) return ignore(message.id, ignored);
    const work: InboundWork = { kind: "message", message };
    const chatKey = await chatKeyOf(integration.id, message);
    const stored = await enqueue(integration, `in:${chatKey}`, `wa:${message.id}`, work, "inbound");
    // History sync progress (`docs/history.md`): queued now, imported or skipped when delivered.
    if (message.history && !stored.duplicate)
      await store.mappings.recordHistory(integration.id, chatKey, { queued: 1 });
    return { id: message.id, duplicate: stored.duplicate };
  }

  /**
   * The chat a message queues in: its phone JID when known (from the message, or for a message that carries a LID
   * only, from the stored link), else its JID; so that one person's messages are delivered one after the other.
   */
  async function chatKeyOf(integrationId: string, message: WhatsAppMessage): Promise<string> {
    const { pn, lid } = addressesOf(message);
    if (!pn && lid) {
      const link = await store.mappings.resolveIdentity(integrationId, lid);
      if (link) return link.jid;
    }
    return chatJidOf(message);
  }

  /** Whether an event could need work, judged from the event alone (no store read). */
  function isRelevantEvent(event: string, data: unknown): boolean {
    const name = eventName(event);
    if (name === "conversation.status_changed") return true;
    if (name === "message.created" && looksLikeCommand(data)) return true;
    return (name === "message.created" || name === "message.updated") && looksLikeAgentReply(data);
  }

  /** An event from Chatwoot (realtime or webhook) for one integration. */
  async function acceptChatwootEvent(integration: Integration, event: string, data: unknown): Promise<void> {
    if (!isProvisioned(integration)) return;
    const name = eventName(event);
    const command = name === "message.created" ? commandOf(data, integration.inboxId) : null;
    if (command) {
      // Answered once: a redelivered note (or both delivery paths) finds the same dedupe key.
      await enqueue(
        integration,
        `cmd:${command.conversationId}`,
        `cmd:${command.messageId}`,
        command,
        "inbound",
      );
      return;
    }
    if (name === "message.created" || name === "message.updated") {
      const work = agentMessageOf(data, integration.inboxId);
      // The bridge's own status conversation has no WhatsApp chat: nothing said there is sent.
      if (!work || isStatusSourceId(work.contactSourceId)) return;
      let dedupeKey = replyKey(work.messageId, 0);
      const attributes = (data as { content_attributes?: { deleted?: unknown } }).content_attributes;
      if (name === "message.updated" && attributes?.deleted === true) {
        if (!options.gateway?.supportsRevoke) return;
        const revoke: RevokeWork = {
          kind: "revoke",
          messageId: work.messageId,
          conversationId: work.conversationId,
          contactSourceId: work.contactSourceId,
        };
        await enqueue(integration, `out:${work.conversationId}`, `${dedupeKey}:revoke`, revoke, "outbound");
        return;
      }
      if (name === "message.updated") {
        // Chatwoot's "retry" on a failed reply: send it again, once per retry. Webhook payloads carry no status nor
        // previous_changes, so the outbox decides (the reply's last delivery is dead, or WhatsApp refused a part);
        // the generation in the key absorbs redeliveries and the second update a retry makes, and only a new
        // failure opens the next one.
        if (!looksRetried(data)) return;
        const state = await replyState(integration.id, work.messageId);
        if (state === null) {
          // A webhook for a reply we never saw: its message_created did not reach us (Chatwoot marked it failed)
          // and the agent retried it. Delivered as a first delivery; realtime catches up over REST instead. Only
          // the retry's shape counts (`external_error` just cleared, or `content_attributes` emptied), not any
          // other update of an unknown message (e.g. a CSAT rating, which adds `submitted_values`).
          if (event.includes(".") || !clearedByRetry(data)) return;
          const stored = await enqueue(
            integration,
            `out:${work.conversationId}`,
            dedupeKey,
            work,
            "outbound",
          );
          if (!stored.duplicate) count("retry_first_delivery");
          return;
        } else {
          if (!state.failed) return;
          work.retry = state.generation + 1;
          if (state.refused.length > 0) work.failedWaIds = state.refused;
          dedupeKey = replyKey(work.messageId, work.retry);
        }
      }
      await enqueue(integration, `out:${work.conversationId}`, dedupeKey, work, "outbound");
      return;
    }
    if (name === "conversation.status_changed") {
      const conversation = data as { id?: unknown; status?: unknown; inbox_id?: unknown };
      if (conversation.inbox_id !== integration.inboxId || typeof conversation.id !== "number") return;
      if (conversation.status === "resolved" && !integration.reopenResolved) {
        // The next customer message starts a new conversation instead of reopening this one.
        const chat = await store.mappings.getChatByConversation(integration.id, conversation.id);
        if (chat) await store.mappings.setChatConversation(integration.id, chat.chatJid, null);
      }
    }
  }

  /**
   * A conversation's messages back to `cutoff` (unix seconds), oldest first. Chatwoot's messages index answers the
   * latest 20 (`MessageFinder#current_messages`), and 20 older than `before=<id>`: it pages back until a page reaches
   * the cutoff, or the conversation's start (at most `BACKFILL_MAX_PAGES` pages).
   */
  async function messagesSince(
    target: ReturnType<typeof chatwootTargetOf>,
    conversationId: number,
    cutoff: number,
  ): Promise<Awaited<ReturnType<ChatwootApi["listMessages"]>>> {
    let page = await chatwoot.listMessages(target, conversationId);
    const pages = [page];
    for (let count = 1; count < BACKFILL_MAX_PAGES; count++) {
      const oldest = page[0];
      if (!oldest || createdAtOf(oldest) < cutoff) break;
      page = await chatwoot.listMessages(target, conversationId, { beforeId: oldest.id });
      pages.unshift(page);
    }
    return pages.flat();
  }

  /** After a realtime outage: fetches agent replies created since `since` over REST and queues them. */
  async function backfill(integration: Integration, since: Date): Promise<number> {
    if (!isProvisioned(integration)) return 0;
    const target = chatwootTargetOf(integration);
    const windowMs = clock.now().getTime() - since.getTime() + BACKFILL_MARGIN_MS;
    const conversations = await chatwoot.listRecentConversations(
      target,
      integration.inboxId,
      windowMs / 1000,
    );
    const cutoff = (since.getTime() - BACKFILL_MARGIN_MS) / 1000;
    let queued = 0;
    for (const conversation of conversations) {
      // REST conversations carry no contact inbox: take the chat from the mapping (before a resolved conversation
      // is forgotten below) or from the last message's push data.
      const lastMessage = Array.isArray(conversation.messages) ? conversation.messages.at(-1) : undefined;
      const contactSourceId =
        conversation.contact_inbox?.source_id ??
        (await store.mappings.getChatByConversation(integration.id, conversation.id))?.chatJid ??
        sourceIdOfPushData(lastMessage);
      if (conversation.status === "resolved" && !integration.reopenResolved) {
        await acceptChatwootEvent(integration, "conversation.status_changed", {
          id: conversation.id,
          status: conversation.status,
          inbox_id: integration.inboxId,
        });
      }
      const messages = await messagesSince(target, conversation.id, cutoff);
      for (const message of messages) {
        if (createdAtOf(message) < cutoff) continue;
        const work: OutboundWork | null = agentMessageOf(
          {
            ...message,
            conversation_id: conversation.id,
            inbox_id: message.inbox_id ?? integration.inboxId,
            conversation: { ...conversation, contact_inbox: { source_id: contactSourceId ?? null } },
          },
          integration.inboxId,
        );
        if (!work || isStatusSourceId(work.contactSourceId)) continue;
        const stored = await enqueue(
          integration,
          `out:${work.conversationId}`,
          `cw:${work.messageId}`,
          work,
          "outbound",
        );
        if (!stored.duplicate) queued++;
      }
    }
    if (queued > 0)
      logger.info({ instance: integration.instance, queued }, "chatwoot: backfilled agent replies");
    return queued;
  }

  return {
    ingest,
    isRelevantEvent,
    acceptChatwootEvent,
    backfill,
    dispatcher,
    counters: () => Object.fromEntries(counters) as Record<string, number>,
    start: () => dispatcher.start(),
    stop: async (graceMs?: number) => {
      await dispatcher.stop(graceMs);
      await media.close();
    },
  };
}

export type Router = ReturnType<typeof createRouter>;

/** `conversation.contact_inbox.source_id` of a message's push data (the `messages` of a REST conversation). */
function sourceIdOfPushData(message: unknown): string | null {
  const sourceId = (message as { conversation?: { contact_inbox?: { source_id?: unknown } } } | undefined)
    ?.conversation?.contact_inbox?.source_id;
  return typeof sourceId === "string" ? sourceId : null;
}

/** Realtime names are dotted (`message.created`); webhook names use an underscore (`message_created`). */
function eventName(event: string): string {
  return event.includes(".") ? event : event.replace(/^(message|conversation)_/, "$1.");
}

/**
 * Whether an updated message may be one Chatwoot's "retry" put back: not still failed (our own `failed` marking comes
 * back as an update too) and, where the payload has a status (realtime), back to `sent` rather than a receipt's.
 */
function looksRetried(data: unknown): boolean {
  const message = data as { status?: unknown; content_attributes?: { external_error?: unknown } | null };
  if (message.status !== undefined && message.status !== "sent") return false;
  const externalError = message.content_attributes?.external_error;
  return typeof externalError !== "string" || externalError === "";
}

/**
 * Whether an update has the shape of Chatwoot's retry (`MessagesController#retry`): status back to `sent` with
 * `external_error` set to null, then `content_attributes` replaced by `{}`.
 */
function clearedByRetry(data: unknown): boolean {
  const attributes = (data as { content_attributes?: unknown }).content_attributes;
  if (attributes === null || attributes === undefined) return true;
  if (typeof attributes !== "object") return false;
  const record = attributes as Record<string, unknown>;
  return (
    Object.keys(record).length === 0 ||
    (Object.hasOwn(record, "external_error") && record.external_error === null)
  );
}

/** What a valid event carries for routing: a message or a receipt. */
type RoutedEvent =
  | { kind: "identity"; data: ContactIdentityEvent["data"] }
  | { kind: "message"; data: WhatsAppMessage }
  | { kind: "status"; data: MessageStatusEvent["data"] };

/**
 * Validates any value as a WhatsApp event: the envelope, then the whole event of a routed kind. Answers what it
 * carries, or null for a valid event of a kind that is not routed; throws INVALID_EVENT naming the failing paths.
 */
function parseEvent(event: unknown): RoutedEvent | null {
  const envelope = envelopeSchema.safeParse(event, { error: absentIsMissing });
  if (!envelope.success) throw invalidEvent(envelope.error);
  if (envelope.data.event === "message.status") {
    const parsed = messageStatusSchema.safeParse(event, { error: absentIsMissing });
    if (!parsed.success) throw invalidEvent(parsed.error);
    return { kind: "status", data: parsed.data.data };
  }
  if (envelope.data.event === "contact.identity") {
    const parsed = contactIdentitySchema.safeParse(event, { error: absentIsMissing });
    if (!parsed.success) throw invalidEvent(parsed.error);
    return { kind: "identity", data: parsed.data.data };
  }
  if (envelope.data.event === "message.exchange") {
    const parsed = messageExchangeSchema.safeParse(event, { error: absentIsMissing });
    if (!parsed.success) throw invalidEvent(parsed.error);
    return { kind: "message", data: parsed.data.data.message };
  }
  return null;
}

function invalidEvent(error: z.ZodError): BridgeError {
  return new BridgeError("INVALID_EVENT", `invalid event: ${formatIssues(error, "envelope")}`);
}
