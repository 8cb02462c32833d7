import type { WhatsAppMessage } from "./events.js";

/**
 * One person's WhatsApp addresses as far as they are known: the phone JID (`<digits>@s.whatsapp.net`) and the LID
 * (`<digits>@lid`). `docs/identity.md` tells the rules.
 */
export interface Addresses {
  pn: string | null;
  lid: string | null;
}

const isLid = (jid: string | null | undefined): jid is string => !!jid && /^\d+(?::\d+)?@lid$/.test(jid);
const isPhoneJid = (jid: string | null | undefined): jid is string =>
  !!jid && /^\d{6,15}(?::\d+)?@s\.whatsapp\.net$/.test(jid);

/**
 * What a private chat's message tells about its person: `chat.jid` (either form), `chat.lid`, and, for the chat's
 * phone JID when `chat.jid` is a LID, `sender.jid` (the rule of `docs/events.md`); an incoming message's `sender.lid`
 * too. Groups and other chats have none.
 */
export function addressesOf(message: WhatsAppMessage): Addresses {
  const { chat, sender } = message;
  if (chat.type !== "private") return { pn: null, lid: null };
  const incoming = message.direction === "incoming";
  const lid =
    [chat.jid, chat.lid, incoming ? sender?.lid : null, incoming ? sender?.jid : null].find(isLid) ?? null;
  const pn = isPhoneJid(chat.jid) ? chat.jid : isLid(chat.jid) && isPhoneJid(sender?.jid) ? sender.jid : null;
  return { pn, lid };
}

/**
 * Brazil's mobile numbers (`+55`, a two-digit area code 11 to 99, a subscriber number of 8 digits starting with 6
 * to 9, or the same with a 9 in front): the other form of `digits` (country code included, no `+`), or null when
 * the number is not one.
 */
export function brazilOtherForm(digits: string): string | null {
  const eight = /^55([1-9][1-9])([6-9]\d{7})$/.exec(digits);
  if (eight) return `55${eight[1]}9${eight[2]}`;
  const nine = /^55([1-9][1-9])9([6-9]\d{7})$/.exec(digits);
  if (nine) return `55${nine[1]}${nine[2]}`;
  return null;
}

/** The digits of a phone JID (no device suffix), or null. */
export function digitsOf(jid: string): string | null {
  return /^(\d{6,15})(?::\d+)?@s\.whatsapp\.net$/.exec(jid)?.[1] ?? null;
}

/** The other Brazilian form of a phone JID (`551188887777@…` ↔ `5511988887777@…`), or null. */
export function brazilOtherJid(jid: string): string | null {
  const digits = digitsOf(jid);
  const other = digits ? brazilOtherForm(digits) : null;
  return other ? `${other}@s.whatsapp.net` : null;
}

/**
 * The E.164 number Chatwoot gets for a phone JID: `+<digits>`; with the Brazilian rule on, a Brazilian mobile number
 * with its 9th digit (the form the number has everywhere but in older WhatsApp JIDs).
 */
export function contactPhoneOf(jid: string, brazilNinthDigit: boolean): string | null {
  const digits = digitsOf(jid);
  if (!digits) return null;
  if (brazilNinthDigit && /^55[1-9][1-9][6-9]\d{7}$/.test(digits)) return `+${brazilOtherForm(digits)}`;
  return `+${digits}`;
}

/** Every phone number a contact for this JID may have been saved under (the Brazilian rule adds the other form). */
export function phoneFormsOf(jid: string, brazilNinthDigit: boolean): string[] {
  const digits = digitsOf(jid);
  if (!digits) return [];
  const other = brazilNinthDigit ? brazilOtherForm(digits) : null;
  return other ? [`+${digits}`, `+${other}`] : [`+${digits}`];
}
