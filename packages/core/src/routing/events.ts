import * as z from "zod";

const jid = z.string().min(3).max(191);

const chatSchema = z.looseObject({
  jid,
  lid: z.string().nullish(),
  name: z.string().nullish(),
  type: z.enum(["private", "group", "newsletter"]).default("private"),
});

const participantSchema = z.looseObject({
  jid: z.string().nullish(),
  lid: z.string().nullish(),
  name: z.string().nullish(),
});

export const mediaTypes = ["image", "video", "audio", "ptt", "document", "sticker", "ptv"] as const;

const mediaSchema = z.looseObject({
  type: z.enum(mediaTypes),
  url: z.string().nullish(),
  base64: z.string().nullish(),
  mimetype: z.string().nullish(),
  fileName: z.string().nullish(),
  caption: z.string().nullish(),
});

const targetSchema = z.looseObject({ targetId: z.string().min(1) });

const messageSchema = z.looseObject({
  id: z.string().min(1).max(191),
  direction: z.enum(["incoming", "outgoing"]),
  timestamp: z.iso.datetime({ offset: true }).optional(),
  chat: chatSchema,
  sender: participantSchema.nullish(),
  content: z.looseObject({ text: z.string().nullish() }).nullish(),
  media: mediaSchema.nullish(),
  quoted: z.looseObject({ id: z.string().min(1) }).nullish(),
  edit: targetSchema.nullish(),
  revoke: targetSchema.nullish(),
  reaction: z.looseObject({ targetId: z.string().min(1), emoji: z.string() }).nullish(),
  /** From WhatsApp's history sync, not a live event (`docs/history.md`). */
  history: z.boolean().nullish(),
});

export const messageExchangeSchema = z.looseObject({
  event: z.literal("message.exchange"),
  data: z.looseObject({ id: z.string().optional(), message: messageSchema }),
  instanceData: z.looseObject({ instance: z.string().optional() }).optional(),
});

export const receiptStatuses = [
  "pending",
  "sent",
  "delivered",
  "received",
  "read",
  "played",
  "error",
] as const;

export const messageStatusSchema = z.looseObject({
  event: z.literal("message.status"),
  data: z.looseObject({
    id: z.string().min(1).max(191),
    chat: z.looseObject({ jid }),
    status: z.enum(receiptStatuses),
    status_code: z.number().int().optional(),
  }),
  instanceData: z.looseObject({ instance: z.string().optional() }).optional(),
});

/** A LID: `<digits>@lid`, without a device suffix. */
export const LID_PATTERN = /^\d{1,30}@lid$/;
/** A phone JID: `<6 to 15 digits>@s.whatsapp.net`, without a device suffix. */
export const PHONE_JID_PATTERN = /^\d{6,15}@s\.whatsapp\.net$/;

/** `contact.identity`: WhatsApp told the host that a LID and a phone JID are one person. */
export const contactIdentitySchema = z.looseObject({
  event: z.literal("contact.identity"),
  data: z.looseObject({
    lid: z.string().regex(LID_PATTERN, { error: 'must be a LID ("<digits>@lid")' }),
    jid: z.string().regex(PHONE_JID_PATTERN, { error: 'must be a phone JID ("<digits>@s.whatsapp.net")' }),
  }),
  instanceData: z.looseObject({ instance: z.string().optional() }).optional(),
});

export const envelopeSchema = z.looseObject({ event: z.string().min(1), data: z.unknown() });

export type MessageExchangeEvent = z.infer<typeof messageExchangeSchema>;
export type MessageStatusEvent = z.infer<typeof messageStatusSchema>;
export type ContactIdentityEvent = z.infer<typeof contactIdentitySchema>;
export type WhatsAppMessage = MessageExchangeEvent["data"]["message"];
export type ReceiptStatus = (typeof receiptStatuses)[number];

/** A WhatsApp event as a host passes it to `ingest` (the envelope of `docs/events.md`). */
export type WhatsAppEvent =
  | z.input<typeof messageExchangeSchema>
  | z.input<typeof messageStatusSchema>
  | z.input<typeof contactIdentitySchema>;
