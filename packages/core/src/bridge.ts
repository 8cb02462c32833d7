import { randomBytes, randomUUID } from "node:crypto";
import type { RateLimiterAbstract } from "rate-limiter-flexible";
import * as z from "zod";
import { type ActivateBody, activateBodySchema, formatIssues } from "./activation/schema.js";
import { type ActivationHooks, createActivationService } from "./activation/service.js";
import { type ChatwootApi, createChatwootApi } from "./chatwoot/index.js";
import { type Cipher, createKeyring } from "./crypto/index.js";
import type { InstanceDirectory } from "./directory/index.js";
import { BridgeError, errorMessage, isBridgeError } from "./errors/index.js";
import {
  type CallerGuard,
  createHttpHandler,
  createRateLimiter,
  type HttpHandler,
  type RateLimiter,
} from "./http/index.js";
import { createIntegrationRepository, type Integration } from "./integrations/index.js";
import { type Clock, type Logger, silentLogger, systemClock } from "./observability/index.js";
import { createRealtimeHub, createRealtimeOwnership } from "./realtime/index.js";
import type { WhatsAppGateway } from "./routing/gateway.js";
import { createRouter, type IngestResult } from "./routing/service.js";
import { createWebhookRoute } from "./routing/webhook.js";
import type { StoragePort } from "./store/ports.js";

const port = <T>(name: string, methods: string[]) =>
  z.custom<T>(
    (value) =>
      typeof value === "object" &&
      value !== null &&
      methods.every((method) => typeof (value as Record<string, unknown>)[method] === "function"),
    { error: `must be a ${name} (with ${methods.join(", ")})` },
  );

const keySchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/),
  key: z.union([z.string(), z.instanceof(Uint8Array)]),
});

/** Options of {@link createChatwootBridge}, validated once at construction. */
export const bridgeOptionsSchema = z.strictObject({
  /** Persistence: `createMemoryStore()` or `createKnexStore(knex)`. */
  store: z.custom<StoragePort>(
    (value) =>
      typeof value === "object" &&
      value !== null &&
      ["integrations", "mappings", "outbox", "leases"].every((key) => key in (value as object)),
    { error: "must be a StoragePort (integrations, mappings, outbox, leases)" },
  ),
  /** Resolves caller tokens and instances (host-provided). */
  directory: port<InstanceDirectory>("InstanceDirectory", ["resolveToken", "getInstance"]),
  /** The keyring for secrets at rest; or pass a ready `cipher`. */
  encryption: z.object({ current: keySchema, previous: z.array(keySchema).default([]) }).optional(),
  cipher: port<Cipher>("Cipher", ["seal", "open", "keyIdOf"]).optional(),
  /** `false` mounts the routes with the module switched off: every request answers 503. */
  enabled: z.boolean().default(true),
  /** Path prefix of the routes. */
  prefix: z
    .string()
    .regex(/^\/[A-Za-z0-9/_.-]*[^/]$|^\/$/, { error: "must start with / and not end with /" })
    .default("/api/chatwoot"),
  /** `list` returns the plaintext Chatwoot token unless this is false (then `null`). */
  exposeApiToken: z.boolean().default(true),
  rateLimit: z
    .object({
      points: z.number().int().positive().default(100),
      durationSeconds: z.number().int().positive().default(60),
      limiter: z
        .custom<RateLimiterAbstract>((value) => typeof value === "object" && value !== null)
        .optional(),
      onStoreError: z.enum(["open", "closed"]).default("open"),
    })
    .prefault({}),
  /** `realtime` (default) or `webhook` (needs `publicUrl`). */
  delivery: z.enum(["realtime", "webhook"]).default("realtime"),
  /** Base URL through which Chatwoot reaches this server (webhook mode). */
  publicUrl: z
    .url({ protocol: /^https?$/, error: "must be an absolute http(s) URL" })
    .transform((value) => value.replace(/\/+$/, ""))
    .optional(),
  /** Activation deadline in ms. Default 60 000. */
  activationTimeoutMs: z.number().int().positive().default(60_000),
  chatwootApi: port<ChatwootApi>("ChatwootApi", ["getProfile", "createInbox", "getInbox"]).optional(),
  /** Sends to WhatsApp (host-provided). Without it, agent replies wait in the outbox. */
  gateway: port<WhatsAppGateway>("WhatsAppGateway", ["send"]).optional(),
  /** Realtime link tuning (tests use shorter times). */
  realtime: z
    .object({
      pingIntervalMs: z.number().int().positive().default(3_000),
      subscribeTimeoutMs: z.number().int().positive().default(10_000),
      /** Longest wait between two reconnect attempts of a lost socket (backoff with jitter up to it). */
      maxReconnectDelayMs: z.number().int().positive().default(30_000),
      /** Ownership lease of each subscription across processes; renewed at a third of it. */
      leaseTtlMs: z.number().int().min(300).default(15_000),
    })
    .prefault({}),
  /** Outbox dispatcher tuning. */
  dispatcher: z
    .object({
      concurrency: z.number().int().positive().optional(),
      claimTtlMs: z.number().int().positive().optional(),
      pollIntervalMs: z.number().int().positive().optional(),
    })
    .prefault({}),
  /** Retry windows: inbound (to Chatwoot) retries for `windowMs`; outbound (to WhatsApp) `maxAttempts` times. */
  retry: z
    .object({
      inbound: z
        .object({
          windowMs: z.number().int().positive(),
          baseDelayMs: z.number().int().positive(),
          maxDelayMs: z.number().int().positive(),
        })
        .partial()
        .optional(),
      outbound: z
        .object({
          maxAttempts: z.number().int().positive(),
          baseDelayMs: z.number().int().positive(),
          maxDelayMs: z.number().int().positive(),
        })
        .partial()
        .optional(),
    })
    .prefault({}),
  /** Media carried between WhatsApp and Chatwoot: size cap (default 40 MiB) and download deadline (60 s). */
  media: z
    .object({
      maxBytes: z.number().int().positive().optional(),
      timeoutMs: z.number().int().positive().optional(),
    })
    .prefault({}),
  /** Identifies this process in leases and outbox claims (default: random per start). */
  processId: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,100}$/)
    .optional(),
  /** How long a message sent from the phone waits before it is mirrored (so our own sends are recognised). */
  echoWaitMs: z.number().int().min(0).default(1_500),
  logger: port<Logger>("Logger", ["debug", "info", "warn", "error"]).default(silentLogger),
  clock: port<Clock>("Clock", ["now"]).default(systemClock),
});

export type ChatwootBridgeOptions = z.input<typeof bridgeOptionsSchema>;

/** What `activate()` answers; it never throws, so a host can create its instance anyway. */
export type InlineActivationResult =
  | { status: "active"; bridgeIntegrationId: string; inboxId: number }
  | { status: "error"; error: string };

export interface ChatwootBridge {
  /** The framework-neutral HTTP entry the adapters mount. */
  readonly http: HttpHandler;
  /** The caller checks of the contract, for host routes guarded by the same tokens and rate limit. */
  readonly guard: CallerGuard;
  /** The route prefix (e.g. `/api/chatwoot`). */
  readonly prefix: string;
  /**
   * Inline activation for hosts that activate while creating an instance. Takes the same body as
   * `POST /set/:instance`; returns `{ status: "error", error }` instead of throwing.
   */
  activate(
    instance: string,
    config: ActivateBody,
    options?: { signal?: AbortSignal },
  ): Promise<InlineActivationResult>;
  /** Deactivates; `deleteInbox` also removes the Chatwoot inbox. */
  deactivate(instance: string, options?: { deleteInbox?: boolean }): Promise<void>;
  /**
   * WhatsApp events in (`reference/whatsapp-events.md` envelope). Resolves once the event is durably stored,
   * not when Chatwoot answered; throws BridgeError INVALID_EVENT naming the failing path.
   */
  ingest(instance: string, event: unknown): Promise<IngestResult>;
  /** What routing skipped and why, by reason (observability). */
  counters(): Record<string, number>;
  /** Re-seals every stored secret under the current key (resumable). */
  rotateKeys(options?: { batchSize?: number }): Promise<{ resealed: number; skipped: number }>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds the integration: validates the options once (every issue listed) and wires the ports. */
export function createChatwootBridge(input: ChatwootBridgeOptions): ChatwootBridge {
  const parsed = bridgeOptionsSchema.safeParse(input);
  if (!parsed.success) {
    throw new BridgeError("INVALID_OPTIONS", `invalid options: ${formatIssues(parsed.error as z.ZodError)}`);
  }
  const options = parsed.data;
  if (!options.cipher && !options.encryption) {
    throw new BridgeError("INVALID_OPTIONS", "invalid options: encryption: required (or pass a cipher)");
  }
  if (options.delivery === "webhook" && !options.publicUrl) {
    throw new BridgeError(
      "INVALID_OPTIONS",
      'invalid options: publicUrl: required when delivery is "webhook"',
    );
  }
  const cipher = options.cipher ?? createKeyring(options.encryption!);
  const ownApi = options.chatwootApi ? null : createChatwootApi();
  const chatwoot = options.chatwootApi ?? ownApi!;
  const integrations = createIntegrationRepository(options.store.integrations, cipher, options.clock);
  const router = createRouter({
    integrations,
    store: options.store,
    chatwoot,
    gateway: options.gateway,
    clock: options.clock,
    logger: options.logger,
    dispatcher: { ...options.dispatcher, ...(options.processId ? { owner: options.processId } : {}) },
    retry: options.retry,
    echoWaitMs: options.echoWaitMs,
    media: options.media,
  });
  const withIntegration = (id: string, action: (integration: Integration) => Promise<unknown>) => {
    integrations
      .getById(id)
      .then((integration) => integration && action(integration))
      .catch((error) =>
        options.logger.error(
          { integrationId: id, err: errorMessage(error) },
          "chatwoot: realtime event failed",
        ),
      );
  };
  const hub = createRealtimeHub({
    chatwoot,
    clock: options.clock,
    logger: options.logger,
    pingIntervalMs: options.realtime.pingIntervalMs,
    subscribeTimeoutMs: options.realtime.subscribeTimeoutMs,
    maxReconnectDelayMs: options.realtime.maxReconnectDelayMs,
    onEvent: (id, event, data) => {
      // Most events are not for us (typing, presence, our own messages' echoes): drop them before any read.
      if (router.isRelevantEvent(event, data)) {
        withIntegration(id, (integration) => router.acceptChatwootEvent(integration, event, data));
      }
    },
    onReconnect: (id, since) => withIntegration(id, (integration) => router.backfill(integration, since)),
  });
  const realtime = options.delivery === "realtime";
  const ownership = createRealtimeOwnership({
    leases: options.store.leases,
    integrations,
    hub,
    clock: options.clock,
    logger: options.logger,
    owner: options.processId ?? `process-${randomUUID()}`,
    ttlMs: options.realtime.leaseTtlMs,
    onTakeover: (integration, since) => {
      router
        .backfill(integration, since)
        .catch((error) =>
          options.logger.warn(
            { instance: integration.instance, err: errorMessage(error) },
            "chatwoot: backfill failed",
          ),
        );
    },
  });
  const hooks: ActivationHooks = {
    afterPersist: async (integration, signal) => {
      if (realtime) await ownership.activate(integration, signal);
    },
    onDeactivate: async (integration) => {
      await ownership.release(integration.id);
      const dropped = await options.store.outbox.cancelAll(integration.id);
      if (dropped > 0)
        options.logger.info({ instance: integration.instance, dropped }, "chatwoot: dropped pending work");
    },
    liveProblem: async (integration) => {
      if (!realtime) return null;
      const status = hub.status(integration.id);
      if (status) return status.state !== "connected" ? status.lastError : null;
      const failure = ownership.failure(integration.id);
      if (failure) return failure;
      // Another process may hold the link; only its lease tells whether anyone does.
      const lease = await ownership.holder(integration.id);
      return lease && lease.expiresAt.getTime() > options.clock.now().getTime()
        ? null
        : "no process holds the realtime link to Chatwoot at the moment - it is taken over within the lease time";
    },
  };
  const activation = createActivationService({
    integrations,
    chatwoot,
    clock: options.clock,
    logger: options.logger,
    timeoutMs: options.activationTimeoutMs,
    delivery: options.delivery,
    webhookUrl: (id, secret) =>
      `${options.publicUrl}${options.prefix}/webhook/${encodeURIComponent(id)}?secret=${encodeURIComponent(secret)}`,
    newWebhookSecret: () => randomBytes(32).toString("base64url"),
    hooks,
  });
  const rateLimiter: RateLimiter = createRateLimiter({
    ...options.rateLimit,
    onError: (error) =>
      options.logger.warn({ err: errorMessage(error) }, "chatwoot: rate-limit store failed"),
  });
  const webhook = createWebhookRoute({
    integrations,
    chatwoot,
    clock: options.clock,
    logger: options.logger,
    accept: (integration, event, payload) => router.acceptChatwootEvent(integration, event, payload),
  });
  const http = createHttpHandler({
    extraRoutes: [webhook],
    enabled: options.enabled,
    prefix: options.prefix,
    directory: options.directory,
    rateLimiter,
    activation,
    exposeApiToken: options.exposeApiToken,
    logger: options.logger,
  });

  return {
    http,
    guard: http,
    prefix: options.prefix,
    async activate(instance, config, callOptions) {
      const body = activateBodySchema.safeParse(config);
      if (!body.success)
        return { status: "error", error: `invalid body: ${formatIssues(body.error as z.ZodError)}` };
      try {
        const integration = await activation.activate(instance, body.data, callOptions?.signal);
        return { status: "active", bridgeIntegrationId: integration.id, inboxId: integration.inboxId! };
      } catch (error) {
        return { status: "error", error: isBridgeError(error) ? error.message : "internal error" };
      }
    },
    async deactivate(instance, callOptions) {
      await activation.deactivate(instance, callOptions?.deleteInbox ?? false);
    },
    ingest: (instance, event) => router.ingest(instance, event),
    counters: () => router.counters(),
    rotateKeys(rotateOptions) {
      return integrations.rotateKeys(rotateOptions);
    },
    async start() {
      router.start();
      if (realtime) ownership.start();
    },
    async stop() {
      await ownership.stop();
      await router.stop();
      hub.close();
      await ownApi?.close();
    },
  };
}
