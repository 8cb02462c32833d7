/**
 * Commands from the inbox (`docs/operations.md`): an agent types `/status`, `/resync` or `/help` as a private note in
 * any conversation of the inbox, and the bridge answers with a private note there. A private note is never sent to
 * WhatsApp (outbound delivery forwards no private message), so a command never leaves Chatwoot either.
 */

export const COMMANDS = ["status", "resync", "help"] as const;
export type CommandName = (typeof COMMANDS)[number];

/** The outbox work of a command: answered once (its dedupe key is the note's id), retried like inbound work. */
export interface CommandWork {
  kind: "command";
  command: CommandName;
  messageId: number;
  conversationId: number;
}

/** How far back `/resync` looks for agent replies that did not reach us. */
export const RESYNC_WINDOW_MS = 60 * 60 * 1000;

const record = (value: unknown): Record<string, unknown> | null =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>) : null;
const num = (value: unknown): number | null =>
  typeof value === "number" && Number.isInteger(value) ? value : null;

/**
 * Whether a Chatwoot message event (realtime `message.created` or webhook `message_created`) may be a command, from
 * the payload alone: a private outgoing note whose text is one of the commands. Who wrote it is checked by
 * {@link commandOf}.
 */
export function looksLikeCommand(data: unknown): boolean {
  const message = record(data);
  if (message?.private !== true) return false;
  if (message.message_type !== 1 && message.message_type !== "outgoing") return false;
  return parseCommand(message.content) !== null;
}

/** `/status`, `/resync`, `/help` (any case, surrounding blanks ignored), alone in the note; else null. */
export function parseCommand(content: unknown): CommandName | null {
  if (typeof content !== "string") return null;
  const match = /^\/([a-z]+)$/i.exec(content.trim());
  const name = match?.[1]?.toLowerCase();
  return (COMMANDS as readonly string[]).includes(name ?? "") ? (name as CommandName) : null;
}

/**
 * The command in a message event of the inbox `inboxId`, when an agent (a user of the account: sender type `User`,
 * never a contact or an agent bot) wrote it; else null.
 */
export function commandOf(data: unknown, inboxId: number): CommandWork | null {
  const message = record(data);
  if (!message || !looksLikeCommand(message)) return null;
  const sender = record(message.sender);
  const senderType = String(message.sender_type ?? sender?.type ?? "").toLowerCase();
  if (senderType !== "user") return null;
  const conversation = record(message.conversation);
  const inbox = num(message.inbox_id) ?? num(record(message.inbox)?.id) ?? num(conversation?.inbox_id);
  if (inbox !== inboxId) return null;
  const messageId = num(message.id);
  const conversationId = num(message.conversation_id) ?? num(conversation?.id);
  if (messageId === null || conversationId === null) return null;
  return { kind: "command", command: parseCommand(message.content)!, messageId, conversationId };
}

/** What `/status` reports. */
export interface CommandStatus {
  instance: string;
  status: string;
  deliveryMode: string;
  realtime: string | null;
  chatwootVersion: string | null;
  depth: number;
  dead: number;
  oldestDueAt: Date | null;
  lastError: string;
}

export function helpText(): string {
  return [
    "WhatsApp bridge commands (type them as a private note):",
    "/status - the integration's state, its realtime link, queued work and dead letters",
    `/resync - fetch agent replies of the last ${RESYNC_WINDOW_MS / 60_000} minutes that did not reach WhatsApp, and send them`,
    "/help - this list",
  ].join("\n");
}

export function statusText(status: CommandStatus, now: Date): string {
  const lines = [
    `WhatsApp bridge status for ${status.instance}:`,
    `- integration: ${status.status} (${status.deliveryMode} delivery)`,
  ];
  if (status.realtime !== null) lines.push(`- realtime link: ${status.realtime}`);
  if (status.chatwootVersion) lines.push(`- Chatwoot version: ${status.chatwootVersion}`);
  const waiting = status.oldestDueAt
    ? `, oldest due for ${Math.max(0, Math.round((now.getTime() - status.oldestDueAt.getTime()) / 1000))} s`
    : "";
  lines.push(`- queued: ${status.depth}${waiting}`);
  lines.push(`- dead letters: ${status.dead}`);
  lines.push(`- last error: ${status.lastError || "none"}`);
  return lines.join("\n");
}

export function resyncText(queued: number): string {
  return queued === 0
    ? "WhatsApp bridge resync: every agent reply of the last hour had already reached the bridge."
    : `WhatsApp bridge resync: ${queued} agent ${queued === 1 ? "reply" : "replies"} queued for WhatsApp.`;
}
