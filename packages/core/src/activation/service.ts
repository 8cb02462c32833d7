import {
  type ChatwootAccountTarget,
  type ChatwootApi,
  type ChatwootFailure,
  ChatwootRequestError,
  classifyChatwootFailure,
  failureClass,
  isChatwootRequestError,
} from "../chatwoot/index.js";
import { BridgeError, errorMessage, isBridgeError, MESSAGES } from "../errors/index.js";
import { type Integration, type IntegrationRepository, newIntegrationId } from "../integrations/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { DeliveryMode, IntegrationStatus } from "../store/ports.js";
import type { ActivationConfig } from "./schema.js";

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
  /** The activation deadline. Default 60 s. */
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
  const persistFailed = (cause: unknown) =>
    new BridgeError(
      "PERSIST_FAILED",
      `chatwoot integration failed: persist integration: ${errorMessage(cause)}`,
      { cause },
    );
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
            inboxId: null,
            inboxName: config.inboxName,
            chatwootUserId: null,
            deliveryMode: options.delivery,
            signMessages: config.signMessages,
            ignoreGroups: config.ignoreGroups,
            startAsPending: config.startAsPending,
            reopenResolved: config.reopenResolved,
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
      return { claimed, fresh: existing.status === "provisioning" };
    }
    throw inProgress();
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

  async function ensureInbox(
    claimed: Integration,
    fresh: boolean,
    target: ChatwootAccountTarget,
    config: ActivationConfig,
    webhookUrl: string,
    signal: AbortSignal,
  ): Promise<{ inboxId: number; created: boolean }> {
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
        if (rename || rehook) {
          await chatwoot.updateInbox(
            target,
            inbox.id,
            { ...(rename ? { name: config.inboxName } : {}), ...(rehook ? { webhookUrl } : {}) },
            { signal },
          );
        }
        return { inboxId: inbox.id, created: false };
      } catch (error) {
        const gone =
          isChatwootRequestError(error) && error.failure.kind === "http" && error.failure.status === 404;
        if (!gone) throw error;
        logger.info(
          { instance: claimed.instance, inboxId: claimed.inboxId },
          "chatwoot: previous inbox is gone",
        );
      }
    }
    const inbox = await chatwoot.createInbox(target, { name: config.inboxName, webhookUrl }, { signal });
    return { inboxId: inbox.id, created: true };
  }

  async function activate(
    instance: string,
    config: ActivationConfig,
    callerSignal?: AbortSignal,
  ): Promise<Integration> {
    const deadline = AbortSignal.timeout(options.timeoutMs);
    const signal = callerSignal ? AbortSignal.any([deadline, callerSignal]) : deadline;
    const { claimed, fresh } = await claim(instance, config);
    const target: ChatwootAccountTarget = {
      baseUrl: config.chatwootBaseUrl,
      accountId: config.chatwootAccountId,
      apiToken: config.chatwootApiToken,
    };
    const classifyContext = { baseUrl: target.baseUrl, accountId: target.accountId };
    let createdInbox: number | null = null;
    let persisted: Integration;
    try {
      const profile = await chatwoot.getProfile(target, { signal });
      const profileUrl = `${target.baseUrl}/api/v1/profile`;
      const account = profile.accounts.find((entry) => entry.id === target.accountId);
      if (!account) {
        const accountIds = profile.accounts.map((entry) => entry.id);
        throw new ChatwootRequestError({ kind: "account-missing", url: profileUrl, accountIds });
      }
      if (account.role !== "administrator") {
        throw new ChatwootRequestError({
          kind: "not-admin",
          url: profileUrl,
          role: account.role ?? "unknown",
        });
      }
      const webhookSecret =
        options.delivery === "webhook" ? (claimed.webhookSecret ?? options.newWebhookSecret()) : null;
      const webhookUrl = webhookSecret === null ? "" : options.webhookUrl(claimed.id, webhookSecret);
      const inbox = await ensureInbox(claimed, fresh, target, config, webhookUrl, signal);
      if (inbox.created) createdInbox = inbox.inboxId;

      const saved = await storage(() =>
        integrations.update(claimed, {
          status: "active",
          baseUrl: target.baseUrl,
          accountId: target.accountId,
          apiToken: target.apiToken,
          webhookSecret,
          inboxId: inbox.inboxId,
          inboxName: config.inboxName,
          chatwootUserId: profile.id,
          deliveryMode: options.delivery,
          signMessages: config.signMessages,
          ignoreGroups: config.ignoreGroups,
          startAsPending: config.startAsPending,
          reopenResolved: config.reopenResolved,
          lastError: "",
          provisioningUntil: null,
        }),
      );
      if (!saved) throw persistFailed(new Error("the integration was changed concurrently"));
      persisted = saved;
    } catch (error) {
      const publicError = toActivationError(error, deadline, options.timeoutMs, classifyContext);
      if (createdInbox !== null) {
        const inboxId = createdInbox;
        await chatwoot
          .deleteInbox(target, inboxId, { timeoutMs: DELETE_INBOX_TIMEOUT_MS })
          .then(() =>
            logger.warn({ instance, inboxId }, "chatwoot: deleted the inbox of a failed activation"),
          )
          .catch((cause) =>
            logger.error(
              { instance, inboxId, err: errorMessage(cause) },
              "chatwoot: compensation failed, inbox left behind",
            ),
          );
      }
      await release(claimed, fresh);
      logger.warn(
        { instance, code: publicError.code, err: publicError.message },
        "chatwoot: activation failed",
      );
      throw publicError;
    }
    liveChecks.delete(persisted.id);
    if (options.hooks.afterPersist) {
      try {
        await options.hooks.afterPersist(persisted, signal);
      } catch (error) {
        // Persisted but not live: the integration and its inbox stay (routing work is durable); report it.
        const publicError = toActivationError(error, deadline, options.timeoutMs, classifyContext);
        await integrations
          .update(persisted, { status: "error", lastError: publicError.message })
          .catch((cause) =>
            logger.error({ instance, err: errorMessage(cause) }, "chatwoot: could not record error"),
          );
        throw publicError;
      }
    }
    logger.info(
      { instance, integrationId: persisted.id, inboxId: persisted.inboxId, reused: createdInbox === null },
      "chatwoot: activated",
    );
    return persisted;
  }

  async function deactivate(instance: string, deleteInbox: boolean): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await integrations.get(instance);
      if (!existing || existing.status === "provisioning") {
        if (existing && isLiveClaim(existing, clock.now())) throw inProgress();
        throw new BridgeError("INTEGRATION_NOT_FOUND", MESSAGES.noIntegrationToDelete);
      }
      if (isLiveClaim(existing, clock.now())) throw inProgress();
      await options.hooks.onDeactivate?.(existing);
      if (!(await integrations.delete(existing.id, existing.version))) continue; // changed meanwhile: look again
      liveChecks.delete(existing.id);
      logger.info({ instance, integrationId: existing.id }, "chatwoot: deactivated");
      if (deleteInbox && existing.inboxId !== null) {
        const target = {
          baseUrl: existing.baseUrl,
          accountId: existing.accountId,
          apiToken: existing.apiToken,
        };
        try {
          await chatwoot.deleteInbox(target, existing.inboxId, { timeoutMs: DELETE_INBOX_TIMEOUT_MS });
        } catch (error) {
          const gone =
            isChatwootRequestError(error) && error.failure.kind === "http" && error.failure.status === 404;
          if (!gone)
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
    if (!integration || integration.status === "provisioning") {
      throw new BridgeError("INTEGRATION_NOT_FOUND", MESSAGES.noIntegration);
    }
    const view: IntegrationStatusView = {
      integration,
      status: integration.status,
      lastError: integration.lastError,
    };
    if (integration.status === "paused" || integration.inboxId === null) return view;
    const problem = (await options.hooks.liveProblem?.(integration)) ?? null;
    if (problem) return { ...view, status: "error", lastError: problem };
    const live = await liveCheck(integration);
    if (live && live.status !== "provisioning") {
      view.status = live.status;
      view.lastError = live.lastError;
    }
    return view;
  }

  async function liveCheck(integration: Integration) {
    const cached = liveChecks.get(integration.id);
    const now = clock.now().getTime();
    if (cached && now - cached.at < LIVE_CHECK_INTERVAL_MS) return cached.result;
    let result: { status: IntegrationStatus; lastError: string } | null;
    const target = {
      baseUrl: integration.baseUrl,
      accountId: integration.accountId,
      apiToken: integration.apiToken,
    };
    try {
      await chatwoot.getInbox(target, integration.inboxId!, { timeoutMs: LIVE_CHECK_BUDGET_MS });
      result = { status: "active", lastError: integration.status === "error" ? "" : integration.lastError };
    } catch (error) {
      if (!isChatwootRequestError(error)) {
        result = null; // the check itself broke: fall back to the stored row
      } else if (error.failure.kind === "http" && error.failure.status === 404) {
        result = {
          status: "error",
          lastError: `Chatwoot inbox ${integration.inboxId} no longer exists - re-activate the integration to create a new one.`,
        };
      } else {
        const classified = classifyChatwootFailure(error.failure, {
          baseUrl: integration.baseUrl,
          accountId: integration.accountId,
        });
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
