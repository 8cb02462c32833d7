import { normalizeMessageContent, proto, toNumber } from "baileys";

/** The media kinds of `docs/events.md`. */
export type MediaType = "image" | "video" | "audio" | "ptt" | "document" | "sticker" | "ptv";

export interface MediaPart {
  type: MediaType;
  mimetype: string | null;
  fileName: string | null;
  caption: string | null;
  /** The size the message declares (`fileLength`), when it does. */
  declaredBytes: number | null;
}

/** What a Baileys message says, in the terms of the envelope. */
export interface ParsedContent {
  text?: string;
  media?: MediaPart;
  quotedId?: string;
  edit?: { targetId: string };
  revoke?: { targetId: string };
  reaction?: { targetId: string; emoji: string };
}

export type Parsed = { ok: true; content: ParsedContent } | { ok: false; skipped: string };

const skip = (skipped: string): Parsed => ({ ok: false, skipped });
const ok = (content: ParsedContent): Parsed => ({ ok: true, content });

type Media =
  | proto.Message.IImageMessage
  | proto.Message.IVideoMessage
  | proto.Message.IAudioMessage
  | proto.Message.IDocumentMessage
  | proto.Message.IStickerMessage;

const str = (value: string | null | undefined): string | null => (value ? value : null);

function declaredBytes(media: Media): number | null {
  if (media.fileLength === null || media.fileLength === undefined) return null;
  const size = toNumber(media.fileLength);
  return Number.isFinite(size) && size > 0 ? size : null;
}

function mediaPart(
  type: MediaType,
  media: Media,
  caption: string | null | undefined,
  fileName?: string | null,
) {
  return {
    type,
    mimetype: str(media.mimetype),
    fileName: str(fileName),
    caption: str(caption),
    declaredBytes: declaredBytes(media),
  } satisfies MediaPart;
}

/** The quoted message's id: `contextInfo.stanzaId` of whichever part of the message carries one. */
function quotedIdOf(content: proto.IMessage): string | undefined {
  for (const value of Object.values(content)) {
    if (typeof value !== "object" || value === null || !("contextInfo" in value)) continue;
    const stanzaId = (value as { contextInfo?: proto.IContextInfo | null }).contextInfo?.stanzaId;
    if (stanzaId) return stanzaId;
  }
  return undefined;
}

/** The text of a message (what an edit replaces the original with, a caption counts). */
function plainText(content: proto.IMessage | null | undefined): string {
  const inner = normalizeMessageContent(content);
  return (
    inner?.conversation ??
    inner?.extendedTextMessage?.text ??
    inner?.imageMessage?.caption ??
    inner?.videoMessage?.caption ??
    inner?.documentMessage?.caption ??
    ""
  );
}

function locationText(location: {
  degreesLatitude?: number | null;
  degreesLongitude?: number | null;
  name?: string | null;
  address?: string | null;
  caption?: string | null;
}): string {
  const lines = [location.name, location.address, location.caption].filter((line): line is string => !!line);
  const where = `https://maps.google.com/?q=${location.degreesLatitude ?? 0},${location.degreesLongitude ?? 0}`;
  return `📍 ${[...lines, where].join("\n")}`;
}

function contactText(contact: proto.Message.IContactMessage): string {
  const phones = [...(contact.vcard ?? "").matchAll(/^TEL[^:]*:(.+)$/gim)].map((match) => match[1]!.trim());
  return [`👤 ${contact.displayName ?? "contact"}`, ...phones].join("\n");
}

/**
 * Reads a Baileys message's content (`WAMessage.message`): the wrappers Baileys unwraps itself (ephemeral, view
 * once, `documentWithCaptionMessage`, `editedMessage`, ...) are unwrapped first. Messages without anything for
 * Chatwoot (protocol messages other than edits and revokes, key distribution, poll votes, ...) are skipped.
 */
export function parseContent(message: proto.IMessage | null | undefined): Parsed {
  const content = normalizeMessageContent(message);
  if (!content) return skip("no message content");
  const protocol = content.protocolMessage;
  if (protocol) {
    const targetId = protocol.key?.id;
    if (protocol.type === proto.Message.ProtocolMessage.Type.REVOKE && targetId) {
      return ok({ revoke: { targetId } });
    }
    if (protocol.type === proto.Message.ProtocolMessage.Type.MESSAGE_EDIT && targetId) {
      return ok({ edit: { targetId }, text: plainText(protocol.editedMessage) });
    }
    return skip(`protocol message of type ${protocol.type ?? "unknown"}`);
  }
  if (content.reactionMessage) {
    const targetId = content.reactionMessage.key?.id;
    if (!targetId) return skip("reaction without a target");
    return ok({ reaction: { targetId, emoji: content.reactionMessage.text ?? "" } });
  }
  const quotedId = quotedIdOf(content);
  const parsed = parseBody(content);
  if (parsed.ok && quotedId) parsed.content.quotedId = quotedId;
  return parsed;
}

function parseBody(content: proto.IMessage): Parsed {
  if (typeof content.conversation === "string") return ok({ text: content.conversation });
  if (content.extendedTextMessage) return ok({ text: content.extendedTextMessage.text ?? "" });
  if (content.imageMessage) {
    return ok({ media: mediaPart("image", content.imageMessage, content.imageMessage.caption) });
  }
  if (content.ptvMessage)
    return ok({ media: mediaPart("ptv", content.ptvMessage, content.ptvMessage.caption) });
  if (content.videoMessage) {
    return ok({ media: mediaPart("video", content.videoMessage, content.videoMessage.caption) });
  }
  if (content.audioMessage) {
    return ok({ media: mediaPart(content.audioMessage.ptt ? "ptt" : "audio", content.audioMessage, null) });
  }
  if (content.documentMessage) {
    const document = content.documentMessage;
    return ok({
      media: mediaPart("document", document, document.caption, document.fileName ?? document.title),
    });
  }
  if (content.stickerMessage) return ok({ media: mediaPart("sticker", content.stickerMessage, null) });
  // Kinds the envelope has no field for are carried as text, so the agent sees them.
  if (content.locationMessage) return ok({ text: locationText(content.locationMessage) });
  if (content.liveLocationMessage) return ok({ text: locationText(content.liveLocationMessage) });
  if (content.contactMessage) return ok({ text: contactText(content.contactMessage) });
  if (content.contactsArrayMessage) {
    return ok({ text: (content.contactsArrayMessage.contacts ?? []).map(contactText).join("\n\n") });
  }
  const poll = content.pollCreationMessage ?? content.pollCreationMessageV2 ?? content.pollCreationMessageV3;
  if (poll) {
    const options = (poll.options ?? []).map((option) => `- ${option.optionName ?? ""}`);
    return ok({ text: [`📊 ${poll.name ?? "poll"}`, ...options].join("\n") });
  }
  const reply =
    content.buttonsResponseMessage?.selectedDisplayText ??
    content.templateButtonReplyMessage?.selectedDisplayText ??
    content.listResponseMessage?.title;
  if (reply) return ok({ text: reply });
  const kind = Object.keys(content).find((key) => key !== "messageContextInfo") ?? "empty";
  return skip(`unsupported message kind ${kind}`);
}
