// A Baileys socket without a network: Baileys' own event emitter (`makeEventBuffer`), a recording `sendMessage`
// that answers like Baileys (a `proto.WebMessageInfo` with a fresh `3EB0…` id, and the own-message echo on
// `messages.upsert` when `emitOwnEvents`), `groupMetadata` from a table, and an in-memory LID store.
import {
  type AnyMessageContent,
  type BaileysEventMap,
  type GroupMetadata,
  type MiscMessageGenerationOptions,
  makeEventBuffer,
  proto,
  type WAMessage,
} from "baileys";
import type { BaileysEventSocket, BaileysSendSocket } from "../socket.js";

export const OWN_PN = "5511900000000@s.whatsapp.net";
export const OWN_LID = "99000000000001@lid";

export interface SentCall {
  jid: string;
  content: AnyMessageContent;
  options: MiscMessageGenerationOptions | undefined;
  id: string;
}

const quietLogger = {
  level: "silent",
  child: () => quietLogger,
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export interface FakeSocket extends BaileysEventSocket, BaileysSendSocket {
  ev: ReturnType<typeof makeEventBuffer>;
  user: { id: string; lid: string; name: string };
  /** Every `sendMessage` call, in order. */
  sent: SentCall[];
  /** The next `sendMessage` calls fail with this error. */
  failSends(error: Error | null): void;
  /** Emits a Baileys event as the socket would. */
  emit<E extends keyof BaileysEventMap>(event: E, data: BaileysEventMap[E]): void;
  /** Group subjects `groupMetadata` answers (others: it rejects, as for a group we left). */
  groups: Map<string, string>;
  /** How often `groupMetadata` was called. */
  groupLookups: number;
  /** The socket's LID store (`signalRepository.lidMapping`). */
  lidStore: Map<string, string>;
}

let sequence = 0;

function messageOf(content: AnyMessageContent): proto.IMessage {
  if ("text" in content) return { extendedTextMessage: { text: content.text } };
  if ("image" in content)
    return { imageMessage: { caption: content.caption ?? null, mimetype: content.mimetype ?? null } };
  if ("video" in content)
    return { videoMessage: { caption: content.caption ?? null, mimetype: content.mimetype ?? null } };
  if ("audio" in content)
    return { audioMessage: { ptt: content.ptt ?? false, mimetype: content.mimetype ?? null } };
  if ("document" in content)
    return { documentMessage: { fileName: content.fileName ?? null, mimetype: content.mimetype } };
  if ("sticker" in content) return { stickerMessage: { mimetype: content.mimetype ?? null } };
  if ("react" in content) return { reactionMessage: content.react };
  if ("delete" in content) {
    return { protocolMessage: { type: proto.Message.ProtocolMessage.Type.REVOKE, key: content.delete } };
  }
  return {};
}

export function createFakeSocket(options: { emitOwnEvents?: boolean } = {}): FakeSocket {
  const ev = makeEventBuffer(quietLogger);
  let failure: Error | null = null;
  const socket: FakeSocket = {
    ev,
    user: { id: "5511900000000:7@s.whatsapp.net", lid: "99000000000001:7@lid", name: "Acme" },
    sent: [],
    groups: new Map(),
    groupLookups: 0,
    lidStore: new Map(),
    failSends(error) {
      failure = error;
    },
    emit(event, data) {
      ev.emit(event, data);
    },
    async groupMetadata(jid: string) {
      socket.groupLookups++;
      const subject = socket.groups.get(jid);
      if (!subject) throw new Error("item-not-found");
      return { id: jid, subject, participants: [] } as unknown as GroupMetadata;
    },
    signalRepository: {
      lidMapping: {
        getPNForLID: async (lid: string) => socket.lidStore.get(lid.replace(/:\d+@/, "@")) ?? null,
      },
    },
    async sendMessage(jid: string, content: AnyMessageContent, sendOptions?: MiscMessageGenerationOptions) {
      if (failure) throw failure;
      const id = `3EB0FAKE${(++sequence).toString(16).toUpperCase().padStart(12, "0")}`;
      socket.sent.push({ jid, content, options: sendOptions, id });
      const message = proto.WebMessageInfo.fromObject({
        key: { remoteJid: jid, fromMe: true, id },
        message: messageOf(content),
        messageTimestamp: Math.floor(Date.now() / 1000),
        status: proto.WebMessageInfo.Status.PENDING,
      }) as WAMessage;
      if (options.emitOwnEvents) {
        // Baileys upserts its own sends after the relay, on the next tick.
        process.nextTick(() => ev.emit("messages.upsert", { messages: [message], type: "append" }));
      }
      return message;
    },
  };
  return socket;
}
