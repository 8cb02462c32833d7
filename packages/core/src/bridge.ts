import { randomBytes, randomUUID } from "node:crypto";
import type { RateLimiterAbstract } from "rate-limiter-flexible";
import * as z from "zod";
import {
  type ActivateBody,
  absentIsMissing,
  activateBodySchema,
  formatIssues,
  missingOr,
} from "./activation/schema.js";
import {
  type ActivationHooks,
  type ActivationService,
  createActivationService,
} from "./activation/service.js";
import { type ChatwootApi, createChatwootApi, isChatwootRequestError } from "./chatwoot/index.js";
import { type Cipher, createKeyring } from "./crypto/index.js";
import type { InstanceDirectory } from "./directory/index.js";
import { BridgeError, errorMessage, errorRef, isBridgeError, toBridgeError } from "./errors/index.js";
import {
  activationRoutes,
  type CallerGuard,
  createCallerChecks,
  createHttpHandler,
  createRateLimiter,
  type HttpHandler,
  type RateLimiter,
} from "./http/index.js";
import { createIntegrationRepository, type Integration } from "./integrations/index.js";
import {
  createNetworkPolicy,
  createPolicyAgent,
  type NetworkPolicy,
  networkOptionsSchema,
} from "./net/index.js";
import { type Clock, type Logger, silentLogger, systemClock } from "./observability/index.js";
import { createRealtimeHub, createRealtimeOwnership } from "./realtime/index.js";
import type { WhatsAppEvent } from "./routing/events.js";
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
    { error: missingOr(`must be a ${name} (with ${methods.join(", ")})`) },
  );

const keySchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, { error: "must be 1 to 32 letters, digits, _ or -" }),
  key: z.union([z.string(), z.instanceof(Uint8Array)], {
    error: missingOr("must be a string (base64 or hex) or a Uint8Array of 32 bytes"),
  }),
});

/** Options of {@link createChatwootBridge}, validated once at construction. */
export const bridgeOptionsSchema = z.strictObject({
  /** Persistence: `createMemoryStore()` or `createKnexStore(knex)`. */
  store: z.custom<StoragePort>(
    (value) =>
      typeof value === "object" &&
      value !== null &&
      ["integrations", "mappings", "outbox", "leases"].every((key) => key in (value as object)),
    { error: missingOr("must be a StoragePort (integrations, mappings, outbox, leases)") },
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
  /** The per-caller-token quota: `points` requests per `durationSeconds`. */
  rateLimit: z
    .object({
      points: z.number().int().positive().default(100),
      durationSeconds: z.number().int().positive().default(60),
      /** A limiter on a shared store (Redis, SQL) for clusters, built with the same points and duration. */
      limiter: z
        .custom<RateLimiterAbstract>((value) => typeof value === "object" && value !== null)
        .optional(),
      /** When the shared store is down: `open` lets requests through, `closed` refuses them. */
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
  /** Activation deadline in ms. */
  activationTimeoutMs: z.number().int().positive().default(60_000),
  chatwootApi: port<ChatwootApi>("ChatwootApi", ["getProfile", "createInbox", "getInbox"]).optional(),
  /** Sends to WhatsApp (host-provided). Without it, agent replies wait in the outbox. */
  gateway: port<WhatsAppGateway>("WhatsAppGateway", ["send"]).optional(),
  /** Realtime link tuning (tests use shorter times). */
  realtime: z
    .object({
      /** Server pings are expected this often; two missing ones mean a stale socket. */
      pingIntervalMs: z.number().int().positive().default(3_000),
      /** A subscription not confirmed within this is a failure (retried once at half of it). */
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
      /**
       * Items processed at once (distinct chats), shared fairly between integrations: while others have work
       * waiting, one gets at most max(1, ⌊concurrency ÷ integrations at work⌋) (`docs/scaling.md`).
       */
      concurrency: z.number().int().positive().default(16),
      /**
       * Longest time one outbox item may take (all its Chatwoot calls, downloads and sends): then it is stopped,
       * its slot freed, and it is retried later like any transient failure.
       */
      itemTimeoutMs: z.number().int().positive().default(120_000),
      /** A crashed process's claims return after this; live claims are renewed at a third of it. */
      claimTtlMs: z.number().int().positive().default(30_000),
      /** How often an idle dispatcher looks for work enqueued by other processes. */
      pollIntervalMs: z.number().int().positive().default(250),
    })
    .prefault({}),
  /**
   * Retries with exponential backoff and jitter (from `baseDelayMs` up to `maxDelayMs`): inbound (to Chatwoot) for
   * `windowMs`, outbound (to WhatsApp) `maxAttempts` times.
   */
  retry: z
    .object({
      inbound: z
        .object({
          windowMs: z.number().int().positive().default(86_400_000), // 24 h
          baseDelayMs: z.number().int().positive().default(1_000),
          maxDelayMs: z.number().int().positive().default(600_000), // 10 min
        })
        .prefault({}),
      outbound: z
        .object({
          maxAttempts: z.number().int().positive().default(3),
          baseDelayMs: z.number().int().positive().default(5_000),
          maxDelayMs: z.number().int().positive().default(30_000),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Which addresses the bridge may connect to: Chatwoot's REST API and realtime socket, media downloads and every
   * redirect hop, each checked on the address actually connected to. Unspecified, link-local (cloud metadata),
   * multicast, broadcast and reserved addresses are always refused; loopback, RFC 1918, carrier-grade NAT and
   * unique-local ones unless `allowPrivateNetworks` is false; `deny` adds CIDRs (`docs/security.md`).
   */
  network: networkOptionsSchema,
  /** Agent replies sent to WhatsApp. */
  outbound: z
    .object({
      /**
       * Attachments sent per reply; the text and the first ones are sent, the reply is then marked failed with a
       * note naming the cap.
       */
      maxAttachments: z.number().int().positive().default(10),
    })
    .prefault({}),
  /** Media carried between WhatsApp and Chatwoot: size cap and download deadline. */
  media: z
    .object({
      maxBytes: z.number().int().positive().default(41_943_040), // 40 MiB
      timeoutMs: z.number().int().positive().default(60_000),
    })
    .prefault({}),
  /** Identifies this process in leases and outbox claims (default: random for each bridge). */
  processId: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,100}$/, { error: "must be 1 to 100 letters, digits, _ . : or -" })
    .default(() => `process-${randomUUID()}`),
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
   * WhatsApp events in (the envelope of `docs/events.md`); call it for every event of every instance. Any value
   * is validated first, whatever the instance: a malformed event throws BridgeError INVALID_EVENT naming the
   * failing path. Resolves once the event is durably stored, not when Chatwoot answered, or with `ignored` saying
   * why it was not stored (`no_integration` for an instance without an integration, an event kind that is not
   * routed, a status broadcast...).
   */
  ingest(instance: string, event: WhatsAppEvent): Promise<IngestResult>;
  /** What routing skipped and why, by reason (observability). */
  counters(): Record<string, number>;
  /** Re-seals every stored secret under the current key (resumable). */
  rotateKeys(options?: { batchSize?: number }): Promise<{ resealed: number; skipped: number }>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds the bridge: validates the options once (every issue listed) and wires the ports. */
export function createChatwootBridge(input: ChatwootBridgeOptions): ChatwootBridge {
  const parsed = bridgeOptionsSchema.safeParse(input, { error: absentIsMissing });
  if (!parsed.success) {
    const issues = formatIssues(parsed.error as z.ZodError, "options");
    throw new BridgeError("INVALID_OPTIONS", `invalid options: ${issues}`);
  }
  const options = parsed.data;
  if (!options.cipher && !options.encryption) {
    throw new BridgeError(
      "INVALID_OPTIONS",
      "invalid options: encryption: missing (pass encryption or a cipher)",
    );
  }
  if (options.delivery === "webhook" && !options.publicUrl) {
    throw new BridgeError(
      "INVALID_OPTIONS",
      'invalid options: publicUrl: missing (delivery "webhook" needs it)',
    );
  }
  const cipher = options.cipher ?? createKeyring(options.encryption!);
  const network = createNetworkPolicy(options.network);
  // Chatwoot's REST calls go through a keep-alive pool whose every connection the network policy checks.
  const chatwootAgent = options.chatwootApi
    ? null
    : createPolicyAgent(network, { keepAliveTimeout: 30_000, connections: 32 });
  const ownApi = chatwootAgent ? createChatwootApi({ dispatcher: chatwootAgent }) : null;
  const chatwoot = options.chatwootApi ?? ownApi!;
  const integrations = createIntegrationRepository(options.store.integrations, cipher, options.clock);
  const router = createRouter({
    integrations,
    store: options.store,
    chatwoot,
    gateway: options.gateway,
    clock: options.clock,
    logger: options.logger,
    dispatcher: { ...options.dispatcher, owner: options.processId },
    outbound: options.outbound,
    retry: options.retry,
    echoWaitMs: options.echoWaitMs,
    media: { ...options.media, network },
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
    network,
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
    owner: options.processId,
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
  const activation = policed(
    network,
    options.logger,
    createActivationService({
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
    }),
  );
  const rateLimiter: RateLimiter = createRateLimiter({
    ...options.rateLimit,
    onError: (error) =>
      options.logger.warn({ err: errorMessage(error) }, "chatwoot: rate-limit store failed"),
  });
  const caller = createCallerChecks({ directory: options.directory, rateLimiter });
  // The route table: every route under the prefix, each with its methods, who may call it and its handler.
  const http = createHttpHandler({
    enabled: options.enabled,
    prefix: options.prefix,
    logger: options.logger,
    routes: [
      ...activationRoutes({ activation, caller, exposeApiToken: options.exposeApiToken }),
      createWebhookRoute({
        integrations,
        chatwoot,
        clock: options.clock,
        logger: options.logger,
        accept: (integration, event, payload) => router.acceptChatwootEvent(integration, event, payload),
      }),
    ],
  });

  return {
    http,
    guard: caller,
    prefix: options.prefix,
    async activate(instance, config, callOptions) {
      const body = activateBodySchema.safeParse(config);
      if (!body.success)
        return { status: "error", error: `invalid body: ${formatIssues(body.error as z.ZodError)}` };
      try {
        const integration = await activation.activate(instance, body.data, callOptions?.signal);
        return { status: "active", bridgeIntegrationId: integration.id, inboxId: integration.inboxId! };
      } catch (error) {
        const publicError = toBridgeError(error);
        if (publicError.code !== "INTERNAL") return { status: "error", error: publicError.message };
        // As on the HTTP routes: a generic answer, and the cause in the log under the same reference.
        const ref = errorRef();
        options.logger.error(
          { instance, ref, err: errorMessage(publicError.cause ?? error) },
          "chatwoot: activation failed",
        );
        return { status: "error", error: `internal error (ref ${ref})` };
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
      await chatwootAgent?.close();
    },
  };
}

/** The message of a refused `chatwootBaseUrl`: a 400 naming the field, as for any other bad value of the body. */
function refusedBaseUrl(reason: string): BridgeError {
  return new BridgeError("INVALID_BODY", `invalid body: chatwootBaseUrl: ${reason}`);
}

/**
 * Activation under the network policy: a base URL whose host is written as a refused address is refused before
 * anything else (no claim, no connection); a name is refused when the first call resolves it (the connector checks
 * every connection), which is reported the same way.
 */
function policed(network: NetworkPolicy, logger: Logger, service: ActivationService) {
  return {
    ...service,
    async activate(instance, config, signal) {
      const refused = network.checkUrl(config.chatwootBaseUrl);
      if (refused) {
        logger.warn({ instance, err: refused.message }, "chatwoot: activation refused by the network policy");
        throw refusedBaseUrl(refused.message);
      }
      try {
        return await service.activate(instance, config, signal);
      } catch (error) {
        const cause = isBridgeError(error) ? error.cause : null;
        if (
          isChatwootRequestError(cause) &&
          cause.failure.kind === "transport" &&
          cause.failure.code === "ERR_NETWORK_REFUSED"
        ) {
          throw refusedBaseUrl(cause.failure.cause);
        }
        throw error;
      }
    },
  } satisfies ActivationService;
}
