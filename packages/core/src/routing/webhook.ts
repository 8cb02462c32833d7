import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { ChatwootApi } from "../chatwoot/index.js";
import { BridgeError, MESSAGES } from "../errors/index.js";
import { readHeader, readJsonBody, WEBHOOK_BODY_LIMIT } from "../http/body.js";
import { json } from "../http/response.js";
import { defineRoute, type Route } from "../http/routes.js";
import {
  chatwootTargetOf,
  type Integration,
  type IntegrationRepository,
  isProvisioned,
} from "../integrations/index.js";
import type { Clock, Logger } from "../observability/index.js";

export interface WebhookRouteOptions {
  integrations: IntegrationRepository;
  chatwoot: ChatwootApi;
  clock: Clock;
  logger: Logger;
  /** Queues the event; must not do the work inline (Chatwoot waits at most 5 s). */
  accept(integration: Integration, event: string, payload: unknown): Promise<void>;
  /** Deliveries per integration per minute. Default 600. */
  perMinute?: number;
}

const SIGNATURE_WINDOW_S = 5 * 60;
const SECRET_LOOKUP_TIMEOUT_MS = 2_000;

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

/**
 * `POST <prefix>/webhook/:bridgeIntegrationId`: Chatwoot's API-inbox webhook (webhook delivery mode).
 * Authenticated by the capability secret in the registered URL; when Chatwoot signs deliveries (4.13+),
 * the signature and its timestamp are verified too. Work is only queued, so the answer is immediate.
 */
export function createWebhookRoute(options: WebhookRouteOptions): Route {
  const limiter = new RateLimiterMemory({ points: options.perMinute ?? 600, duration: 60 });
  const signingSecrets = new Map<string, string | null>();
  const invalid = () => new BridgeError("WEBHOOK_SECRET_INVALID", MESSAGES.webhookSecretInvalid);

  /** The inbox's signing secret (administrators see it in the inbox JSON from 4.13 on); cached. */
  async function signingSecret(integration: Integration, refresh: boolean): Promise<string | null> {
    if (!refresh && signingSecrets.has(integration.id)) return signingSecrets.get(integration.id) ?? null;
    const inbox = await options.chatwoot
      .getInbox(chatwootTargetOf(integration), integration.inboxId!, { timeoutMs: SECRET_LOOKUP_TIMEOUT_MS })
      .catch(() => null);
    const secret = inbox?.secret ?? null;
    if (inbox) signingSecrets.set(integration.id, secret);
    return secret;
  }

  async function verifySignature(
    integration: Integration,
    signature: string,
    timestamp: string | undefined,
    candidates: Buffer[],
  ) {
    const seconds = Number(timestamp);
    const age = options.clock.now().getTime() / 1000 - seconds;
    if (!timestamp || !Number.isFinite(seconds) || Math.abs(age) > SIGNATURE_WINDOW_S) throw invalid();
    const matches = (secret: string) =>
      candidates.some((bytes) => {
        const expected = `sha256=${createHmac("sha256", secret).update(`${timestamp}.`).update(bytes).digest("hex")}`;
        return sameSecret(expected, signature.trim());
      });
    const cached = await signingSecret(integration, false);
    if (cached && matches(cached)) return;
    const fresh = await signingSecret(integration, true);
    // No secret to check against (Chatwoot before 4.13, or it could not be read): the URL secret decides.
    if (fresh === null) return;
    if (!matches(fresh)) throw invalid();
  }

  return defineRoute({
    path: "webhook/:bridgeIntegrationId",
    methods: ["POST"],
    // Not a caller token: the capability secret of the registered URL, then the per-integration limit.
    async access({ params, query }) {
      const integration = await options.integrations.getById(params.bridgeIntegrationId);
      if (!isProvisioned(integration)) {
        throw new BridgeError("WEBHOOK_UNKNOWN_INTEGRATION", MESSAGES.webhookUnknownIntegration);
      }
      const secret = query("secret");
      if (!secret || !integration.webhookSecret || !sameSecret(secret, integration.webhookSecret))
        throw invalid();
      try {
        await limiter.consume(integration.id);
      } catch (error) {
        if (error instanceof RateLimiterRes) throw new BridgeError("RATE_LIMITED", MESSAGES.rateLimited);
        throw error;
      }
      return integration;
    },
    async handle({ request, grant: integration }) {
      const { value, raw } = await readJsonBody(request, WEBHOOK_BODY_LIMIT);
      const signature = readHeader(request, "x-chatwoot-signature");
      if (signature) {
        const timestamp = readHeader(request, "x-chatwoot-timestamp");
        await verifySignature(integration, signature, timestamp, signedBytes(value, raw));
      }
      const payload = (value ?? {}) as { event?: unknown };
      if (typeof payload.event === "string") await options.accept(integration, payload.event, payload);
      return json(200, { received: true });
    },
  });
}
