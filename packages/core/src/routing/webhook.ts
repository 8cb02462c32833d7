import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { signsWebhooks } from "../activation/version.js";
import type { ChatwootApi } from "../chatwoot/index.js";
import { BridgeError, errorMessage, MESSAGES } from "../errors/index.js";
import { readHeader, readJsonBody, WEBHOOK_BODY_LIMIT } from "../http/body.js";
import { json } from "../http/response.js";
import { defineRoute, type Route } from "../http/routes.js";
import {
  chatwootTargetOf,
  type Integration,
  type IntegrationRepository,
  isProvisioned,
  type ProvisionedIntegration,
} from "../integrations/index.js";
import type { Clock, Logger } from "../observability/index.js";

export interface WebhookRouteOptions {
  integrations: IntegrationRepository;
  chatwoot: ChatwootApi;
  clock: Clock;
  logger: Logger;
  /** Queues the event; must not do the work inline (Chatwoot waits at most 5 s). */
  accept(integration: Integration, event: string, payload: unknown): Promise<void>;
  /**
   * Deliveries per integration per minute of events that are not messages (typing, conversation updates, ...).
   * Message events (`message_created`, `message_updated`) are never limited: Chatwoot marks the message failed when
   * its delivery is refused. Default 600.
   */
  perMinute?: number;
  /**
   * Failed authentications (no, unknown or wrong URL secret) per client address within `windowMs` before the address
   * is answered 429 without any store read until the window ends. Default 20 per 60 s.
   */
  failedAttempts?: { limit?: number; windowMs?: number };
  /** `X-Chatwoot-Delivery` ids remembered to absorb redeliveries. Default 10,000, each for 10 minutes. */
  deliveries?: { max?: number; ttlMs?: number };
  /**
   * Least time between two reads of an inbox's signing secret from Chatwoot (a signature that does not match the
   * stored secret may mean it was rotated). Default 60 s.
   */
  secretRereadIntervalMs?: number;
}

const SIGNATURE_WINDOW_S = 5 * 60;
const SECRET_LOOKUP_TIMEOUT_MS = 2_000;
/** Integrations whose URL secret was verified, kept to let their deliveries pass an address's failure limit. */
const VERIFIED_MAX = 10_000;
const VERIFIED_TTL_MS = 24 * 60 * 60_000;
/** Client addresses (or integrations) whose counters are kept; the oldest window is dropped first. */
const COUNTERS_MAX = 10_000;
const MESSAGE_EVENTS: ReadonlySet<string> = new Set([
  "message_created",
  "message_updated",
  "message.created",
  "message.updated",
]);

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/**
 * `ActiveSupport::JSON.encode` of a parsed value, as Chatwoot renders webhook bodies: `JSON.stringify` with `<`, `>`,
 * `&`, U+2028 and U+2029 escaped; other non-ASCII stays as it is (UTF-8 on the wire).
 */
export function railsJson(value: unknown): string {
  return (JSON.stringify(value) ?? "null").replace(
    /[<>&\u2028\u2029]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * The bytes a signature may have been computed over. The raw body when the adapter has it; only when a host
 * parser left nothing but the parsed value, its re-encodings: Rails' (what Chatwoot sends) and plain JSON.
 */
function signedBytes(value: unknown, raw: Buffer | null): Buffer[] {
  if (raw) return [raw];
  const rails = railsJson(value ?? null);
  const plain = JSON.stringify(value ?? null);
  return rails === plain
    ? [Buffer.from(plain, "utf8")]
    : [Buffer.from(rails, "utf8"), Buffer.from(plain, "utf8")];
}

/** Fixed-window counters per key on the route's clock, at most `COUNTERS_MAX` keys (the oldest dropped first). */
function windowCounter(limit: number, windowMs: number, clock: Clock) {
  const windows = new Map<string, { count: number; resetAt: number }>();
  const current = (key: string, now: number) => {
    const window = windows.get(key);
    if (window && window.resetAt > now) return window;
    if (window) windows.delete(key);
    return undefined;
  };
  const retryAfter = (window: { resetAt: number }, now: number) =>
    Math.max(1, Math.ceil((window.resetAt - now) / 1000));
  return {
    /** Seconds until the key may try again when it is over the limit, else null. */
    blocked(key: string): number | null {
      const now = clock.now().getTime();
      const window = current(key, now);
      return window && window.count >= limit ? retryAfter(window, now) : null;
    },
    /** Counts one for the key; seconds until it may try again when this was over the limit, else null. */
    hit(key: string): number | null {
      const now = clock.now().getTime();
      let window = current(key, now);
      if (!window) {
        if (windows.size >= COUNTERS_MAX) windows.delete(windows.keys().next().value!);
        window = { count: 0, resetAt: now + windowMs };
        windows.set(key, window);
      }
      window.count++;
      return window.count > limit ? retryAfter(window, now) : null;
    },
  };
}

/** Keys remembered for `ttlMs`, at most `max` of them (the oldest forgotten first). */
function boundedMemory<V>(max: number, ttlMs: number, clock: Clock) {
  const entries = new Map<string, { value: V; until: number }>();
  return {
    get(key: string): V | undefined {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.until > clock.now().getTime()) return entry.value;
      entries.delete(key);
      return undefined;
    },
    set(key: string, value: V) {
      entries.delete(key);
      if (entries.size >= max) entries.delete(entries.keys().next().value!);
      entries.set(key, { value, until: clock.now().getTime() + ttlMs });
    },
    delete(key: string) {
      entries.delete(key);
    },
  };
}

const rateLimited = (headers: Record<string, string>, retryAfterS: number) => {
  headers["retry-after"] = String(retryAfterS);
  return new BridgeError("RATE_LIMITED", MESSAGES.rateLimited);
};

/**
 * `POST <prefix>/webhook/:bridgeIntegrationId`: Chatwoot's API-inbox webhook (webhook delivery mode).
 *
 * 1. The capability secret of the registered URL, before anything else: an unknown integration and a wrong secret get
 *    the same 401; failed attempts are counted per client address, and an address past the limit is answered 429
 *    without reading the store (unless this process verified the same URL secret for the same integration before).
 * 2. The body (1 MiB), then Chatwoot's signature whenever the inbox has a signing secret (4.13+), fail closed; a
 *    signature that does not match the stored secret re-reads the inbox (at most once per interval) in case the
 *    secret was rotated.
 * 3. `X-Chatwoot-Delivery`: a redelivery is answered 200 and not processed again.
 * 4. Events other than messages count against the per-integration limit (429); message events never do.
 * Work is only queued, so the answer is immediate.
 */
export function createWebhookRoute(options: WebhookRouteOptions): Route {
  const { clock, logger } = options;
  const perIntegration = windowCounter(options.perMinute ?? 600, 60_000, clock);
  const failures = windowCounter(
    options.failedAttempts?.limit ?? 20,
    options.failedAttempts?.windowMs ?? 60_000,
    clock,
  );
  const verified = boundedMemory<Buffer>(VERIFIED_MAX, VERIFIED_TTL_MS, clock);
  const seen = boundedMemory<true>(
    options.deliveries?.max ?? 10_000,
    options.deliveries?.ttlMs ?? 600_000,
    clock,
  );
  const rereadIntervalMs = options.secretRereadIntervalMs ?? 60_000;
  /** The last read of each inbox's secret (null: none, or the read failed), shared by concurrent deliveries. */
  const reads = boundedMemory<{ secret: Promise<string | null> }>(COUNTERS_MAX, rereadIntervalMs, clock);
  const invalid = () => new BridgeError("WEBHOOK_SECRET_INVALID", MESSAGES.webhookSecretInvalid);

  /** The inbox's signing secret as Chatwoot shows it to administrators now (4.13+), at most once per interval. */
  function readSecret(integration: ProvisionedIntegration): Promise<string | null> {
    const recent = reads.get(integration.id);
    if (recent) return recent.secret;
    const secret = options.chatwoot
      .getInbox(chatwootTargetOf(integration), integration.inboxId, { timeoutMs: SECRET_LOOKUP_TIMEOUT_MS })
      .then((inbox) => (typeof inbox.secret === "string" && inbox.secret !== "" ? inbox.secret : null))
      .catch((error: unknown) => {
        logger.warn(
          { instance: integration.instance, err: errorMessage(error) },
          "chatwoot: could not read the inbox's webhook signing secret",
        );
        return null;
      });
    reads.set(integration.id, { secret });
    return secret;
  }

  /** Keeps a secret read from Chatwoot (sealed by the repository); a failure only costs a later re-read. */
  async function keepSecret(integration: ProvisionedIntegration, secret: string): Promise<void> {
    try {
      let current: Integration | null = integration;
      for (let attempt = 0; attempt < 2 && current && current.signingSecret !== secret; attempt++) {
        if (await options.integrations.update(current, { signingSecret: secret })) {
          logger.info(
            { instance: integration.instance },
            "chatwoot: stored the inbox's new webhook signing secret",
          );
          return;
        }
        current = await options.integrations.getById(integration.id);
      }
    } catch (error) {
      logger.warn(
        { instance: integration.instance, err: errorMessage(error) },
        "chatwoot: could not store the inbox's webhook signing secret",
      );
    }
  }

  /**
   * Chatwoot's signature (`X-Chatwoot-Signature: sha256=HMAC-SHA256(secret, "<X-Chatwoot-Timestamp>.<raw body>")`),
   * required when the inbox has a signing secret, when Chatwoot is 4.13 or later, and when the delivery is signed.
   * Otherwise (Chatwoot before 4.13) the URL secret alone authenticates.
   */
  async function verifySignature(
    integration: ProvisionedIntegration,
    signature: string | undefined,
    timestamp: string | undefined,
    candidates: Buffer[],
  ): Promise<void> {
    const required =
      integration.signingSecret !== null ||
      signsWebhooks(integration.chatwootVersion) ||
      signature !== undefined;
    if (!required) return;
    if (!signature || !timestamp) throw invalid();
    const seconds = Number(timestamp);
    const age = clock.now().getTime() / 1000 - seconds;
    if (!/^\d+$/.test(timestamp) || Math.abs(age) > SIGNATURE_WINDOW_S) throw invalid();
    const matches = (secret: string) =>
      candidates.some((bytes) => {
        const expected = `sha256=${createHmac("sha256", secret).update(`${timestamp}.`).update(bytes).digest("hex")}`;
        return sameSecret(expected, signature);
      });
    if (integration.signingSecret !== null && matches(integration.signingSecret)) return;
    // Rotated in Chatwoot (`reset_secret`), or signing since an upgrade: what does the inbox say now?
    const fresh = await readSecret(integration);
    if (fresh === null || fresh === integration.signingSecret || !matches(fresh)) throw invalid();
    await keepSecret(integration, fresh);
  }

  return defineRoute({
    path: "webhook/:bridgeIntegrationId",
    methods: ["POST"],
    // Not a caller token: the capability secret of the registered URL, checked before anything else.
    async access({ request, params, query, headers }) {
      const address = request.remoteAddress ?? "unknown";
      const id = params.bridgeIntegrationId;
      const secret = query("secret") ?? "";
      const known = verified.get(id);
      const vouched = known !== undefined && secret !== "" && timingSafeEqual(known, digest(secret));
      const blockedFor = failures.blocked(address);
      if (blockedFor !== null && !vouched) throw rateLimited(headers, blockedFor);
      const integration = secret === "" ? null : await options.integrations.getById(id);
      if (
        !isProvisioned(integration) ||
        !integration.webhookSecret ||
        !sameSecret(secret, integration.webhookSecret)
      ) {
        // The same answer whether the integration is unknown or the secret wrong.
        if (vouched) verified.delete(id);
        failures.hit(address);
        throw invalid();
      }
      verified.set(id, digest(secret));
      return integration;
    },
    async handle({ request, grant: integration, headers }) {
      const { value, raw } = await readJsonBody(request, WEBHOOK_BODY_LIMIT);
      const signature = readHeader(request, "x-chatwoot-signature")?.trim();
      const timestamp = readHeader(request, "x-chatwoot-timestamp")?.trim();
      await verifySignature(integration, signature, timestamp, signedBytes(value, raw));
      const payload = (value ?? {}) as { event?: unknown };
      const event = typeof payload.event === "string" ? payload.event : null;
      const deliveryId = readHeader(request, "x-chatwoot-delivery")?.trim();
      const key = deliveryId ? `${integration.id}\u0000${deliveryId}` : null;
      if (key !== null && seen.get(key)) return json(200, { received: true });
      if (event === null || !MESSAGE_EVENTS.has(event)) {
        const limitedFor = perIntegration.hit(integration.id);
        if (limitedFor !== null) throw rateLimited(headers, limitedFor);
      }
      if (event === null) return json(200, { received: true });
      if (key !== null) seen.set(key, true);
      try {
        await options.accept(integration, event, payload);
      } catch (error) {
        if (key !== null) seen.delete(key); // not processed: a redelivery may try again
        throw error;
      }
      return json(200, { received: true });
    },
  });
}
