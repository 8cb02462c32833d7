import type * as z from "zod";
import { activateBodySchema, formatIssues } from "../activation/schema.js";
import type { ActivationService } from "../activation/service.js";
import type { InstanceDirectory, Principal } from "../directory/index.js";
import { BridgeError, MESSAGES, toBridgeError } from "../errors/index.js";
import type { Logger } from "../observability/index.js";
import { readHeader, readJsonBody, SET_BODY_LIMIT } from "./body.js";
import type { RateLimitDecision, RateLimiter } from "./rate-limit.js";
import type { CallerGuard, HttpHandler, HttpRequest, HttpResponse } from "./types.js";

/** Extra routes other parts of the core add under the same prefix (e.g. the webhook receiver). */
export interface ExtraRoute {
  method: "POST" | "GET";
  /** First path segment after the prefix, e.g. `webhook`. */
  segment: string;
  /** `query` reads a query parameter the same way the built-in routes do. */
  handle(
    param: string,
    request: HttpRequest,
    query: (name: string) => string | undefined,
  ): Promise<HttpResponse>;
}

export interface HttpHandlerOptions {
  enabled: boolean;
  prefix: string;
  directory: InstanceDirectory;
  rateLimiter: RateLimiter;
  activation: ActivationService;
  exposeApiToken: boolean;
  logger: Logger;
  extraRoutes?: ExtraRoute[];
}

type Endpoint = "set" | "list" | "delete";
const ENDPOINT_METHODS: Record<Endpoint, readonly string[]> = {
  set: ["POST"],
  list: ["GET", "HEAD"],
  delete: ["DELETE"],
};

const JSON_TYPE = "application/json; charset=utf-8";

export function json(status: number, value: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { "content-type": JSON_TYPE, ...headers }, body: JSON.stringify(value) };
}

export function errorResponse(error: BridgeError, headers: Record<string, string> = {}): HttpResponse {
  return json(error.status, { success: false, error: { message: error.message } }, headers);
}

function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  const headers: Record<string, string> = {
    "x-ratelimit-limit": String(decision.limit),
    "x-ratelimit-remaining": String(decision.remaining),
    "x-ratelimit-reset": String(decision.resetAt),
  };
  if (!decision.allowed) headers["retry-after"] = String(decision.retryAfter);
  return headers;
}

/** The caller token: `token: <t>` (preferred) or `Authorization: Bearer <t>`. */
function callerToken(request: HttpRequest): string | null {
  const token = readHeader(request, "token")?.trim();
  if (token) return token;
  const match = /^Bearer\s+(.+)$/i.exec(readHeader(request, "authorization")?.trim() ?? "");
  return match?.[1]?.trim() || null;
}

function splitPath(path: string): { pathname: string; search: URLSearchParams } {
  const index = path.indexOf("?");
  return index === -1
    ? { pathname: path, search: new URLSearchParams() }
    : { pathname: path.slice(0, index), search: new URLSearchParams(path.slice(index + 1)) };
}

function queryValue(request: HttpRequest, search: URLSearchParams, name: string): string | undefined {
  const value = request.query?.[name];
  if (typeof value === "string") return value;
  if (Array.isArray(value) && typeof value[0] === "string") return value[0];
  return search.get(name) ?? undefined;
}

const isoSeconds = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * The framework-neutral HTTP entry: serves set, list and delete exactly as `spec/http-api.md` says, with the
 * checks in the contract's order. Adapters only translate requests and responses.
 */
export function createHttpHandler(options: HttpHandlerOptions): HttpHandler & CallerGuard {
  const prefix = options.prefix.replace(/\/+$/, "");

  function route(pathname: string): { endpoint: Endpoint | ExtraRoute; param: string } | null {
    if (!pathname.startsWith(`${prefix}/`)) return null;
    const rest = pathname.slice(prefix.length + 1).split("/");
    if (rest.length !== 2 || !rest[1]) return null;
    let param: string;
    try {
      param = decodeURIComponent(rest[1]);
    } catch {
      return null;
    }
    const segment = rest[0]!;
    if (segment === "set" || segment === "list" || segment === "delete") return { endpoint: segment, param };
    const extra = options.extraRoutes?.find((candidate) => candidate.segment === segment);
    return extra ? { endpoint: extra, param } : null;
  }

  async function authorize(
    request: HttpRequest,
    instance: string,
  ): Promise<{ headers: Record<string, string> } | HttpResponse> {
    const token = callerToken(request);
    if (!token) return errorResponse(new BridgeError("MISSING_TOKEN", MESSAGES.missingToken));
    const principal: Principal | null = await options.directory.resolveToken(token);
    if (!principal) return errorResponse(new BridgeError("INVALID_TOKEN", MESSAGES.invalidToken));
    const decision = await options.rateLimiter.consume(token);
    const headers = rateLimitHeaders(decision);
    if (!decision.allowed)
      return errorResponse(new BridgeError("RATE_LIMITED", MESSAGES.rateLimited), headers);
    const info = await options.directory.getInstance(instance);
    if (!info)
      return errorResponse(new BridgeError("INSTANCE_NOT_FOUND", MESSAGES.instanceNotFound), headers);
    if (principal.kind === "instance" && principal.instance !== info.name) {
      return errorResponse(new BridgeError("INSTANCE_FORBIDDEN", MESSAGES.instanceTokenMismatch), headers);
    }
    if (principal.kind === "account" && principal.accountId !== info.accountId) {
      return errorResponse(new BridgeError("INSTANCE_FORBIDDEN", MESSAGES.instanceNotInAccount), headers);
    }
    return { headers };
  }

  async function serve(endpoint: Endpoint, instance: string, request: HttpRequest, search: URLSearchParams) {
    switch (endpoint) {
      case "set": {
        const { value } = await readJsonBody(request, SET_BODY_LIMIT);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          throw new BridgeError("INVALID_BODY", "invalid body: expected a JSON object");
        }
        const parsed = activateBodySchema.safeParse(value);
        if (!parsed.success) {
          throw new BridgeError("INVALID_BODY", `invalid body: ${formatIssues(parsed.error as z.ZodError)}`);
        }
        const integration = await options.activation.activate(instance, parsed.data, request.signal);
        return json(201, {
          instance,
          status: "active",
          bridge_integration_id: integration.id,
          message: MESSAGES.activated,
        });
      }
      case "list": {
        const view = await options.activation.status(instance);
        const { integration } = view;
        return json(200, {
          instance_name: integration.instance,
          status: view.status,
          bridge_integration_id: integration.id,
          chatwoot_base_url: integration.baseUrl,
          chatwoot_account_id: integration.accountId,
          chatwoot_api_token: options.exposeApiToken ? integration.apiToken : null,
          chatwoot_inbox_id: integration.inboxId,
          chatwoot_inbox_name: integration.inboxName,
          last_error: view.lastError,
          created_at: isoSeconds(integration.createdAt),
          sign_messages: integration.signMessages,
          ignore_groups: integration.ignoreGroups,
          start_as_pending: integration.startAsPending,
          reopen_resolved: integration.reopenResolved,
        });
      }
      case "delete": {
        const deleteInbox = queryValue(request, search, "deleteInbox") === "true";
        await options.activation.deactivate(instance, deleteInbox);
        return json(200, { message: MESSAGES.deactivated });
      }
    }
  }

  return {
    authorize,
    async handle(request) {
      const method = request.method.toUpperCase();
      const { pathname, search } = splitPath(request.path);
      const matched = route(pathname);
      if (!matched) return null;
      const { endpoint, param } = matched;
      if (typeof endpoint !== "string") {
        if (endpoint.method !== method) return null;
        if (!options.enabled)
          return errorResponse(new BridgeError("MODULE_DISABLED", MESSAGES.moduleDisabled));
        try {
          return await endpoint.handle(param, request, (name) => queryValue(request, search, name));
        } catch (error) {
          return errorResponse(toBridgeError(error));
        }
      }
      if (!ENDPOINT_METHODS[endpoint].includes(method)) return null;
      let response: HttpResponse;
      if (!options.enabled) {
        response = errorResponse(new BridgeError("MODULE_DISABLED", MESSAGES.moduleDisabled));
      } else {
        let headers: Record<string, string> = {};
        try {
          const auth = await authorize(request, param);
          if ("status" in auth) {
            response = auth;
          } else {
            headers = auth.headers;
            const served = await serve(endpoint, param, request, search);
            response = { ...served, headers: { ...served.headers, ...headers } };
          }
        } catch (error) {
          const publicError = toBridgeError(error);
          if (publicError.code === "INTERNAL") {
            options.logger.error(
              { endpoint, instance: param, err: describe(error) },
              "chatwoot: request failed",
            );
          }
          response = errorResponse(publicError, headers);
        }
      }
      if (method !== "HEAD") return response;
      const length = String(Buffer.byteLength(response.body ?? ""));
      return { ...response, headers: { ...response.headers, "content-length": length }, body: null };
    },
  };
}

function describe(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return error instanceof Error ? `${error.message}${cause}` : String(error);
}
