// Baileys 7 messages, one per kind, built with Baileys' own `proto` types the way its decoder hands them to
// `messages.upsert`: a `proto.WebMessageInfo` whose key also carries Baileys 7's `remoteJidAlt`/`participantAlt`/
// `addressingMode` (they are not proto fields: Baileys adds them to the key it decodes from the stanza).
import { createHash } from "node:crypto";
import { proto, type WAMessage, type WAMessageKey } from "baileys";
import type { MediaDownloader } from "../media.js";

export const CONTACT_PN = "5511999990001@s.whatsapp.net";
export const CONTACT_LID = "160000000000001@lid";
export const GROUP = "120363025246125888@g.us";
export const PARTICIPANT_PN = "5511988887777@s.whatsapp.net";
export const PARTICIPANT_LID = "170000000000002@lid";
export const NEWSLETTER = "120363999999999999@newsletter";
/** 2026-04-28T10:30:00Z */
export const TIMESTAMP = 1777372200;
export const ISO_TIMESTAMP = "2026-04-28T10:30:00.000Z";

/** Ids of the originals that quotes, edits, revokes and reactions refer to. */
export const ORIGINAL_ID = "3EB0C767D82A1E0F1A2B";

interface Shape {
  id: string;
  remoteJid: string;
  fromMe?: boolean;
  participant?: string;
  remoteJidAlt?: string;
  participantAlt?: string;
  pushName?: string;
  message: Record<string, unknown>;
  timestamp?: number;
}

/** A message as Baileys emits it: `proto.WebMessageInfo.fromObject(...)` plus Baileys 7's key fields. */
export function waMessage(shape: Shape): WAMessage {
  const info = proto.WebMessageInfo.fromObject({
    key: {
      remoteJid: shape.remoteJid,
      fromMe: shape.fromMe ?? false,
      id: shape.id,
      ...(shape.participant ? { participant: shape.participant } : {}),
    },
    message: shape.message,
    messageTimestamp: shape.timestamp ?? TIMESTAMP,
    ...(shape.pushName ? { pushName: shape.pushName } : {}),
    ...(shape.fromMe ? { status: proto.WebMessageInfo.Status.SERVER_ACK } : {}),
  });
  const extras: Partial<WAMessageKey> = {
    addressingMode: [shape.remoteJid, shape.participant].some((jid) => jid?.endsWith("@lid")) ? "lid" : "pn",
  };
  if (shape.remoteJidAlt) extras.remoteJidAlt = shape.remoteJidAlt;
  if (shape.participantAlt) extras.participantAlt = shape.participantAlt;
  Object.assign(info.key!, extras);
  return info as WAMessage;
}

/** A message from the contact (phone-number addressed) in the private chat. */
const fromContact = (id: string, message: Record<string, unknown>, extra: Partial<Shape> = {}) =>
  waMessage({ id, remoteJid: CONTACT_PN, pushName: "João Silva", message, ...extra });

/** The bytes of each media fixture, by message id (what the injected downloader returns). */
export const FILES = new Map<string, Buffer>();
function file(id: string, size: number): { bytes: Buffer; fields: Record<string, unknown> } {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + id.length) & 0xff;
  FILES.set(id, bytes);
  return {
    bytes,
    fields: {
      url: `https://mmg.whatsapp.net/v/t62.7118-24/${id}.enc`,
      directPath: `/v/t62.7118-24/${id}.enc`,
      mediaKey: createHash("sha256").update(`key-${id}`).digest(),
      fileSha256: createHash("sha256").update(bytes).digest(),
      fileEncSha256: createHash("sha256").update(`enc-${id}`).digest(),
      fileLength: size,
    },
  };
}

/** Downloads nothing: answers the fixture's bytes (in two chunks, as a stream would), and counts its calls. */
export function fixtureDownloader(): MediaDownloader & { calls: string[] } {
  const calls: string[] = [];
  const download = async (message: WAMessage) => {
    const id = message.key.id!;
    calls.push(id);
    const bytes = FILES.get(id);
    if (!bytes) throw new Error(`no fixture file for ${id}`);
    const half = Math.floor(bytes.length / 2);
    return (async function* () {
      yield bytes.subarray(0, half);
      yield bytes.subarray(half);
    })();
  };
  return Object.assign(download, { calls });
}

export const IDS = {
  conversation: "3EB0A1B2C3D4E5F60001",
  extendedText: "3EB0A1B2C3D4E5F60002",
  image: "3EB0A1B2C3D4E5F60003",
  video: "3EB0A1B2C3D4E5F60004",
  audio: "3EB0A1B2C3D4E5F60005",
  ptt: "3EB0A1B2C3D4E5F60006",
  document: "3EB0A1B2C3D4E5F60007",
  documentWithCaption: "3EB0A1B2C3D4E5F60008",
  sticker: "3EB0A1B2C3D4E5F60009",
  ptv: "3EB0A1B2C3D4E5F6000A",
  quoted: "3EB0A1B2C3D4E5F6000B",
  edit: "3EB0A1B2C3D4E5F6000C",
  editProtocol: "3EB0A1B2C3D4E5F6000D",
  revoke: "3EB0A1B2C3D4E5F6000E",
  reaction: "3EB0A1B2C3D4E5F6000F",
  reactionRemoved: "3EB0A1B2C3D4E5F60010",
  fromPhone: "3EB0A1B2C3D4E5F60011",
  group: "3EB0A1B2C3D4E5F60012",
  groupLid: "3EB0A1B2C3D4E5F60013",
  lidWithAlt: "3EB0A1B2C3D4E5F60014",
  lidMapped: "3EB0A1B2C3D4E5F60015",
  lidFromPhone: "3EB0A1B2C3D4E5F60016",
  ephemeral: "3EB0A1B2C3D4E5F60017",
  viewOnce: "3EB0A1B2C3D4E5F60018",
  location: "3EB0A1B2C3D4E5F60019",
  contact: "3EB0A1B2C3D4E5F6001A",
  status: "3EB0A1B2C3D4E5F6001B",
  newsletter: "3EB0A1B2C3D4E5F6001C",
  oversized: "3EB0A1B2C3D4E5F6001D",
  groupFromPhone: "3EB0A1B2C3D4E5F6001E",
} as const;

const image = file(IDS.image, 3000);
const video = file(IDS.video, 4000);
const audio = file(IDS.audio, 2500);
const ptt = file(IDS.ptt, 1800);
const document = file(IDS.document, 5000);
const documentWithCaption = file(IDS.documentWithCaption, 4500);
const sticker = file(IDS.sticker, 1200);
const ptv = file(IDS.ptv, 3500);
const viewOnce = file(IDS.viewOnce, 2200);
const groupImage = file(IDS.groupLid, 2600);

/** One Baileys message per kind the bridge knows, each with the id of `IDS`. */
export const fixtures = {
  /** `conversation`: a plain text. */
  conversation: () => fromContact(IDS.conversation, { conversation: "Olá, preciso de ajuda" }),
  /** `extendedTextMessage`: a text with a link preview. */
  extendedText: () =>
    fromContact(IDS.extendedText, {
      extendedTextMessage: {
        text: "veja https://example.com",
        matchedText: "https://example.com",
        title: "Example",
      },
    }),
  image: () =>
    fromContact(IDS.image, {
      imageMessage: { ...image.fields, mimetype: "image/jpeg", caption: "a foto", width: 640, height: 480 },
    }),
  video: () =>
    fromContact(IDS.video, { videoMessage: { ...video.fields, mimetype: "video/mp4", seconds: 3 } }),
  /** `audioMessage` without `ptt`: an audio file. */
  audio: () =>
    fromContact(IDS.audio, { audioMessage: { ...audio.fields, mimetype: "audio/mpeg", seconds: 12 } }),
  /** `audioMessage` with `ptt: true`: a voice note. */
  ptt: () =>
    fromContact(IDS.ptt, {
      audioMessage: { ...ptt.fields, mimetype: "audio/ogg; codecs=opus", ptt: true, seconds: 4 },
    }),
  document: () =>
    fromContact(IDS.document, {
      documentMessage: {
        ...document.fields,
        mimetype: "application/pdf",
        fileName: "contract.pdf",
        title: "contract",
      },
    }),
  /** `documentWithCaptionMessage`: a document with a caption, wrapped as WhatsApp sends it. */
  documentWithCaption: () =>
    fromContact(IDS.documentWithCaption, {
      documentWithCaptionMessage: {
        message: {
          documentMessage: {
            ...documentWithCaption.fields,
            mimetype: "application/pdf",
            fileName: "invoice.pdf",
            caption: "the invoice",
          },
        },
      },
    }),
  sticker: () =>
    fromContact(IDS.sticker, {
      stickerMessage: { ...sticker.fields, mimetype: "image/webp", isAnimated: false },
    }),
  /** `ptvMessage`: a round video note. */
  ptv: () => fromContact(IDS.ptv, { ptvMessage: { ...ptv.fields, mimetype: "video/mp4", seconds: 5 } }),
  /** A reply: `contextInfo.stanzaId` names the quoted message. */
  quoted: () =>
    fromContact(IDS.quoted, {
      extendedTextMessage: {
        text: "sobre isso",
        contextInfo: {
          stanzaId: ORIGINAL_ID,
          participant: CONTACT_PN,
          quotedMessage: { conversation: "Olá, preciso de ajuda" },
        },
      },
    }),
  /** An edit as WhatsApp sends it: `editedMessage` wrapping a `protocolMessage` of type MESSAGE_EDIT. */
  edit: () =>
    fromContact(IDS.edit, {
      editedMessage: {
        message: {
          protocolMessage: {
            key: { remoteJid: CONTACT_PN, fromMe: false, id: ORIGINAL_ID },
            type: proto.Message.ProtocolMessage.Type.MESSAGE_EDIT,
            editedMessage: { conversation: "Olá, preciso de ajuda urgente" },
            timestampMs: (TIMESTAMP + 60) * 1000,
          },
        },
      },
    }),
  /** An edit as a bare `protocolMessage` (an edited caption). */
  editProtocol: () =>
    fromContact(IDS.editProtocol, {
      protocolMessage: {
        key: { remoteJid: CONTACT_PN, fromMe: false, id: ORIGINAL_ID },
        type: proto.Message.ProtocolMessage.Type.MESSAGE_EDIT,
        editedMessage: { imageMessage: { caption: "a nova legenda" } },
      },
    }),
  /** "Deleted for everyone": a `protocolMessage` of type REVOKE. */
  revoke: () =>
    fromContact(IDS.revoke, {
      protocolMessage: {
        key: { remoteJid: CONTACT_PN, fromMe: false, id: ORIGINAL_ID },
        type: proto.Message.ProtocolMessage.Type.REVOKE,
      },
    }),
  reaction: () =>
    fromContact(IDS.reaction, {
      reactionMessage: {
        key: { remoteJid: CONTACT_PN, fromMe: false, id: ORIGINAL_ID },
        text: "👍",
        senderTimestampMs: TIMESTAMP * 1000,
      },
    }),
  /** A reaction taken back: an empty `text`. */
  reactionRemoved: () =>
    fromContact(IDS.reactionRemoved, {
      reactionMessage: { key: { remoteJid: CONTACT_PN, fromMe: false, id: ORIGINAL_ID }, text: "" },
    }),
  /** Sent from the phone (or another linked device): `key.fromMe`, our own push name. */
  fromPhone: () =>
    waMessage({
      id: IDS.fromPhone,
      remoteJid: CONTACT_PN,
      fromMe: true,
      pushName: "Acme Suporte",
      message: { conversation: "Te ligo em 5 minutos" },
    }),
  /** A group message from a participant addressed by phone number. */
  group: () =>
    waMessage({
      id: IDS.group,
      remoteJid: GROUP,
      participant: PARTICIPANT_PN,
      participantAlt: PARTICIPANT_LID,
      pushName: "Maria",
      message: { conversation: "Bom dia!" },
    }),
  /** A group message (an image) from a participant addressed by LID, with the phone number in `participantAlt`. */
  groupLid: () =>
    waMessage({
      id: IDS.groupLid,
      remoteJid: GROUP,
      participant: PARTICIPANT_LID,
      participantAlt: PARTICIPANT_PN,
      pushName: "Maria",
      message: { imageMessage: { ...groupImage.fields, mimetype: "image/png", caption: "olha" } },
    }),
  /** A group message sent from the phone. */
  groupFromPhone: () =>
    waMessage({
      id: IDS.groupFromPhone,
      remoteJid: GROUP,
      participant: "99000000000001@lid",
      fromMe: true,
      pushName: "Acme Suporte",
      message: { conversation: "Bom dia a todos" },
    }),
  /** A private chat addressed by LID, with the phone number in `remoteJidAlt`. */
  lidWithAlt: () =>
    waMessage({
      id: IDS.lidWithAlt,
      remoteJid: CONTACT_LID,
      remoteJidAlt: CONTACT_PN,
      pushName: "João Silva",
      message: { conversation: "pelo LID" },
    }),
  /** A private chat addressed by LID alone (the phone number comes from `lid-mapping.update` or the LID store). */
  lidMapped: () =>
    waMessage({
      id: IDS.lidMapped,
      remoteJid: CONTACT_LID,
      pushName: "João Silva",
      message: { conversation: "só o LID" },
    }),
  /** Sent from the phone into a LID-addressed chat: `remoteJidAlt` there is our own phone number. */
  lidFromPhone: () =>
    waMessage({
      id: IDS.lidFromPhone,
      remoteJid: CONTACT_LID,
      remoteJidAlt: "5511900000000@s.whatsapp.net",
      fromMe: true,
      message: { conversation: "respondendo pelo celular" },
    }),
  /** A disappearing-messages chat: `ephemeralMessage` wraps the text. */
  ephemeral: () =>
    fromContact(IDS.ephemeral, {
      ephemeralMessage: { message: { extendedTextMessage: { text: "some em 7 dias" } } },
    }),
  /** View once: `viewOnceMessageV2` wraps the image. */
  viewOnce: () =>
    fromContact(IDS.viewOnce, {
      viewOnceMessageV2: {
        message: { imageMessage: { ...viewOnce.fields, mimetype: "image/jpeg", viewOnce: true } },
      },
    }),
  location: () =>
    fromContact(IDS.location, {
      locationMessage: {
        degreesLatitude: -23.5505,
        degreesLongitude: -46.6333,
        name: "Escritório",
        address: "Av. Paulista, 1000",
      },
    }),
  contact: () =>
    fromContact(IDS.contact, {
      contactMessage: {
        displayName: "Ana",
        vcard:
          "BEGIN:VCARD\nVERSION:3.0\nFN:Ana\nTEL;type=CELL;waid=5511977776666:+55 11 97777-6666\nEND:VCARD",
      },
    }),
  /** A status update (`status@broadcast`), an image: never downloaded. */
  status: () =>
    waMessage({
      id: IDS.status,
      remoteJid: "status@broadcast",
      participant: CONTACT_PN,
      pushName: "João Silva",
      message: { imageMessage: { ...file(IDS.status, 1000).fields, mimetype: "image/jpeg" } },
    }),
  /** A newsletter (channel) post. */
  newsletter: () =>
    waMessage({ id: IDS.newsletter, remoteJid: NEWSLETTER, message: { conversation: "novidades do canal" } }),
  /** A video that declares more bytes than the cap of the tests (1 MiB). */
  oversized: () =>
    fromContact(IDS.oversized, {
      videoMessage: { ...file(IDS.oversized, 64).fields, fileLength: 5 * 1024 * 1024, mimetype: "video/mp4" },
    }),
} satisfies Record<keyof typeof IDS, () => WAMessage>;
