import { randomUUID } from "node:crypto";
import type {
  ChatMapping,
  HistoryProgress,
  IdentityLink,
  IntegrationRow,
  Lease,
  MessageMapping,
  OutboxItem,
  OutboxStatus,
  StoragePort,
} from "./ports.js";

/** An outbox item as the memory store keeps it: payload as JSON text (like SQL stores), plus enqueue order. */
export interface MemoryOutboxRecord extends Omit<OutboxItem, "payload"> {
  payload: string;
  /** Enqueue order; FIFO per chat key follows it. */
  seq: number;
}

/** A lease row; `owner` is null once released (the row stays so the epoch keeps increasing). */
export interface MemoryLeaseRecord {
  name: string;
  owner: string | null;
  epoch: number;
  expiresAt: Date;
}

/**
 * What the memory store really holds, for the conformance suite's raw side channel. Read-only by contract:
 * tests inspect it, they do not write through it.
 */
export interface MemoryStoreInternals {
  /** By integration id. */
  readonly integrations: ReadonlyMap<string, Readonly<IntegrationRow>>;
  /** By `integrationId \0 chatJid`. */
  readonly chats: ReadonlyMap<string, Readonly<ChatMapping>>;
  /** By `integrationId \0 waMessageId \0 part`. */
  readonly messages: ReadonlyMap<string, Readonly<MessageMapping>>;
  /** By item id, in enqueue order. */
  readonly outbox: ReadonlyMap<string, Readonly<MemoryOutboxRecord>>;
  /** By lease name. */
  readonly leases: ReadonlyMap<string, Readonly<MemoryLeaseRecord>>;
  /** By `integrationId \0 lid`. */
  readonly identities: ReadonlyMap<string, Readonly<IdentityLink>>;
  /** By `integrationId \0 chatJid`: the last routed WhatsApp timestamp (ms) and the history counts. */
  readonly histories: ReadonlyMap<string, Readonly<MemoryHistoryRecord>>;
}

/** A chat's history record as the memory store keeps it (`routedAt` in ms, 0 when none). */
export interface MemoryHistoryRecord extends HistoryProgress {
  integrationId: string;
  routedAt: number;
  conversationId: number | null;
}

export type MemoryStore = StoragePort & { readonly raw: MemoryStoreInternals };

const UNFINISHED: ReadonlySet<OutboxStatus> = new Set(["pending", "claimed"]);

const key = (...parts: Array<string | number>) => parts.join("\u0000");
const copyDate = (date: Date) => new Date(date.getTime());
const copyNullableDate = (date: Date | null) => (date === null ? null : copyDate(date));

function copyIntegration(row: IntegrationRow): IntegrationRow {
  return {
    ...row,
    provisioningUntil: copyNullableDate(row.provisioningUntil),
    createdAt: copyDate(row.createdAt),
    updatedAt: copyDate(row.updatedAt),
  };
}

const copyChat = (mapping: ChatMapping): ChatMapping => ({
  ...mapping,
  updatedAt: copyDate(mapping.updatedAt),
});
const copyLink = (link: IdentityLink): IdentityLink => ({ ...link, createdAt: copyDate(link.createdAt) });
const copyMessage = (mapping: MessageMapping): MessageMapping => ({
  ...mapping,
  createdAt: copyDate(mapping.createdAt),
});

function toItem(record: MemoryOutboxRecord): OutboxItem {
  const { seq: _seq, payload, ...rest } = record;
  return {
    ...rest,
    payload: JSON.parse(payload) as unknown,
    availableAt: copyDate(record.availableAt),
    claimUntil: copyNullableDate(record.claimUntil),
    createdAt: copyDate(record.createdAt),
  };
}

const toLease = (record: MemoryLeaseRecord & { owner: string }): Lease => ({
  name: record.name,
  owner: record.owner,
  epoch: record.epoch,
  expiresAt: copyDate(record.expiresAt),
});

/**
 * The in-memory reference implementation of every storage port. Each method runs to completion without
 * awaiting in between, so it is atomic with respect to other calls; it returns copies, never its own objects.
 * For tests and single-process development: nothing survives a restart.
 */
export function createMemoryStore(): MemoryStore {
  const integrations = new Map<string, IntegrationRow>();
  const idByInstance = new Map<string, string>();
  const chats = new Map<string, ChatMapping>();
  const messages = new Map<string, MessageMapping>();
  const outbox = new Map<string, MemoryOutboxRecord>();
  const idByDedupeKey = new Map<string, string>();
  const leases = new Map<string, MemoryLeaseRecord>();
  const identities = new Map<string, IdentityLink>();
  const histories = new Map<string, MemoryHistoryRecord>();
  let nextSeq = 1;

  const claimable = (record: MemoryOutboxRecord, now: number) =>
    (record.status === "pending" && record.availableAt.getTime() <= now) ||
    (record.status === "claimed" && record.claimUntil !== null && record.claimUntil.getTime() <= now);

  /** The claimed record held by `owner`, or undefined. */
  const heldBy = (id: string, owner: string) => {
    const record = outbox.get(id);
    return record && record.status === "claimed" && record.claimedBy === owner ? record : undefined;
  };

  /** Depth, dead letters and the oldest due item of one integration's outbox (`null`: every integration's). */
  const outboxCounts = (now: Date, integrationId: string | null) => {
    let depth = 0;
    let dead = 0;
    let oldestDueAt: Date | null = null;
    for (const record of outbox.values()) {
      if (integrationId !== null && record.integrationId !== integrationId) continue;
      if (record.status === "dead") dead++;
      if (!UNFINISHED.has(record.status)) continue;
      depth++;
      if (record.availableAt.getTime() > now.getTime()) continue;
      if (!oldestDueAt || record.createdAt.getTime() < oldestDueAt.getTime()) oldestDueAt = record.createdAt;
    }
    return { depth, dead, oldestDueAt: oldestDueAt && copyDate(oldestDueAt) };
  };
  const removeOutboxRecord = (record: MemoryOutboxRecord) => {
    outbox.delete(record.id);
    idByDedupeKey.delete(key(record.integrationId, record.dedupeKey));
  };

  return {
    raw: { integrations, chats, messages, outbox, leases, identities, histories },

    integrations: {
      async insert(row) {
        if (integrations.has(row.id) || idByInstance.has(row.instance)) return null;
        integrations.set(row.id, copyIntegration(row));
        idByInstance.set(row.instance, row.id);
        return copyIntegration(row);
      },
      async get(instance) {
        const id = idByInstance.get(instance);
        const row = id === undefined ? undefined : integrations.get(id);
        return row ? copyIntegration(row) : null;
      },
      async getById(id) {
        const row = integrations.get(id);
        return row ? copyIntegration(row) : null;
      },
      async list(options = {}) {
        const { afterId, limit } = options;
        const ids = [...integrations.keys()]
          .filter((id) => afterId === undefined || id > afterId)
          .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const page = limit === undefined ? ids : ids.slice(0, Math.max(0, limit));
        return page.map((id) => copyIntegration(integrations.get(id)!));
      },
      async update(id, expectedVersion, patch) {
        const current = integrations.get(id);
        if (!current || current.version !== expectedVersion) return null;
        const changes = Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined));
        const next = copyIntegration({
          ...current,
          ...changes,
          id: current.id,
          instance: current.instance,
          createdAt: current.createdAt,
          version: expectedVersion + 1,
        });
        integrations.set(id, next);
        return copyIntegration(next);
      },
      async delete(id, expectedVersion) {
        const current = integrations.get(id);
        if (!current || (expectedVersion !== undefined && current.version !== expectedVersion)) return false;
        integrations.delete(id);
        idByInstance.delete(current.instance);
        for (const [k, mapping] of chats) if (mapping.integrationId === id) chats.delete(k);
        for (const [k, mapping] of messages) if (mapping.integrationId === id) messages.delete(k);
        for (const [k, link] of identities) if (link.integrationId === id) identities.delete(k);
        for (const [k, entry] of histories) if (entry.integrationId === id) histories.delete(k);
        for (const record of [...outbox.values()])
          if (record.integrationId === id) removeOutboxRecord(record);
        return true;
      },
    },

    mappings: {
      async getChat(integrationId, chatJid) {
        const mapping = chats.get(key(integrationId, chatJid));
        return mapping ? copyChat(mapping) : null;
      },
      async getChatByConversation(integrationId, conversationId) {
        let found: ChatMapping | undefined;
        for (const mapping of chats.values()) {
          if (mapping.integrationId !== integrationId || mapping.conversationId !== conversationId) continue;
          // Several chats pointing at one conversation should not happen; prefer the latest one if it does.
          if (!found || mapping.updatedAt.getTime() > found.updatedAt.getTime()) found = mapping;
        }
        return found ? copyChat(found) : null;
      },
      async putChat(mapping) {
        const k = key(mapping.integrationId, mapping.chatJid);
        const existing = chats.get(k);
        if (existing) return copyChat(existing);
        chats.set(k, copyChat(mapping));
        return copyChat(mapping);
      },
      async setChatConversation(integrationId, chatJid, conversationId) {
        const existing = chats.get(key(integrationId, chatJid));
        if (!existing) return false;
        // The port passes no clock here; the wall clock marks when the mapping last changed.
        chats.set(key(integrationId, chatJid), { ...existing, conversationId, updatedAt: new Date() });
        return true;
      },
      async putMessage(mapping) {
        const k = key(mapping.integrationId, mapping.waMessageId, mapping.part);
        if (messages.has(k)) return false;
        messages.set(k, copyMessage(mapping));
        return true;
      },
      async getMessagesByWa(integrationId, waMessageId) {
        return [...messages.values()]
          .filter((m) => m.integrationId === integrationId && m.waMessageId === waMessageId)
          .sort((a, b) => a.part - b.part)
          .map(copyMessage);
      },
      async getMessagesByChatwoot(integrationId, chatwootMessageId) {
        return [...messages.values()]
          .filter((m) => m.integrationId === integrationId && m.chatwootMessageId === chatwootMessageId)
          .sort((a, b) => a.part - b.part)
          .map(copyMessage);
      },
      async lastMessages(integrationId) {
        const last: Record<MessageMapping["direction"], Date | null> = { inbound: null, outbound: null };
        for (const mapping of messages.values()) {
          if (mapping.integrationId !== integrationId) continue;
          const seen = last[mapping.direction];
          if (!seen || mapping.createdAt.getTime() > seen.getTime())
            last[mapping.direction] = copyDate(mapping.createdAt);
        }
        return last;
      },
      async setChatContact(integrationId, chatJid, contactId) {
        const existing = chats.get(key(integrationId, chatJid));
        if (!existing) return false;
        chats.set(key(integrationId, chatJid), { ...existing, contactId, updatedAt: new Date() });
        return true;
      },
      async linkIdentity(link) {
        const k = key(link.integrationId, link.lid);
        const existing = identities.get(k);
        if (existing && existing.jid === link.jid) return copyLink(existing);
        identities.set(k, copyLink(link));
        return copyLink(link);
      },
      async resolveIdentity(integrationId, address) {
        const byLid = identities.get(key(integrationId, address));
        if (byLid) return copyLink(byLid);
        let found: IdentityLink | undefined;
        for (const link of identities.values()) {
          if (link.integrationId !== integrationId || link.jid !== address) continue;
          if (!found || link.createdAt.getTime() > found.createdAt.getTime()) found = link;
        }
        return found ? copyLink(found) : null;
      },
      async recordHistory(integrationId, chatJid, change) {
        const k = key(integrationId, chatJid);
        const entry = histories.get(k) ?? {
          integrationId,
          routedAt: 0,
          conversationId: null,
          queued: 0,
          imported: 0,
          skipped: 0,
        };
        histories.set(k, {
          integrationId,
          conversationId: change.conversationId ?? entry.conversationId,
          routedAt: Math.max(entry.routedAt, change.routedAt?.getTime() ?? 0),
          queued: entry.queued + (change.queued ?? 0),
          imported: entry.imported + (change.imported ?? 0),
          skipped: entry.skipped + (change.skipped ?? 0),
        });
      },
      async getHistory(integrationId, chatJid) {
        const entry = histories.get(key(integrationId, chatJid));
        const routedAt = entry?.routedAt ?? 0;
        return {
          lastRoutedAt: routedAt > 0 ? new Date(routedAt) : null,
          conversationId: entry?.conversationId ?? null,
        };
      },
      async historyProgress(integrationId) {
        const sum: HistoryProgress = { queued: 0, imported: 0, skipped: 0 };
        for (const entry of histories.values()) {
          if (entry.integrationId !== integrationId) continue;
          sum.queued += entry.queued;
          sum.imported += entry.imported;
          sum.skipped += entry.skipped;
        }
        return sum;
      },
    },

    outbox: {
      async enqueue(input, now) {
        const dedupe = key(input.integrationId, input.dedupeKey);
        const existing = idByDedupeKey.get(dedupe);
        if (existing !== undefined) return { id: existing, duplicate: true };
        const payload = JSON.stringify(input.payload);
        if (payload === undefined) throw new TypeError("outbox payload must be JSON-serialisable");
        const id = randomUUID();
        outbox.set(id, {
          id,
          seq: nextSeq++,
          integrationId: input.integrationId,
          direction: input.direction,
          chatKey: input.chatKey,
          dedupeKey: input.dedupeKey,
          payload,
          status: "pending",
          attempts: 0,
          availableAt: copyDate(input.availableAt ?? now),
          claimedBy: null,
          claimUntil: null,
          lastError: "",
          createdAt: copyDate(now),
        });
        idByDedupeKey.set(dedupe, id);
        return { id, duplicate: false };
      },

      async claim({ owner, limit, claimTtlMs, now, excludeIntegrations = [] }) {
        const at = now.getTime();
        const excluded = new Set(excludeIntegrations);
        // One pass in enqueue order: the first unfinished record of a chat key is its head; a chat key with a
        // live claim anywhere is blocked.
        const heads = new Map<string, MemoryOutboxRecord>();
        const blocked = new Set<string>();
        for (const record of outbox.values()) {
          if (!UNFINISHED.has(record.status)) continue;
          const chat = key(record.integrationId, record.chatKey);
          if (!heads.has(chat)) heads.set(chat, record);
          if (record.status === "claimed" && record.claimUntil !== null && record.claimUntil.getTime() > at) {
            blocked.add(chat);
          }
        }
        const claimed: OutboxItem[] = [];
        for (const [chat, head] of heads) {
          if (claimed.length >= limit) break;
          if (blocked.has(chat) || excluded.has(head.integrationId) || !claimable(head, at)) continue;
          // Taking over an expired claim: the previous attempt ended without an outcome (a crash).
          if (head.status === "claimed") head.attempts += 1;
          head.status = "claimed";
          head.claimedBy = owner;
          head.claimUntil = new Date(at + claimTtlMs);
          claimed.push(toItem(head));
        }
        return claimed;
      },

      async find(integrationId, dedupeKey) {
        const id = idByDedupeKey.get(key(integrationId, dedupeKey));
        const record = id === undefined ? undefined : outbox.get(id);
        return record ? toItem(record) : null;
      },

      async extend(id, owner, claimUntil) {
        const record = heldBy(id, owner);
        if (!record) return false;
        record.claimUntil = copyDate(claimUntil);
        return true;
      },

      async complete(id, owner) {
        const record = heldBy(id, owner);
        if (!record) return false;
        record.status = "done";
        record.claimUntil = null;
        return true;
      },

      async fail(id, owner, { retryAt, error, attempted = true }) {
        const record = heldBy(id, owner);
        if (!record) return false;
        record.status = "pending";
        if (attempted) record.attempts += 1;
        record.availableAt = copyDate(retryAt);
        record.lastError = error;
        record.claimedBy = null;
        record.claimUntil = null;
        return true;
      },

      async markDead(id, owner, error) {
        const record = heldBy(id, owner);
        if (!record) return false;
        record.status = "dead";
        record.lastError = error;
        record.claimUntil = null;
        return true;
      },

      async cancelAll(integrationId, direction) {
        let removed = 0;
        for (const record of [...outbox.values()]) {
          if (record.integrationId !== integrationId || !UNFINISHED.has(record.status)) continue;
          if (direction !== undefined && record.direction !== direction) continue;
          removeOutboxRecord(record);
          removed++;
        }
        return removed;
      },

      async count(integrationId) {
        const counts: Record<OutboxStatus, number> = { pending: 0, claimed: 0, done: 0, dead: 0 };
        for (const record of outbox.values())
          if (record.integrationId === integrationId) counts[record.status]++;
        return counts;
      },

      async deadLetters(integrationId, { limit, before }) {
        const dead = [...outbox.values()].filter(
          (record) => record.integrationId === integrationId && record.status === "dead",
        );
        let below = Number.POSITIVE_INFINITY;
        if (before !== undefined) {
          const anchor = outbox.get(before);
          if (!anchor || anchor.integrationId !== integrationId) return [];
          below = anchor.seq;
        }
        return dead
          .filter((record) => record.seq < below)
          .sort((a, b) => b.seq - a.seq)
          .slice(0, Math.max(0, limit))
          .map(toItem);
      },

      async retryDead(integrationId, id, now) {
        const record = outbox.get(id);
        if (!record || record.integrationId !== integrationId) return "not_found";
        if (record.status !== "dead") return "not_dead";
        // A new place in the enqueue order (behind its chat's queued items), as a new enqueue would get.
        outbox.delete(id);
        outbox.set(id, {
          ...record,
          seq: nextSeq++,
          status: "pending",
          availableAt: copyDate(now),
          claimedBy: null,
          claimUntil: null,
        });
        return "retried";
      },

      async summary(integrationId, now) {
        return outboxCounts(now, integrationId);
      },

      async totals(now) {
        return outboxCounts(now, null);
      },

      async prune({ doneBefore, deadBefore, limit }) {
        const due = [...outbox.values()]
          .filter(
            (record) =>
              (record.status === "done" && record.createdAt.getTime() < doneBefore.getTime()) ||
              (record.status === "dead" && record.createdAt.getTime() < deadBefore.getTime()),
          )
          .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.seq - b.seq)
          .slice(0, Math.max(0, limit));
        for (const record of due) removeOutboxRecord(record);
        return due.length;
      },
    },

    leases: {
      async acquire(name, owner, ttlMs, now) {
        const expiresAt = new Date(now.getTime() + ttlMs);
        const current = leases.get(name);
        if (!current) {
          const record = { name, owner, epoch: 1, expiresAt };
          leases.set(name, record);
          return toLease(record);
        }
        if (current.owner === owner) {
          current.expiresAt = expiresAt;
          return toLease({ ...current, owner });
        }
        // Free (released) or expired: a new owner takes it with the next fencing epoch.
        if (current.owner === null || current.expiresAt.getTime() <= now.getTime()) {
          const record = { name, owner, epoch: current.epoch + 1, expiresAt };
          leases.set(name, record);
          return toLease(record);
        }
        return null;
      },
      async renew(owner, held, ttlMs, now) {
        const renewed: Lease[] = [];
        for (const { name, epoch } of held) {
          const current = leases.get(name);
          if (!current || current.owner !== owner || current.epoch !== epoch) continue;
          current.expiresAt = new Date(now.getTime() + ttlMs);
          renewed.push(toLease({ ...current, owner }));
        }
        return renewed;
      },
      async release(name, owner) {
        const current = leases.get(name);
        if (!current || current.owner !== owner) return false;
        current.owner = null;
        current.expiresAt = new Date(0);
        return true;
      },
      async get(name) {
        const current = leases.get(name);
        return current && current.owner !== null ? toLease({ ...current, owner: current.owner }) : null;
      },
      async list(prefix) {
        return [...leases.values()]
          .filter((lease) => lease.owner !== null && lease.name.startsWith(prefix))
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
          .map((lease) => toLease({ ...lease, owner: lease.owner! }));
      },
    },
  };
}
