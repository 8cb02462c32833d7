import {
  type ChatwootAccountTarget,
  type ChatwootApi,
  type ChatwootFailure,
  type ChatwootProfile,
  ChatwootRequestError,
  classifyChatwootFailure,
  failureClass,
  isChatwootNotFound,
  isChatwootRequestError,
} from "../chatwoot/index.js";
import { BridgeError, errorMessage, errorRef, isBridgeError, MESSAGES } from "../errors/index.js";
import {
  chatwootTargetOf,
  type Integration,
  type IntegrationRepository,
  isProvisioned,
  isServing,
  newIntegrationId,
  type ProvisionedIntegration,
} from "../integrations/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { DeliveryMode, IntegrationStatus } from "../store/ports.js";
import type { ActivationConfig } from "./schema.js";
import {
  isSupportedVersion,
  OLDEST_SUPPORTED_VERSION,
  parseChatwootVersion,
  signsWebhooks,
} from "./version.js";

/** What the rest of the system needs to hear about activations (realtime links, routing). */
export interface ActivationHooks {
  /** Step 4: open (or join) the realtime subscription and resolve once it is confirmed. */
  afterPersist?(integration: Integration, signal: AbortSignal): Promise<void>;
  /** Routing for the integration must stop at once (deactivation). */
  onDeactivate?(integration: Integration): Promise<void>;
  /** A problem known locally (e.g. the realtime link is down), shown by `list`; null when healthy. */
  liveProblem?(integration: Integration): Promise<string | null> | string | null;
}

export interface ActivationServiceOptions {
  integrations: IntegrationRepository;
  chatwoot: ChatwootApi;
  clock: Clock;
  logger: Logger;
  /** The activation deadline. */
  timeoutMs: number;
  delivery: DeliveryMode;
  /** Builds the inbox `webhook_url` in webhook mode. */
  webhookUrl(integrationId: string, secret: string): string;
  newWebhookSecret(): string;
  hooks: ActivationHooks;
}

/** The live view `list` shows. */
export interface IntegrationStatusView {
  integration: Integration;
  status: Exclude<IntegrationStatus, "provisioning">;
  lastError: string;
}

const DELETE_INBOX_TIMEOUT_MS = 30_000;
/** `GET /api` starts step 1; an answer later than this counts as an unknown version. */
const VERSION_BUDGET_MS = 5_000;
const LIVE_CHECK_BUDGET_MS = 10_000;
const LIVE_CHECK_INTERVAL_MS = 30_000;
/** How long past the deadline a crashed activation's claim still blocks a new one. */
const CLAIM_GRACE_MS = 30_000;

/**
 * The provisioning state machine. Every transition is a compare-and-set on the row's version, so two
 * concurrent activations of one instance never both proceed (the loser gets 409) and never leave two inboxes.
 */
export function createActivationService(options: ActivationServiceOptions) {
  const { integrations, chatwoot, clock, logger } = options;
  const liveChecks = new Map<
    string,
    { at: number; result: { status: IntegrationStatus; lastError: string } | null }
  >();

  const inProgress = () => new BridgeError("ACTIVATION_IN_PROGRESS", MESSAGES.activationInProgress);
  // The store's message stays in the log (a database error names its SQL and bound values); the answer, the
  // caller and `last_error` get a reference to that log line.
  const persistFailed = (cause: unknown) => {
    const ref = errorRef();
    logger.error({ ref, err: errorMessage(cause) }, "chatwoot: persist integration failed");
    return new BridgeError(
      "PERSIST_FAILED",
      `chatwoot integration failed: persist integration: storage error (ref ${ref})`,
      { cause },
    );
  };
  const storage = async <T>(operation: () => Promise<T>): Promise<T> => {
    try {
      return await operation();
    } catch (cause) {
      throw persistFailed(cause);
    }
  };
  const isLiveClaim = (integration: Integration, now: Date) =>
    integration.provisioningUntil !== null && integration.provisioningUntil.getTime() > now.getTime();

  /** Marks the instance as being activated; fresh = no usable integration existed before. */
  async function claim(
    instance: string,
    config: ActivationConfig,
  ): Promise<{ claimed: Integration; fresh: boolean }> {
    const now = clock.now();
    const provisioningUntil = new Date(now.getTime() + options.timeoutMs + CLAIM_GRACE_MS);
    for (let attempt = 0; attempt < 2; attempt++) {
      const existing = await storage(() => integrations.get(instance));
      if (!existing) {
        const inserted = await storage(() =>
          integrations.insert({
            id: newIntegrationId(),
            instance,
            status: "provisioning",
            baseUrl: config.chatwootBaseUrl,
            accountId: config.chatwootAccountId,
            apiToken: config.chatwootApiToken,
            webhookSecret: null,
            signingSecret: null,
            chatwootVersion: null,
            inboxId: null,
            inboxName: config.inboxName,
            chatwootUserId: null,
            deliveryMode: options.delivery,
            signMessages: config.signMessages,
            ignoreGroups: config.ignoreGroups,
            startAsPending: config.startAsPending,
            reopenResolved: config.reopenResolved,
            importHistoryDays: config.importHistoryDays,
            lastError: "",
            provisioningUntil,
          }),
        );
        if (inserted) return { claimed: inserted, fresh: true };
        continue; // another activation inserted first: look at its row
      }
      if (isLiveClaim(existing, now)) throw inProgress();
      const claimed = await storage(() => integrations.update(existing, { provisioningUntil }));
      if (!claimed) throw inProgress();
      return { claimed, fresh: !isProvisioned(existing) };
    }
    throw inProgress();
  }

  /** Step 1: the token must be an administrator's in the account. Answers the token user's profile. */
  async function verifyAdmin(target: ChatwootAccountTarget, signal: AbortSignal): Promise<ChatwootProfile> {
    const profile = await chatwoot.getProfile(target, { signal });
    const url = `${target.baseUrl}/api/v1/profile`;
    const account = profile.accounts.find((entry) => entry.id === target.accountId);
    if (!account) {
      const accountIds = profile.accounts.map((entry) => entry.id);
      throw new ChatwootRequestError({ kind: "account-missing", url, accountIds });
    }
    if (account.role !== "administrator") {
      throw new ChatwootRequestError({ kind: "not-admin", url, role: account.role ?? "unknown" });
    }
    return profile;
  }

  /**
   * Chatwoot's version (`GET /api`, no authentication: `app/controllers/api_controller.rb`), or null when it cannot be
   * read or is not a version (a proxy in front of Chatwoot, an old or unusual build): unknown, and accepted.
   */
  async function readVersion(target: ChatwootAccountTarget, signal: AbortSignal): Promise<string | null> {
    try {
      const answer = await chatwoot.getVersion(target, { signal, timeoutMs: VERSION_BUDGET_MS });
      const version = parseChatwootVersion(answer);
      if (version === null)
        logger.warn({ baseUrl: target.baseUrl }, "chatwoot: GET /api answered no version");
      return version;
    } catch (error) {
      logger.warn(
        { baseUrl: target.baseUrl, err: errorMessage(error) },
        "chatwoot: could not read Chatwoot's version (GET /api)",
      );
      return null;
    }
  }

  /**
   * Step 1: Chatwoot's version, then the administrator check. A version older than the oldest supported one is refused
   * before anything else is asked (no inbox is created); an unknown one is accepted.
   */
  async function checkChatwoot(
    target: ChatwootAccountTarget,
    signal: AbortSignal,
  ): Promise<{ profile: ChatwootProfile; version: string | null }> {
    const version = await readVersion(target, signal);
    if (version !== null && !isSupportedVersion(version)) {
      throw new BridgeError(
        "CHATWOOT_VERSION_UNSUPPORTED",
        `Chatwoot ${version} is not supported - upgrade Chatwoot at ${target.baseUrl} to ${OLDEST_SUPPORTED_VERSION} or later. Detail: ${target.baseUrl}/api answered version "${version}"`,
      );
    }
    return { profile: await verifyAdmin(target, signal), version };
  }

  /** The inbox webhook in webhook mode (a re-activation keeps its secret); none in realtime mode. */
  function webhookOf(claimed: Integration): { secret: string | null; url: string } {
    if (options.delivery !== "webhook") return { secret: null, url: "" };
    const secret = claimed.webhookSecret ?? options.newWebhookSecret();
    return { secret, url: options.webhookUrl(claimed.id, secret) };
  }

  /**
   * Step 2: the inbox of a re-activation on the same account is reused (renamed, re-hooked when needed) unless it
   * is gone; otherwise one is created.
   */
  async function ensureInbox(
    claimed: Integration,
    fresh: boolean,
    target: ChatwootAccountTarget,
    config: ActivationConfig,
    webhookUrl: string,
    signal: AbortSignal,
  ): Promise<{ inboxId: number; created: boolean; signingSecret: string | null }> {
    const reusable =
      !fresh &&
      claimed.inboxId !== null &&
      claimed.baseUrl === target.baseUrl &&
      claimed.accountId === target.accountId;
    if (reusable) {
      try {
        const inbox = await chatwoot.getInbox(target, claimed.inboxId!, { signal });
        const rename = inbox.name !== config.inboxName;
        const rehook = (inbox.webhook_url ?? "") !== webhookUrl;
        let current = inbox;
        if (rename || rehook) {
          current = await chatwoot.updateInbox(
            target,
            inbox.id,
            { ...(rename ? { name: config.inboxName } : {}), ...(rehook ? { webhookUrl } : {}) },
            { signal },
          );
        }
        return {
          inboxId: inbox.id,
          created: false,
          signingSecret: signingSecretOf(current) ?? signingSecretOf(inbox),
        };
      } catch (error) {
        if (!isChatwootNotFound(error)) throw error;
        logger.info(
          { instance: claimed.instance, inboxId: claimed.inboxId },
          "chatwoot: previous inbox is gone",
        );
      }
    }
    const inbox = await chatwoot.createInbox(target, { name: config.inboxName, webhookUrl }, { signal });
    return { inboxId: inbox.id, created: true, signingSecret: signingSecretOf(inbox) };
  }

  /** Step 3: the claimed row becomes the active integration, in one compare-and-set. */
  async function persist(
    claimed: Integration,
    target: ChatwootAccountTarget,
    config: ActivationConfig,
    chatwootSide: {
      chatwootUserId: number;
      inboxId: number;
      webhookSecret: string | null;
      signingSecret: string | null;
      chatwootVersion: string | null;
    },
  ): Promise<Integration> {
    const saved = await storage(() =>
      integrations.update(claimed, {
        status: "active",
        baseUrl: target.baseUrl,
        accountId: target.accountId,
        apiToken: target.apiToken,
        ...chatwootSide,
        inboxName: config.inboxName,
        deliveryMode: options.delivery,
        signMessages: config.signMessages,
        ignoreGroups: config.ignoreGroups,
        startAsPending: config.startAsPending,
        reopenResolved: config.reopenResolved,
        importHistoryDays: config.importHistoryDays,
        lastError: "",
        provisioningUntil: null,
      }),
    );
    if (!saved) throw persistFailed(new Error("the integration was changed concurrently"));
    return saved;
  }

  /**
   * Step 4: the realtime link is confirmed (hook `afterPersist`). A failure keeps the integration and its inbox
   * (routing work is durable) with status `error`, and is reported.
   */
  async function confirmLive(
    persisted: Integration,
    signal: AbortSignal,
    toPublicError: (error: unknown) => BridgeError,
  ): Promise<void> {
    if (!options.hooks.afterPersist) return;
    try {
      await options.hooks.afterPersist(persisted, signal);
    } catch (error) {
      const publicError = toPublicError(error);
      await integrations
        .update(persisted, { status: "error", lastError: publicError.message })
        .catch((cause) =>
          logger.error(
            { instance: persisted.instance, err: errorMessage(cause) },
            "chatwoot: could not record error",
          ),
        );
      throw publicError;
    }
  }

  /** Undoes a claim after a failed activation: nothing already stored is lost. */
  async function release(claimed: Integration, fresh: boolean): Promise<void> {
    try {
      if (fresh) await integrations.delete(claimed.id, claimed.version);
      else await integrations.update(claimed, { provisioningUntil: null });
    } catch (error) {
      // The claim expires by itself; a later activation takes the row over.
      logger.error(
        { instance: claimed.instance, err: errorMessage(error) },
        "chatwoot: could not release activation claim",
      );
    }
  }

  /** A failure before step 3 stored anything: deletes the inbox this activation created, releases the claim. */
  async function compensate(
    claimed: Integration,
    fresh: boolean,
    target: ChatwootAccountTarget,
    createdInbox: number | null,
  ): Promise<void> {
    if (createdInbox !== null) {
      const log = { instance: claimed.instance, inboxId: createdInbox };
      await chatwoot
        .deleteInbox(target, createdInbox, { timeoutMs: DELETE_INBOX_TIMEOUT_MS })
        .then(() => logger.warn(log, "chatwoot: deleted the inbox of a failed activation"))
        .catch((cause) =>
          logger.error(
            { ...log, err: errorMessage(cause) },
            "chatwoot: compensation failed, inbox left behind",
          ),
        );
    }
    await release(claimed, fresh);
  }

  /**
   * Claims the instance, then: (1) verify the token is an administrator's, (2) reuse or create the inbox,
   * (3) persist, (4) confirm the realtime link. A failure before (3) is compensated, so nothing is left behind and a
   * working integration stays as it was; a failure of (4) keeps the integration with status `error`.
   */
  async function activate(
    instance: string,
    config: ActivationConfig,
    callerSignal?: AbortSignal,
  ): Promise<Integration> {
    const deadline = AbortSignal.timeout(options.timeoutMs);
    const signal = callerSignal ? AbortSignal.any([deadline, callerSignal]) : deadline;
    const target: ChatwootAccountTarget = {
      baseUrl: config.chatwootBaseUrl,
      accountId: config.chatwootAccountId,
      apiToken: config.chatwootApiToken,
    };
    const toPublicError = (error: unknown) => toActivationError(error, deadline, options.timeoutMs, target);
    const { claimed, fresh } = await claim(instance, config);
    let createdInbox: number | null = null;
    let persisted: Integration;
    try {
      const { profile, version } = await checkChatwoot(target, signal);
      const webhook = webhookOf(claimed);
      const inbox = await ensureInbox(claimed, fresh, target, config, webhook.url, signal);
      if (inbox.created) createdInbox = inbox.inboxId;
      // The webhook route verifies Chatwoot's signatures with it (webhook mode only; realtime mode keeps none).
      const signingSecret = options.delivery === "webhook" ? inbox.signingSecret : null;
      if (options.delivery === "webhook" && signingSecret === null && signsWebhooks(version)) {
        logger.warn(
          { instance, version },
          "chatwoot: the inbox JSON shows no webhook signing secret; deliveries are refused until it can be read",
        );
      }
      persisted = await persist(claimed, target, config, {
        chatwootUserId: profile.id,
        inboxId: inbox.inboxId,
        webhookSecret: webhook.secret,
        signingSecret,
        chatwootVersion: version,
      });
    } catch (error) {
      const publicError = toPublicError(error);
      await compensate(claimed, fresh, target, createdInbox);
      logger.warn(
        { instance, code: publicError.code, err: publicError.message },
        "chatwoot: activation failed",
      );
      throw publicError;
    }
    liveChecks.delete(persisted.id);
    await confirmLive(persisted, signal, toPublicError);
    logger.info(
      { instance, integrationId: persisted.id, inboxId: persisted.inboxId, reused: createdInbox === null },
      "chatwoot: activated",
    );
    return persisted;
  }

  async function deactivate(instance: string, deleteInbox: boolean): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await integrations.get(instance);
      if (!isProvisioned(existing)) {
        if (existing && isLiveClaim(existing, clock.now())) throw inProgress();
        throw new BridgeError("INTEGRATION_NOT_FOUND", MESSAGES.noIntegrationToDelete);
      }
      if (isLiveClaim(existing, clock.now())) throw inProgress();
      await options.hooks.onDeactivate?.(existing);
      if (!(await integrations.delete(existing.id, existing.version))) continue; // changed meanwhile: look again
      liveChecks.delete(existing.id);
      logger.info({ instance, integrationId: existing.id }, "chatwoot: deactivated");
      if (deleteInbox) {
        try {
          await chatwoot.deleteInbox(chatwootTargetOf(existing), existing.inboxId, {
            timeoutMs: DELETE_INBOX_TIMEOUT_MS,
          });
        } catch (error) {
          if (!isChatwootNotFound(error))
            logger.warn(
              { instance, inboxId: existing.inboxId, err: errorMessage(error) },
              "chatwoot: inbox not deleted",
            );
        }
      }
      return;
    }
    throw inProgress();
  }

  /** Stored state enriched with a cached, best-effort check of the inbox against Chatwoot. */
  async function status(instance: string): Promise<IntegrationStatusView> {
    const integration = await integrations.get(instance);
    if (!isProvisioned(integration)) {
      throw new BridgeError("INTEGRATION_NOT_FOUND", MESSAGES.noIntegration);
    }
    const view: IntegrationStatusView = {
      integration,
      status: integration.status,
      lastError: integration.lastError,
    };
    if (!isServing(integration)) return view; // paused: nothing live to check until it is re-activated
    const problem = (await options.hooks.liveProblem?.(integration)) ?? null;
    if (problem) return { ...view, status: "error", lastError: problem };
    const live = await liveCheck(integration);
    if (live && live.status !== "provisioning") {
      view.status = live.status;
      view.lastError = live.lastError;
    }
    return view;
  }

  async function liveCheck(integration: ProvisionedIntegration) {
    const cached = liveChecks.get(integration.id);
    const now = clock.now().getTime();
    if (cached && now - cached.at < LIVE_CHECK_INTERVAL_MS) return cached.result;
    let result: { status: IntegrationStatus; lastError: string } | null;
    try {
      await chatwoot.getInbox(chatwootTargetOf(integration), integration.inboxId, {
        timeoutMs: LIVE_CHECK_BUDGET_MS,
      });
      result = { status: "active", lastError: integration.status === "error" ? "" : integration.lastError };
    } catch (error) {
      if (!isChatwootRequestError(error)) {
        result = null; // the check itself broke: fall back to the stored row
      } else if (isChatwootNotFound(error)) {
        result = {
          status: "error",
          lastError: `Chatwoot inbox ${integration.inboxId} no longer exists - re-activate the integration to create a new one.`,
        };
      } else {
        const classified = classifyChatwootFailure(error.failure, integration);
        result = {
          status: failureClass(error.failure) === "CHATWOOT_TOKEN_REJECTED" ? "paused" : "error",
          lastError: classified.message,
        };
      }
    }
    liveChecks.set(integration.id, { at: now, result });
    return result;
  }

  return { activate, deactivate, status };
}

export type ActivationService = ReturnType<typeof createActivationService>;

/** The webhook-signing `secret` of an API inbox (administrators see it from Chatwoot 4.13), or null. */
function signingSecretOf(inbox: { secret?: string | null | undefined } | null | undefined): string | null {
  const secret = inbox?.secret;
  return typeof secret === "string" && secret !== "" ? secret : null;
}

function toActivationError(
  error: unknown,
  deadline: AbortSignal,
  timeoutMs: number,
  context: { baseUrl: string; accountId: number },
): BridgeError {
  if (isBridgeError(error)) return error;
  if (isChatwootRequestError(error)) {
    const failure: ChatwootFailure = deadline.aborted
      ? { kind: "deadline", seconds: timeoutMs / 1000 }
      : error.failure;
    return classifyChatwootFailure(failure, context);
  }
  if (deadline.aborted)
    return classifyChatwootFailure({ kind: "deadline", seconds: timeoutMs / 1000 }, context);
  return new BridgeError("INTERNAL", "internal error", { cause: error });
}
