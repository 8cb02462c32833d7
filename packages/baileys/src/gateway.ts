import type { Logger, WhatsAppGateway, WhatsAppSend } from "@ryze/chatwoot-core";
import { type AnyMessageContent, isJidGroup, type WAMessage, type WAMessageKey } from "baileys";
import { type BaileysSendSocket, type SocketState, stateOf } from "./socket.js";

/**
 * The socket the gateway sends through: one socket, or a function giving the current socket of an instance
 * (hosts that reconnect, or run several instances); `null`/`undefined` while it has none.
 */
export type BaileysSocketSource =
  | BaileysSendSocket
  | ((instance: string) => BaileysSendSocket | null | undefined);

export interface BaileysGatewayOptions {
  logger?: Logger;
}

/** A `WhatsAppGateway` over Baileys' `sendMessage`; revokes are supported. */
export interface BaileysGateway extends WhatsAppGateway {
  readonly supportsRevoke: true;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

const bytes = (data: Uint8Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** The key of the message `targetId` in chat `to`: the full key when the message was seen, else a minimal one. */
function targetKey(state: SocketState, to: string, targetId: string, fromMe: boolean): WAMessageKey {
  const known = state.recent.get(targetId)?.key;
  if (!known) return { remoteJid: to, fromMe, id: targetId };
  const key: WAMessageKey = { remoteJid: to, fromMe: known.fromMe === true, id: targetId };
  if (known.participant) key.participant = known.participant;
  return key;
}

/**
 * The message `id` as Baileys' `quoted` option wants it: the message itself when it was seen (its text shows in
 * the quote), else a minimal one that only points at it. A group quote needs the author, so an unknown message
 * of a group is not quoted.
 */
function quotedMessage(state: SocketState, to: string, id: string): WAMessage | null {
  const known = state.recent.get(id);
  // The chat as we send to it: a message seen under the contact's LID is quoted in its phone-number chat.
  if (known) return known.key.remoteJid === to ? known : { ...known, key: { ...known.key, remoteJid: to } };
  if (isJidGroup(to)) return null;
  return { key: { remoteJid: to, fromMe: false, id }, message: { conversation: "" } };
}

function media(message: WhatsAppSend): NonNullable<WhatsAppSend["media"]> {
  if (!message.media) throw new Error(`a ${message.kind} send without media`);
  return message.media;
}

function contentOf(message: WhatsAppSend, state: SocketState): AnyMessageContent {
  const caption = message.caption ? { caption: message.caption } : {};
  switch (message.kind) {
    case "text":
      return { text: message.text ?? "" };
    case "image": {
      const file = media(message);
      return { image: bytes(file.data), mimetype: file.mimetype, ...caption };
    }
    case "video": {
      const file = media(message);
      return { video: bytes(file.data), mimetype: file.mimetype, ...caption };
    }
    case "audio": {
      const file = media(message);
      // An Ogg file (Opus, as a recorded message is) goes as a voice note; anything else as an audio file.
      const voice = /^audio\/ogg\b/i.test(file.mimetype);
      return {
        audio: bytes(file.data),
        mimetype: voice ? "audio/ogg; codecs=opus" : file.mimetype,
        ptt: voice,
      };
    }
    case "document": {
      const file = media(message);
      return {
        document: bytes(file.data),
        mimetype: file.mimetype,
        fileName: file.fileName ?? "file",
        ...caption,
      };
    }
    case "sticker": {
      const file = media(message);
      return { sticker: bytes(file.data), mimetype: file.mimetype };
    }
    case "reaction": {
      if (!message.targetId) throw new Error("a reaction without targetId");
      return {
        react: { text: message.emoji ?? "", key: targetKey(state, message.to, message.targetId, false) },
      };
    }
    case "revoke": {
      if (!message.targetId) throw new Error("a revoke without targetId");
      // The bridge revokes what it sent: our own messages, unless the message was seen otherwise.
      return { delete: targetKey(state, message.to, message.targetId, true) };
    }
    default: {
      const kind: never = message.kind;
      throw new Error(`unsupported send kind ${String(kind)}`);
    }
  }
}

/**
 * A `WhatsAppGateway` (`createChatwootBridge({ gateway })`) that sends with Baileys' `sock.sendMessage` and
 * answers the WhatsApp id (`result.key.id`). Texts, images, videos, audio (Ogg as voice notes), documents,
 * stickers, quoted replies (`replyTo`), reactions and revokes (`{ delete: key }`). The quoted message, and the
 * full key of a reacted or revoked one, come from the recent messages `attachBaileys` saw on the same socket (and
 * the gateway's own sends); an unknown one gets a minimal key.
 */
export function createBaileysGateway(
  source: BaileysSocketSource,
  options: BaileysGatewayOptions = {},
): BaileysGateway {
  const logger = options.logger ?? silent;
  return {
    supportsRevoke: true,
    async send(message, sendOptions) {
      sendOptions?.signal?.throwIfAborted();
      const socket = typeof source === "function" ? source(message.instance) : source;
      if (!socket) throw new Error(`no WhatsApp connection for instance "${message.instance}"`);
      const state = stateOf(socket);
      const content = contentOf(message, state);
      const quoted = message.replyTo ? quotedMessage(state, message.to, message.replyTo) : null;
      if (message.replyTo && !quoted) {
        logger.debug(
          { instance: message.instance, to: message.to, replyTo: message.replyTo },
          "baileys: quoted message unknown in a group, sent without the quote",
        );
      }
      const sent = await socket.sendMessage(message.to, content, quoted ? { quoted } : undefined);
      const id = sent?.key?.id;
      if (!id) throw new Error("WhatsApp answered without a message id");
      if (message.kind === "reaction" || message.kind === "revoke") state.sentAnnotations.set(id, true);
      else state.recent.set(id, sent);
      return { id };
    },
  };
}
