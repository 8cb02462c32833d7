import {
  type ChatwootBridge,
  type IngestResult,
  isBridgeError,
  type Logger,
  type ReceiptStatus,
  type WhatsAppEvent,
} from "@ryze/chatwoot-core";
import {
  type BaileysEventMap,
  isJidBroadcast,
  isJidGroup,
  isJidNewsletter,
  isJidStatusBroadcast,
  isLidUser,
  isPnUser,
  jidNormalizedUser,
  type MessageUserReceiptUpdate,
  toNumber,
  type WAMessage,
  type WAMessageKey,
  type WAMessageUpdate,
} from "baileys";
import { type MediaPart, type ParsedContent, parseContent } from "./content.js";
import { createIdentities, type Identities, type Person } from "./identity.js";
import {
  baileysDownloader,
  createLimiter,
  formatBytes,
  type MediaDownloader,
  MediaSkipped,
  readCapped,
} from "./media.js";
import { type BaileysEventSocket, BoundedMap, type SocketState, stateOf } from "./socket.js";

type ExchangeEvent = Extract<WhatsAppEvent, { event: "message.exchange" }>;
type EnvelopeMessage = ExchangeEvent["data"]["message"];
type EnvelopeMedia = NonNullable<EnvelopeMessage["media"]>;
type StatusEvent = Extract<WhatsAppEvent, { event: "message.status" }>;

export interface AttachBaileysOptions {
  /** Where ingest failures, skipped files and skipped messages are reported. Default: silent. */
  logger?: Logger;
  media?: {
    /** Largest file passed on, in bytes (default 40 MiB, the bridge's own default cap). */
    maxBytes?: number;
    /** Deadline of one download (default 60 s). */
    timeoutMs?: number;
    /** Downloads at once, across chats (default 4). */
    concurrency?: number;
    /** Replaces Baileys' `downloadMediaMessage` (tests, hosts with a media store of their own). */
    download?: MediaDownloader;
  };
  /**
   * Pass the messages of history sync (`messaging-history.set`) to `ingest` too, marked `history: true` (default
   * true): the bridge routes those newer than a chat's last routed message and imports older ones only when the
   * integration asks for it (`importHistoryDays`).
   */
  history?: boolean;
  /** Ask the socket for a group's subject (`groupMetadata`) when no event told it yet (default true). */
  fetchGroupSubjects?: boolean;
  /**
   * Waits before trying `ingest` again when it failed with anything but an invalid event (the store was down):
   * one retry per entry. Default `[500, 2000]`.
   */
  retryDelaysMs?: number[];
}

/** Stops listening; resolves once the events already received are handed to `ingest` (or given up). */
export type DetachBaileys = () => Promise<void>;

/** Baileys' `proto.WebMessageInfo.Status` → the receipt statuses of `docs/events.md`. */
export const RECEIPT_STATUS_OF_BAILEYS: Readonly<Record<number, ReceiptStatus>> = {
  0: "error", // ERROR
  1: "pending", // PENDING
  2: "sent", // SERVER_ACK
  3: "delivered", // DELIVERY_ACK
  4: "read", // READ
  5: "played", // PLAYED
};

const DEFAULT_MAX_BYTES = 40 * 1024 * 1024;

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Feeds a Baileys 7 socket's events to `bridge.ingest(instance, event)` as the envelopes of `docs/events.md`:
 * messages (`messages.upsert`: texts, media with their bytes, quotes, edits, revokes, reactions, messages sent
 * from the phone), receipts (`messages.update`, `message-receipt.update`) and history sync
 * (`messaging-history.set`). LID-addressed chats are given by phone JID whenever it is known (the key's
 * `remoteJidAlt`/`participantAlt`, `lid-mapping.update`, contacts, the socket's LID store).
 *
 * Events of one chat are ingested in the order they came, chats in parallel. A failing `ingest` is logged and
 * never reaches Baileys' event loop. Returns `detach()`.
 */
export function attachBaileys(
  bridge: Pick<ChatwootBridge, "ingest">,
  instance: string,
  socket: BaileysEventSocket,
  options: AttachBaileysOptions = {},
): DetachBaileys {
  const logger = options.logger ?? silent;
  const maxBytes = options.media?.maxBytes ?? DEFAULT_MAX_BYTES;
  const timeoutMs = options.media?.timeoutMs ?? 60_000;
  const download = options.media?.download ?? baileysDownloader(socket, logger);
  const downloads = createLimiter(options.media?.concurrency ?? 4);
  const retryDelaysMs = options.retryDelaysMs ?? [500, 2_000];
  const ingestHistory = options.history ?? true;
  const state: SocketState = stateOf(socket);
  const people: Identities = createIdentities(socket, {
    fetchGroupSubjects: options.fetchGroupSubjects ?? true,
  });

  // One promise chain per chat: its events reach `ingest` in order, whatever a download costs.
  const chains = new Map<string, Promise<void>>();
  function enqueue(chat: string, what: Record<string, unknown>, task: () => Promise<void>): void {
    const previous = chains.get(chat) ?? Promise.resolve();
    const next = previous
      .then(task)
      .catch((error: unknown) =>
        logger.error({ instance, ...what, err: errorText(error) }, "baileys: event not passed to the bridge"),
      );
    chains.set(chat, next);
    void next.then(() => {
      if (chains.get(chat) === next) chains.delete(chat);
    });
  }

  async function ingest(event: WhatsAppEvent, what: Record<string, unknown>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result: IngestResult = await bridge.ingest(instance, event);
        logger.debug({ instance, ...what, ...result }, "baileys: event ingested");
        return;
      } catch (error) {
        const delay = retryDelaysMs[attempt];
        if (delay === undefined || (isBridgeError(error) && error.code === "INVALID_EVENT")) throw error;
        logger.warn({ instance, ...what, err: errorText(error), retryInMs: delay }, "baileys: ingest failed");
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async function fileOf(message: WAMessage, media: MediaPart, id: string): Promise<string | null> {
    try {
      if (media.declaredBytes !== null && media.declaredBytes > maxBytes) {
        throw new MediaSkipped(
          `file larger than the ${formatBytes(maxBytes)} limit (${formatBytes(media.declaredBytes)})`,
        );
      }
      const data = await downloads(async () =>
        readCapped(await download(message, { signal: AbortSignal.timeout(timeoutMs) }), maxBytes),
      );
      return data.toString("base64");
    } catch (error) {
      logger.warn(
        { instance, id, media: media.type, err: errorText(error) },
        "baileys: media not downloaded; the bridge posts the message without the file",
      );
      return null;
    }
  }

  /** The envelope of one message, with its file downloaded. */
  async function envelopeOf(message: WAMessage, content: ParsedContent): Promise<ExchangeEvent> {
    const key = message.key;
    const id = key.id!;
    const remote = key.remoteJid!;
    const outgoing = key.fromMe === true;
    const group = isJidGroup(remote) === true;
    const newsletter = isJidNewsletter(remote) === true;
    const status = isJidStatusBroadcast(remote);
    const pushName = message.pushName || null;

    let chat: EnvelopeMessage["chat"];
    let sender: EnvelopeMessage["sender"] = null;
    if (group || status) {
      const author = outgoing ? null : await people.participant(key);
      chat = { jid: remote, type: group ? "group" : "private" };
      const subject = group ? await people.subject(remote) : null;
      if (subject) chat.name = subject;
      if (author) sender = personEntry(author, pushName ?? people.savedName(author));
    } else if (newsletter) {
      chat = { jid: remote, type: "newsletter" };
    } else {
      const contact = await people.chatPerson(key);
      chat = { jid: contact.jid, type: "private" };
      if (contact.lid && contact.lid !== contact.jid) chat.lid = contact.lid;
      // Our own messages carry our push name: the contact's name is then only the one the account saved.
      const name = people.savedName(contact) ?? (outgoing ? null : pushName);
      if (name) chat.name = name;
      if (!outgoing) sender = personEntry(contact, pushName);
    }

    const envelope: EnvelopeMessage = { id, direction: outgoing ? "outgoing" : "incoming", chat };
    const seconds = message.messageTimestamp ? toNumber(message.messageTimestamp) : 0;
    if (seconds > 0) envelope.timestamp = new Date(seconds * 1000).toISOString();
    if (sender) envelope.sender = sender;
    if (content.text !== undefined && !content.media) envelope.content = { text: content.text };
    if (content.media) {
      const media: EnvelopeMedia = { type: content.media.type };
      if (content.media.mimetype) media.mimetype = content.media.mimetype;
      if (content.media.fileName) media.fileName = content.media.fileName;
      if (content.media.caption) media.caption = content.media.caption;
      // Status updates and newsletters are not routed (`docs/events.md`): their files are never fetched.
      if (!status && !newsletter) {
        const base64 = await fileOf(message, content.media, id);
        if (base64 !== null) media.base64 = base64;
      }
      envelope.media = media;
    }
    if (content.quotedId) envelope.quoted = { id: content.quotedId };
    if (content.edit) envelope.edit = content.edit;
    if (content.revoke) envelope.revoke = content.revoke;
    if (content.reaction) envelope.reaction = content.reaction;
    return { event: "message.exchange", data: { id, message: envelope }, instanceData: { instance } };
  }

  function onMessage(message: WAMessage, origin: "live" | "history"): void {
    const key = message.key;
    if (!key?.id || !key.remoteJid) return;
    const what = { id: key.id, chat: key.remoteJid, origin };
    people.learnKey(key);
    if (key.fromMe && state.sentAnnotations.has(key.id)) {
      logger.debug({ instance, ...what }, "baileys: echo of a revoke or reaction sent by the bridge");
      return;
    }
    if (isJidBroadcast(key.remoteJid) && !isJidStatusBroadcast(key.remoteJid)) {
      logger.debug({ instance, ...what }, "baileys: broadcast list message skipped");
      return;
    }
    const parsed = parseContent(message.message);
    if (!parsed.ok) {
      logger.debug({ instance, ...what, reason: parsed.skipped }, "baileys: message skipped");
      return;
    }
    if (!parsed.content.edit && !parsed.content.revoke && !parsed.content.reaction) {
      state.recent.set(key.id, message);
    }
    enqueue(people.orderingJid(key), what, async () => {
      // Checked again: the gateway records a send's id when Baileys answers, which may follow its echo.
      if (key.fromMe && state.sentAnnotations.has(key.id!)) return;
      const event = await envelopeOf(message, parsed.content);
      // Marked, so that the bridge routes it only into the gap after the chat's last routed message (`docs/history.md`).
      if (origin === "history") event.data.message.history = true;
      await ingest(event, what);
    });
  }

  /** LID → phone JID links already passed on by this attachment (the bridge stores them; once is enough). */
  const announced = new BoundedMap<string, string>(20_000);

  /**
   * WhatsApp linked a LID and a phone JID (Baileys' `lid-mapping.update`, a history sync's `lidPnMappings`): learnt
   * here, and passed on as `contact.identity`, in order with the person's chat, so that the bridge makes one chat of
   * the person's two forms (merging the Chatwoot contacts each form produced).
   */
  function onIdentity(lidJid: string | null | undefined, pnJid: string | null | undefined): void {
    people.pair(lidJid, pnJid);
    const lid = lidJid ? jidNormalizedUser(lidJid) : "";
    const jid = pnJid ? jidNormalizedUser(pnJid) : "";
    if (!isLidUser(lid) || !isPnUser(jid) || people.isMe(jid) || announced.get(lid) === jid) return;
    announced.set(lid, jid);
    const what = { lid, jid };
    enqueue(jid, what, () =>
      ingest({ event: "contact.identity", data: { lid, jid }, instanceData: { instance } }, what),
    );
  }

  function onReceipt(key: WAMessageKey, code: number): void {
    const status = RECEIPT_STATUS_OF_BAILEYS[code];
    // Receipts of messages we sent only: those are the ones a Chatwoot status can follow.
    if (!status || !key.fromMe || !key.id || !key.remoteJid || isJidBroadcast(key.remoteJid)) return;
    const id = key.id;
    const remote = key.remoteJid;
    const what = { id, chat: remote, status };
    people.learnKey(key);
    enqueue(people.orderingJid(key), what, async () => {
      const jid = isJidGroup(remote) || isJidNewsletter(remote) ? remote : (await people.chatPerson(key)).jid;
      const event: StatusEvent = {
        event: "message.status",
        data: { id, chat: { jid }, status, status_code: code },
        instanceData: { instance },
      };
      await ingest(event, what);
    });
  }

  const handlers: { [E in keyof BaileysEventMap]?: (data: BaileysEventMap[E]) => void } = {
    "messages.upsert": ({ messages }) => {
      for (const message of messages) onMessage(message, "live");
    },
    "messages.update": (updates: WAMessageUpdate[]) => {
      for (const { key, update } of updates) {
        if (typeof update.status === "number") onReceipt(key, update.status);
      }
    },
    "message-receipt.update": (updates: MessageUserReceiptUpdate[]) => {
      for (const { key, receipt } of updates) {
        const code = receipt.playedTimestamp
          ? 5
          : receipt.readTimestamp
            ? 4
            : receipt.receiptTimestamp
              ? 3
              : null;
        if (code !== null) onReceipt(key, code);
      }
    },
    "messaging-history.set": ({ messages, contacts, chats, lidPnMappings }) => {
      for (const mapping of lidPnMappings ?? []) onIdentity(mapping.lid, mapping.pn);
      people.learnContacts(contacts);
      people.learnChats(chats);
      if (!ingestHistory) return;
      // Oldest first, so that a chat's history reaches Chatwoot in the order it was written.
      const ordered = messages
        .map((message, index) => ({ message, index, at: toNumber(message.messageTimestamp ?? 0) }))
        .sort((a, b) => a.at - b.at || b.index - a.index);
      for (const { message } of ordered) onMessage(message, "history");
    },
    "lid-mapping.update": ({ lid, pn }) => onIdentity(lid, pn),
    "contacts.upsert": (contacts) => people.learnContacts(contacts),
    "contacts.update": (contacts) => people.learnContacts(contacts),
    "chats.upsert": (chats) => people.learnChats(chats),
    "chats.update": (chats) => people.learnChats(chats),
    "groups.upsert": (groups) => people.learnGroups(groups),
    "groups.update": (groups) => people.learnGroups(groups),
  };

  const subscriptions: Array<() => void> = [];
  for (const [event, handler] of Object.entries(handlers) as Array<
    [keyof BaileysEventMap, (data: unknown) => void]
  >) {
    // Whatever happens here stays here: Baileys' event loop never sees an exception of ours.
    const listener = (data: unknown) => {
      try {
        handler(data);
      } catch (error) {
        logger.error({ instance, event, err: errorText(error) }, "baileys: event not handled");
      }
    };
    socket.ev.on(event, listener);
    subscriptions.push(() => socket.ev.off(event, listener));
  }

  return async function detach() {
    for (const unsubscribe of subscriptions.splice(0)) unsubscribe();
    while (chains.size > 0) await Promise.all([...chains.values()]);
  };
}

function personEntry(person: Person, name: string | null): NonNullable<EnvelopeMessage["sender"]> {
  const entry: NonNullable<EnvelopeMessage["sender"]> = { jid: person.jid };
  if (person.lid && person.lid !== person.jid) entry.lid = person.lid;
  if (name) entry.name = name;
  return entry;
}
