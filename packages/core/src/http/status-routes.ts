import type { InstanceDirectory, Principal } from "../directory/index.js";
import { BridgeError, MESSAGES } from "../errors/index.js";
import { mapLimited } from "../limited.js";
import type { Clock } from "../observability/index.js";
import type { IntegrationRow, OutboxItem, StoragePort } from "../store/ports.js";
import type { CallerChecks } from "./caller.js";
import { json } from "./response.js";
import { defineRoute, type Route } from "./routes.js";

/** What the status route shows of an integration's live state, read locally (no call to Chatwoot). */
export interface LiveState {
  /** The stored status, or `error` when a live problem is known (e.g. the realtime link is down). */
  status: "active" | "paused" | "error";
  lastError: string;
  /**
   * The realtime link's state (`connected`, `connecting`, `disconnected`, `deaf`, `remote`: another process holds it,
   * `none`: no process does), or null in webhook delivery mode.
   */
  realtime: string | null;
}

export interface StatusRoutesOptions {
  caller: CallerChecks;
  directory: InstanceDirectory;
  store: Pick<StoragePort, "integrations" | "outbox" | "mappings">;
  clock: Clock;
  /** The live state of a provisioned integration, as `list` reads it, without the check against Chatwoot. */
  live(row: IntegrationRow): Promise<LiveState>;
}

/** `limit` of `GET dead-letters/:instance`: default and largest value. */
export const DEAD_LETTER_PAGE = { default: 20, max: 100 } as const;
/** Integrations whose state is read at once by the status route. */
const STATUS_CONCURRENCY = 8;
const PAGE = 200;

/** ISO 8601 to the second, as `list` writes times. */
const isoSeconds = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");
const iso = (date: Date | null) => (date ? isoSeconds(date) : null);

/** What a dead letter was: the work's kind, never its content (message text stays out of the answer). */
function describeDeadLetter(item: OutboxItem) {
  const payload = (item.payload ?? {}) as {
    kind?: unknown;
    conversationId?: unknown;
    contactSourceId?: unknown;
  };
  const kind = typeof payload.kind === "string" ? payload.kind : "unknown";
  const inbound = item.chatKey.startsWith("in:") ? item.chatKey.slice(3) : null;
  const chat = inbound ?? (typeof payload.contactSourceId === "string" ? payload.contactSourceId : null);
  return {
    id: item.id,
    direction: item.direction,
    kind,
    chat,
    conversation_id: typeof payload.conversationId === "number" ? payload.conversationId : null,
    error: item.lastError,
    attempts: item.attempts,
    created_at: isoSeconds(item.createdAt),
  };
}

function invalidQuery(field: string, reason: string): BridgeError {
  return new BridgeError("INVALID_QUERY", `invalid query: ${field}: ${reason}`);
}

function parseLimit(value: string | undefined): number {
  if (value === undefined) return DEAD_LETTER_PAGE.default;
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1 || Number(value) > DEAD_LETTER_PAGE.max) {
    throw invalidQuery("limit", `must be an integer from 1 to ${DEAD_LETTER_PAGE.max}`);
  }
  return Number(value);
}

function parseBefore(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) {
    throw invalidQuery("before", "must be the id of a dead letter (as listed)");
  }
  return value;
}

/**
 * `GET status` (every integration the caller's token owns), `GET dead-letters/:instance` and
 * `POST dead-letters/:instance/:id/retry`, under the contract's caller checks (`docs/http-api.md`).
 */
export function statusRoutes(options: StatusRoutesOptions): Route[] {
  const { caller, directory, store, clock } = options;

  /** The provisioned integrations `principal` may see, ordered by instance name. */
  async function visible(principal: Principal): Promise<IntegrationRow[]> {
    if (principal.kind === "instance") {
      const row = await store.integrations.get(principal.instance);
      return row && row.status !== "provisioning" ? [row] : [];
    }
    const rows: IntegrationRow[] = [];
    for (let afterId: string | undefined; ; ) {
      const page = await store.integrations.list({ afterId, limit: PAGE });
      rows.push(...page.filter((row) => row.status !== "provisioning"));
      if (page.length < PAGE) break;
      afterId = page[page.length - 1]!.id;
    }
    const owned = await mapLimited(rows, STATUS_CONCURRENCY, async (row) => {
      const info = await directory.getInstance(row.instance);
      return info?.accountId === principal.accountId;
    });
    return rows
      .filter((_, index) => owned[index])
      .sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
  }

  async function integrationOf(instance: string): Promise<IntegrationRow> {
    const row = await store.integrations.get(instance);
    if (!row || row.status === "provisioning") {
      throw new BridgeError("INTEGRATION_NOT_FOUND", MESSAGES.noIntegration);
    }
    return row;
  }

  return [
    defineRoute({
      path: "status",
      methods: ["GET", "HEAD"],
      access: caller.principal,
      async handle({ grant }) {
        const now = clock.now();
        const rows = await visible(grant);
        const integrations = await mapLimited(rows, STATUS_CONCURRENCY, async (row) => {
          const [live, outbox, last] = await Promise.all([
            options.live(row),
            store.outbox.summary(row.id, now),
            store.mappings.lastMessages(row.id),
          ]);
          return {
            instance: row.instance,
            bridge_integration_id: row.id,
            status: live.status,
            realtime: live.realtime,
            delivery: row.deliveryMode,
            chatwoot_base_url: row.baseUrl,
            chatwoot_account_id: row.accountId,
            chatwoot_inbox_id: row.inboxId,
            chatwoot_version: row.chatwootVersion,
            outbox_depth: outbox.depth,
            oldest_due_at: iso(outbox.oldestDueAt),
            dead_letters: outbox.dead,
            last_error: live.lastError,
            last_inbound_at: iso(last.inbound),
            last_outbound_at: iso(last.outbound),
          };
        });
        return json(200, { generated_at: isoSeconds(now), integrations }, { "cache-control": "no-store" });
      },
    }),
    defineRoute({
      path: "dead-letters/:instance",
      methods: ["GET", "HEAD"],
      access: caller.access,
      async handle({ params: { instance }, query }) {
        const limit = parseLimit(query("limit"));
        const before = parseBefore(query("before"));
        const row = await integrationOf(instance);
        const items = await store.outbox.deadLetters(row.id, { limit, before });
        return json(
          200,
          {
            instance,
            dead_letters: items.map(describeDeadLetter),
            // The `before` of the next page, or null on the last one.
            next_before: items.length === limit ? items[items.length - 1]!.id : null,
          },
          { "cache-control": "no-store" },
        );
      },
    }),
    defineRoute({
      path: "dead-letters/:instance/:id/retry",
      methods: ["POST"],
      access: caller.access,
      async handle({ params: { instance, id } }) {
        const row = await integrationOf(instance);
        const outcome = await store.outbox.retryDead(row.id, id, clock.now());
        if (outcome === "not_found")
          throw new BridgeError("DEAD_LETTER_NOT_FOUND", MESSAGES.deadLetterNotFound);
        if (outcome === "not_dead") throw new BridgeError("NOT_A_DEAD_LETTER", MESSAGES.notADeadLetter);
        return json(200, { id, status: "pending", message: "dead letter queued for retry" });
      },
    }),
  ];
}
