import type * as z from "zod";
import { activateBodySchema, formatIssues } from "../activation/schema.js";
import type { ActivationService } from "../activation/service.js";
import { BridgeError, MESSAGES } from "../errors/index.js";
import type { HistoryProgress } from "../store/ports.js";
import { readJsonBody, SET_BODY_LIMIT } from "./body.js";
import type { CallerChecks } from "./caller.js";
import { json } from "./response.js";
import { defineRoute, type Route } from "./routes.js";

export interface ActivationRoutesOptions {
  activation: ActivationService;
  caller: CallerChecks;
  /** `list` returns the plaintext Chatwoot token unless this is false (then `null`). */
  exposeApiToken: boolean;
  /** The history-sync counts of an integration (`docs/history.md`). */
  history?: (integrationId: string) => Promise<HistoryProgress>;
  /**
   * The realtime link's state as this process knows it (`connecting`, `connected`, `disconnected`, `deaf`, `remote`,
   * `none`), or null in webhook mode.
   */
  realtime?: (integrationId: string) => Promise<string | null>;
}

const isoSeconds = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

/** `POST set/:instance`, `GET|HEAD list/:instance`, `DELETE delete/:instance`, exactly as `docs/http-api.md` says. */
export function activationRoutes(options: ActivationRoutesOptions): Route[] {
  const { activation, caller } = options;
  return [
    defineRoute({
      path: "set/:instance",
      methods: ["POST"],
      access: caller.access,
      async handle({ request, params: { instance } }) {
        const { value } = await readJsonBody(request, SET_BODY_LIMIT);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          throw new BridgeError("INVALID_BODY", "invalid body: expected a JSON object");
        }
        const parsed = activateBodySchema.safeParse(value);
        if (!parsed.success) {
          throw new BridgeError("INVALID_BODY", `invalid body: ${formatIssues(parsed.error as z.ZodError)}`);
        }
        const integration = await activation.activate(instance, parsed.data, request.signal);
        return json(201, {
          instance,
          status: "active",
          bridge_integration_id: integration.id,
          message: MESSAGES.activated,
        });
      },
    }),
    defineRoute({
      path: "list/:instance",
      methods: ["GET", "HEAD"],
      access: caller.access,
      async handle({ params: { instance } }) {
        const view = await activation.status(instance);
        const { integration } = view;
        const [history, realtime] = await Promise.all([
          options.history?.(integration.id) ?? { queued: 0, imported: 0, skipped: 0 },
          options.realtime?.(integration.id) ?? null,
        ]);
        return json(
          200,
          {
            instance_name: integration.instance,
            status: view.status,
            bridge_integration_id: integration.id,
            chatwoot_base_url: integration.baseUrl,
            chatwoot_account_id: integration.accountId,
            chatwoot_api_token: options.exposeApiToken ? integration.apiToken : null,
            chatwoot_inbox_id: integration.inboxId,
            chatwoot_inbox_name: integration.inboxName,
            // As `GET /api` answered at the last activation; null when it could not be read.
            chatwoot_version: integration.chatwootVersion,
            last_error: view.lastError,
            realtime,
            created_at: isoSeconds(integration.createdAt),
            sign_messages: integration.signMessages,
            ignore_groups: integration.ignoreGroups,
            start_as_pending: integration.startAsPending,
            reopen_resolved: integration.reopenResolved,
            import_history_days: integration.importHistoryDays ?? 0,
            // WhatsApp history sync: messages created in Chatwoot, skipped (older, or already there), still queued.
            history: {
              imported: history.imported,
              skipped: history.skipped,
              pending: Math.max(0, history.queued - history.imported - history.skipped),
            },
          },
          // The answer may carry the plaintext Chatwoot token: no cache may keep it.
          { "cache-control": "no-store" },
        );
      },
    }),
    defineRoute({
      path: "delete/:instance",
      methods: ["DELETE"],
      access: caller.access,
      async handle({ params: { instance }, query }) {
        await activation.deactivate(instance, query("deleteInbox") === "true");
        return json(200, { message: MESSAGES.deactivated });
      },
    }),
  ];
}
