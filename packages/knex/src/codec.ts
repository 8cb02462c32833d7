import type {
  ChatMapping,
  IntegrationPatch,
  IntegrationRow,
  Lease,
  MessageMapping,
  OutboxItem,
} from "@ryze/chatwoot-core/store";
import { COLUMN_LIMITS } from "./migrations.js";

/** A row as the driver returns it. PostgreSQL returns bigint as strings, MySQL/SQLite booleans as 0/1. */
export type Row = Record<string, unknown>;

const number = (value: unknown): number => Number(value);
const nullableNumber = (value: unknown): number | null =>
  value === null || value === undefined ? null : Number(value);
const date = (value: unknown): Date => new Date(Number(value));
const nullableDate = (value: unknown): Date | null =>
  value === null || value === undefined ? null : date(value);
const boolean = (value: unknown): boolean => value === true || Number(value) === 1;
const string = (value: unknown): string => String(value);
const nullableString = (value: unknown): string | null =>
  value === null || value === undefined ? null : String(value);
const millis = (value: Date | null): number | null => (value === null ? null : value.getTime());

/** Refuses values longer than their column instead of letting each database truncate or fail differently. */
export function checkLength(field: string, value: string, max: number): void {
  if (value.length > max) throw new RangeError(`${field} is longer than ${max} characters (${value.length})`);
}

export function checkKey(field: string, value: string): void {
  checkLength(field, value, COLUMN_LIMITS.key);
}

export function integrationFromRow(row: Row): IntegrationRow {
  return {
    id: string(row.id),
    instance: string(row.instance),
    status: string(row.status) as IntegrationRow["status"],
    version: number(row.version),
    baseUrl: string(row.base_url),
    accountId: number(row.account_id),
    apiToken: string(row.api_token),
    webhookSecret: nullableString(row.webhook_secret),
    signingSecret: nullableString(row.signing_secret),
    chatwootVersion: nullableString(row.chatwoot_version),
    inboxId: nullableNumber(row.inbox_id),
    inboxName: string(row.inbox_name),
    chatwootUserId: nullableNumber(row.chatwoot_user_id),
    deliveryMode: string(row.delivery_mode) as IntegrationRow["deliveryMode"],
    signMessages: boolean(row.sign_messages),
    ignoreGroups: boolean(row.ignore_groups),
    startAsPending: boolean(row.start_as_pending),
    reopenResolved: boolean(row.reopen_resolved),
    importHistoryDays: row.import_history_days == null ? 0 : number(row.import_history_days),
    lastError: string(row.last_error),
    provisioningUntil: nullableDate(row.provisioning_until),
    createdAt: date(row.created_at),
    updatedAt: date(row.updated_at),
  };
}

/** Column values for the fields present in `patch` (undefined fields are left alone). */
export function integrationColumns(patch: IntegrationPatch): Row {
  const columns: Row = {};
  const set = (column: string, value: unknown) => {
    if (value !== undefined) columns[column] = value;
  };
  if (patch.baseUrl !== undefined) checkLength("baseUrl", patch.baseUrl, COLUMN_LIMITS.baseUrl);
  if (patch.inboxName !== undefined) checkLength("inboxName", patch.inboxName, COLUMN_LIMITS.inboxName);
  if (patch.chatwootVersion !== undefined && patch.chatwootVersion !== null) {
    checkLength("chatwootVersion", patch.chatwootVersion, COLUMN_LIMITS.chatwootVersion);
  }
  set("status", patch.status);
  set("base_url", patch.baseUrl);
  set("account_id", patch.accountId);
  set("api_token", patch.apiToken);
  set("webhook_secret", patch.webhookSecret);
  set("signing_secret", patch.signingSecret);
  set("chatwoot_version", patch.chatwootVersion);
  set("inbox_id", patch.inboxId);
  set("inbox_name", patch.inboxName);
  set("chatwoot_user_id", patch.chatwootUserId);
  set("delivery_mode", patch.deliveryMode);
  set("sign_messages", patch.signMessages);
  set("ignore_groups", patch.ignoreGroups);
  set("start_as_pending", patch.startAsPending);
  set("reopen_resolved", patch.reopenResolved);
  set("import_history_days", patch.importHistoryDays);
  set("last_error", patch.lastError);
  set(
    "provisioning_until",
    patch.provisioningUntil === undefined ? undefined : millis(patch.provisioningUntil),
  );
  set("updated_at", patch.updatedAt?.getTime());
  return columns;
}

export function integrationInsertColumns(row: IntegrationRow): Row {
  checkLength("id", row.id, COLUMN_LIMITS.integrationId);
  checkKey("instance", row.instance);
  return {
    id: row.id,
    instance: row.instance,
    version: row.version,
    created_at: row.createdAt.getTime(),
    ...integrationColumns(row),
  };
}

export function chatFromRow(row: Row): ChatMapping {
  return {
    integrationId: string(row.integration_id),
    chatJid: string(row.chat_jid),
    contactId: number(row.contact_id),
    sourceId: string(row.source_id),
    conversationId: nullableNumber(row.conversation_id),
    updatedAt: date(row.updated_at),
  };
}

export function chatColumns(mapping: ChatMapping): Row {
  checkKey("chatJid", mapping.chatJid);
  checkLength("sourceId", mapping.sourceId, COLUMN_LIMITS.sourceId);
  return {
    integration_id: mapping.integrationId,
    chat_jid: mapping.chatJid,
    contact_id: mapping.contactId,
    source_id: mapping.sourceId,
    conversation_id: mapping.conversationId,
    updated_at: mapping.updatedAt.getTime(),
  };
}

export function messageFromRow(row: Row): MessageMapping {
  return {
    integrationId: string(row.integration_id),
    waMessageId: string(row.wa_message_id),
    part: number(row.part),
    chatwootMessageId: number(row.chatwoot_message_id),
    conversationId: number(row.conversation_id),
    direction: string(row.direction) as MessageMapping["direction"],
    createdAt: date(row.created_at),
  };
}

export function messageColumns(mapping: MessageMapping): Row {
  checkKey("waMessageId", mapping.waMessageId);
  return {
    integration_id: mapping.integrationId,
    wa_message_id: mapping.waMessageId,
    part: mapping.part,
    chatwoot_message_id: mapping.chatwootMessageId,
    conversation_id: mapping.conversationId,
    direction: mapping.direction,
    created_at: mapping.createdAt.getTime(),
  };
}

export function outboxFromRow(row: Row): OutboxItem {
  return {
    id: string(row.id),
    integrationId: string(row.integration_id),
    direction: string(row.direction) as OutboxItem["direction"],
    chatKey: string(row.chat_key),
    dedupeKey: string(row.dedupe_key),
    payload: JSON.parse(string(row.payload)) as unknown,
    status: string(row.status) as OutboxItem["status"],
    attempts: number(row.attempts),
    availableAt: date(row.available_at),
    claimedBy: nullableString(row.claimed_by),
    claimUntil: nullableDate(row.claim_until),
    lastError: string(row.last_error),
    createdAt: date(row.created_at),
  };
}

export function leaseFromRow(row: Row & { owner: string }): Lease {
  return {
    name: string(row.name),
    owner: row.owner,
    epoch: number(row.epoch),
    expiresAt: date(row.expires_at),
  };
}
