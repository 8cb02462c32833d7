/** Builders of WhatsApp event envelopes (`docs/events.md`) for tests and benchmarks. */
import type { WhatsAppEvent } from "@ryze/chatwoot-core";

/**
 * A `message.exchange` envelope that `ingest` accepts as it is, and whose message tests may still reshape
 * (add media, an edit, a reaction) before passing it on.
 */
export type TextEvent = Extract<WhatsAppEvent, { event: "message.exchange" }> & {
  data: { id: string; message: Record<string, unknown> };
};

let sequence = 0;
/** A `message.exchange` envelope with a text, from (or, `outgoing`, to) `phone`; ids are unique per process. */
export function textEvent(options: {
  phone: string;
  text: string;
  id?: string;
  direction?: "incoming" | "outgoing";
  name?: string;
  group?: { jid: string; subject: string };
  quoted?: string;
}): TextEvent {
  const id =
    options.id ?? `3EB0${Date.now().toString(16).toUpperCase()}${(sequence++).toString(16).padStart(6, "0")}`;
  const jid = `${options.phone}@s.whatsapp.net`;
  const chat = options.group
    ? { jid: options.group.jid, name: options.group.subject, type: "group" as const }
    : { jid, name: options.name ?? `Customer ${options.phone}`, type: "private" as const };
  return {
    event: "message.exchange" as const,
    data: {
      id,
      message: {
        id,
        direction: options.direction ?? "incoming",
        timestamp: new Date().toISOString(),
        chat,
        sender: { jid, name: options.name ?? `Customer ${options.phone}` },
        content: { text: options.text },
        ...(options.quoted ? { quoted: { id: options.quoted } } : {}),
      },
    },
  };
}
