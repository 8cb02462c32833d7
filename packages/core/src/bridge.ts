import { randomBytes, randomUUID } from "node:crypto";
import type { Registry } from "prom-client";
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
  createFailedAuthLimiter,
  createHttpHandler,
  createRateLimiter,
  type HttpHandler,
  type RateLimiter,
} from "./http/index.js";
import { type LiveState, statusRoutes } from "./http/status-routes.js";
import { statusPageRoute } from "./http/ui/index.js";
import {
  createIntegrationRepository,
  type Integration,
  type RotateKeysResult,
} from "./integrations/index.js";
import {
  createNetworkPolicy,
  createPolicyAgent,
  type NetworkPolicy,
  networkOptionsSchema,
} from "./net/index.js";
import { createHealth, type HealthReport, type HealthScope } from "./observability/health.js";
import { type Clock, type Logger, silentLogger, systemClock } from "./observability/index.js";
import {
  type BridgeMetrics,
  createBridgeMetrics,
  instrumentChatwootApi,
  type RealtimeStats,
} from "./observability/metrics.js";
import { createRealtimeHub, createRealtimeOwnership } from "./realtime/index.js";
import { postStatusNote } from "./realtime/status-note.js";
import type { WhatsAppEvent } from "./routing/events.js";
import type { WhatsAppGateway } from "./routing/gateway.js";
import { createRetention } from "./routing/retention.js";
import { createRouter, type IngestResult } from "./routing/service.js";
import { createWebhookRoute } from "./routing/webhook.js";
import type { IntegrationRow, StoragePort } from "./store/ports.js";

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
  /**
   * Failed caller authentication (a missing or unknown token) per client address, on every route that checks caller
   * tokens and in `guard`: past `points` failures within `durationSeconds` the address is answered 429 with
   * `Retry-After`, without asking the directory, until its window ends. The address is `HttpRequest.remoteAddress`
   * (behind a proxy, the framework's trusted-proxy setting decides it); IPv6 counts by /64.
   */
  failedAuth: z
    .object({
      points: z.number().int().positive().default(20),
      durationSeconds: z.number().int().positive().default(60),
      /** A limiter on a shared store (Redis, SQL) for clusters, built with the same points and duration. */
      limiter: z
        .custom<RateLimiterAbstract>((value) => typeof value === "object" && value !== null)
        .optional(),
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
      /**
       * How often each subscription is probed for deafness (confirmed, but events do not arrive): the inbox's newest
       * messages over REST against the newest seen on the link (`docs/chatwoot-versions.md`).
       */
      deafProbeIntervalMs: z.number().int().min(200).default(60_000),
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
  /**
   * One person, one chat (`docs/identity.md`): `brazilNinthDigit` makes a Brazilian mobile number with and without
   * its 9th digit one person (default true).
   */
  identity: z.object({ brazilNinthDigit: z.boolean().default(true) }).prefault({}),
  /**
   * Prometheus metrics (prom-client): on the host's `registry` or a new one (`bridge.metrics`), names prefixed with
   * `prefix`; `instanceLabels` adds the instance to the per-message counters (`docs/operations.md`).
   */
  metrics: z
    .object({
      registry: port<Registry>("prom-client Registry", [
        "metrics",
        "registerMetric",
        "getSingleMetric",
      ]).optional(),
      prefix: z
        .string()
        .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, {
          error: "must be a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)",
        })
        .default("chatwoot_bridge_"),
      instanceLabels: z.boolean().default(false),
    })
    .prefault({}),
  /**
   * Outbox retention: finished items are deleted `doneMs` (done) or `deadMs` (dead letters) after they were enqueued,
   * `batchSize` per statement, by one process of a cluster at a time, every `intervalMs`.
   */
  retention: z
    .object({
      doneMs: z
        .number()
        .int()
        .positive()
        .default(7 * 86_400_000),
      deadMs: z
        .number()
        .int()
        .positive()
        .default(30 * 86_400_000),
      batchSize: z.number().int().positive().max(10_000).default(500),
      intervalMs: z.number().int().positive().default(60_000),
    })
    .prefault({}),
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
  /**
   * Re-seals every stored secret under the current key, one pass: rows re-sealed now, rows already on the current
   * key, and rows `busy` (held by an activation, or changed during the pass). Rotation is complete when a pass
   * answers `busy: 0`: `do r = await bridge.rotateKeys(); while (r.busy > 0)` (`docs/security.md`).
   */
  rotateKeys(options?: { batchSize?: number }): Promise<RotateKeysResult>;
  /** The prom-client registry the bridge's metrics are on (the host's, or its own): serve `metrics()` on `/metrics`. */
  readonly metrics: Registry;
  /**
   * Liveness (`liveness`: the store answers) or readiness (`readiness`, the default: also the outbox dispatcher runs
   * and every realtime link this process holds is confirmed or recovering within its budget), each check named.
   */
  health(scope?: HealthScope): Promise<HealthReport>;
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
  const metrics: BridgeMetrics = createBridgeMetrics(options.metrics, {
    outbox: async () => {
      const now = options.clock.now();
      return { ...(await options.store.outbox.totals(now)), now };
    },
    realtime: () => realtimeStats(),
  });
  const chatwoot = instrumentChatwootApi(options.chatwootApi ?? ownApi!, metrics);
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
    identity: options.identity,
    media: { ...options.media, network },
    observe: {
      attempt: (item, outcome, instance) =>
        metrics.attempt(
          item.direction,
          String((item.payload as { kind?: unknown })?.kind ?? "unknown"),
          outcome.kind,
          instance,
        ),
      dead: (item, instance) => metrics.deadLetter(item.direction, instance),
    },
    realtimeState: (integration) => realtimeState(integration.id),
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
    onReconnect: (id, since) =>
      withIntegration(id, async (integration) =>
        hub.recordBackfill(await router.backfill(integration, since)),
      ),
    deafProbeIntervalMs: options.realtime.deafProbeIntervalMs,
    onDeaf: (id, since) =>
      withIntegration(id, (integration) =>
        postStatusNote(chatwoot, integration, {
          content:
            "The WhatsApp bridge noticed that Chatwoot's realtime events stopped reaching it although it was subscribed. It subscribed again and fetches the replies sent meanwhile, so they still reach WhatsApp.",
          marker: `(realtime link deaf since ${since.toISOString()})`,
        }),
      ),
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
        .then((queued) => hub.recordBackfill(queued))
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
  /** The realtime link's state as this process knows it (webhook mode: null). */
  const realtimeState = async (id: string): Promise<string | null> => {
    if (!realtime) return null;
    const status = hub.status(id);
    if (status) return status.state;
    if (ownership.failure(id)) return "disconnected";
    const lease = await ownership.holder(id);
    return lease && lease.expiresAt.getTime() > options.clock.now().getTime() ? "remote" : "none";
  };
  /** The status route's view: the stored status with the live problems `list` shows, without asking Chatwoot. */
  const liveState = async (row: IntegrationRow): Promise<LiveState> => {
    const realtimeNow = await realtimeState(row.id);
    const stored = row.status === "provisioning" ? "error" : row.status;
    if (stored === "paused") return { status: stored, lastError: row.lastError, realtime: realtimeNow };
    // The row as the hook reads it: only its id is used (the secrets stay sealed).
    const problem = (await hooks.liveProblem?.(row)) ?? null;
    return problem
      ? { status: "error", lastError: problem, realtime: realtimeNow }
      : { status: stored, lastError: row.lastError, realtime: realtimeNow };
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
  countActivations(activation, metrics);
  /** The realtime links of this process for the metrics (webhook mode: none). */
  const realtimeStats = (): RealtimeStats | null => (realtime ? hub.stats() : null);
  const health = createHealth({
    clock: options.clock,
    probeStore: () => options.store.integrations.list({ limit: 1 }),
    storeTimeoutMs: 5_000,
    dispatcherRunning: () => router.dispatcher.isRunning,
    realtimeLinks: () =>
      realtime
        ? ownership.owned().map((integrationId) => ({
            integrationId,
            state: hub.status(integrationId)?.state ?? "connecting",
          }))
        : null,
    // A lost link is retried at least every maxReconnectDelayMs, and each subscription waits subscribeTimeoutMs.
    realtimeBudgetMs: 2 * options.realtime.maxReconnectDelayMs + 2 * options.realtime.subscribeTimeoutMs,
  });
  const retention = createRetention({
    outbox: options.store.outbox,
    leases: options.store.leases,
    clock: options.clock,
    logger: options.logger,
    owner: options.processId,
    ...options.retention,
    maxBatches: 20,
    onPruned: (count) => metrics.pruned(count),
  });
  const rateLimiter: RateLimiter = countRefusals(
    createRateLimiter({
      ...options.rateLimit,
      onError: (error) =>
        options.logger.warn({ err: errorMessage(error) }, "chatwoot: rate-limit store failed"),
    }),
    metrics,
  );
  const failedAuth = createFailedAuthLimiter({
    ...options.failedAuth,
    onError: (error) =>
      options.logger.warn({ err: errorMessage(error) }, "chatwoot: failed-auth limiter store failed"),
  });
  const caller = createCallerChecks({ directory: options.directory, rateLimiter, failedAuth });
  // The route table: every route under the prefix, each with its methods, who may call it and its handler.
  const http = createHttpHandler({
    enabled: options.enabled,
    prefix: options.prefix,
    logger: options.logger,
    routes: [
      ...activationRoutes({
        activation,
        caller,
        exposeApiToken: options.exposeApiToken,
        history: (integrationId) => options.store.mappings.historyProgress(integrationId),
        realtime: realtimeState,
      }),
      ...statusRoutes({
        caller,
        directory: options.directory,
        store: options.store,
        clock: options.clock,
        live: liveState,
      }),
      statusPageRoute(),
      createWebhookRoute({
        integrations,
        chatwoot,
        clock: options.clock,
        logger: options.logger,
        accept: (integration, event, payload) => router.acceptChatwootEvent(integration, event, payload),
      }),
    ],
  });

  let stopping: Promise<void> | null = null;
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
    metrics: metrics.registry,
    health: (scope) => health.check(scope),
    rotateKeys(rotateOptions) {
      return integrations.rotateKeys(rotateOptions);
    },
    async start() {
      router.start();
      if (realtime) ownership.start();
      retention.start();
    },
    stop() {
      // Once: a second call (a host's shutdown hook after a test's) waits for the first.
      stopping ??= (async () => {
        await retention.stop();
        await ownership.stop();
        await router.stop();
        hub.close();
        await ownApi?.close();
        await chatwootAgent?.close();
      })();
      return stopping;
    },
  };
}

/** Counts the requests the per-token quota refuses. */
function countRefusals(limiter: RateLimiter, metrics: BridgeMetrics): RateLimiter {
  return {
    async consume(token) {
      const decision = await limiter.consume(token);
      if (!decision.allowed) metrics.rateLimitRefused();
      return decision;
    },
  };
}

/** Counts activations by outcome (`active`, or the error code), on the routes and inline alike. */
function countActivations(service: ActivationService, metrics: BridgeMetrics): void {
  const activate = service.activate.bind(service);
  service.activate = async (...args) => {
    try {
      const integration = await activate(...args);
      metrics.activation("active");
      return integration;
    } catch (error) {
      metrics.activation(toBridgeError(error).code);
      throw error;
    }
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
