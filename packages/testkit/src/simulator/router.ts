/**
 * The transport-neutral core of the simulator: a plain request in, a plain response out. It does
 * what Rails and Chatwoot's base controllers do before an action runs, in the same order:
 * route match → params → `api_access_token` auth → `current_account` (404, suspended, membership).
 * Public routes (ActiveStorage URLs) skip authentication.
 */
import {
  accountSuspended,
  ChatwootHttpError,
  invalidAccessToken,
  notAccountMember,
  railsPublicException,
  recordNotFound,
  signInRequired,
} from "./errors.js";
import { mergeParams, type Params, parseBody, rubyToI } from "./rails-params.js";
import type { SimulatorRuntime } from "./runtime.js";
import {
  type AccountRecord,
  type AccountUserRecord,
  findAccountUser,
  type SimulatorStore,
  type UserRecord,
} from "./store.js";

export interface ChatwootRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  /** Header names in lower case, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
}

export interface ChatwootResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/**
 * What a route answers; errors are thrown as `ChatwootHttpError`. Status defaults to 200. `body` is
 * sent as JSON; `raw` is sent as is (e.g. `head :not_found`, file bytes), with `headers`.
 */
export interface RouteReply {
  status?: number;
  body?: unknown;
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

export interface PublicContext {
  store: SimulatorStore;
  runtime: SimulatorRuntime;
  params: Params;
}

export interface UserContext extends PublicContext {
  user: UserRecord;
}

export interface AccountContext extends UserContext {
  account: AccountRecord;
  accountUser: AccountUserRecord;
}

interface RouteBase {
  /** HTTP method(s); HEAD is served by GET routes, as in Rails. */
  method: string | string[];
  /** Rails-style pattern, e.g. `/api/v1/accounts/:account_id/inboxes/:id`. A trailing slash is ignored. */
  pattern: string;
}

type Reply = RouteReply | Promise<RouteReply>;

/** A route without authentication (ActiveStorage blob URLs). */
export interface PublicRoute extends RouteBase {
  scope: "public";
  handle(ctx: PublicContext): Reply;
}

/** A route for any authenticated user (e.g. `/api/v1/profile`). */
export interface UserRoute extends RouteBase {
  scope: "user";
  handle(ctx: UserContext): Reply;
}

/** A route under `/api/v1/accounts/:account_id`, run after the account checks. */
export interface AccountRoute extends RouteBase {
  scope: "account";
  handle(ctx: AccountContext): Reply;
}

export type Route = PublicRoute | UserRoute | AccountRoute;

const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

interface CompiledRoute {
  route: Route;
  methods: Set<string>;
  regex: RegExp;
  names: string[];
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.pattern
    .replace(/\/$/, "")
    .split("/")
    .map((segment) => {
      if (!segment.startsWith(":")) return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      names.push(segment.slice(1));
      return "([^/]+)";
    })
    .join("/");
  const methods = new Set(
    (Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase()),
  );
  return { route, methods, regex: new RegExp(`^${source}/?$`), names };
}

function headerValue(headers: ChatwootRequest["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `AccessTokenAuthHelper` / devise_token_auth: resolves the token's user or throws the exact 401. */
function authenticate(store: SimulatorStore, headers: ChatwootRequest["headers"]): UserRecord {
  // Rack maps both `api_access_token` and `api-access-token` to HTTP_API_ACCESS_TOKEN.
  const token = headerValue(headers, "api_access_token") ?? headerValue(headers, "api-access-token");
  if (token === undefined || token.trim() === "") throw signInRequired();
  const owner = store.accessTokens.get(token);
  const user = owner ? store.users.get(owner.ownerId) : undefined;
  if (!user) throw invalidAccessToken();
  return user;
}

/** `EnsureCurrentAccountHelper#ensure_current_account`. */
function currentAccount(store: SimulatorStore, params: Params, user: UserRecord) {
  const account = store.accounts.get(rubyToI(params["account_id"]));
  if (!account) throw recordNotFound();
  if (account.status !== "active") throw accountSuspended();
  const accountUser = findAccountUser(store, account.id, user.id);
  if (!accountUser) throw notAccountMember();
  return { account, accountUser };
}

function jsonResponse(status: number, body: unknown): ChatwootResponse {
  return { status, headers: { "content-type": JSON_CONTENT_TYPE }, body: JSON.stringify(body) };
}

function toResponse(reply: RouteReply): ChatwootResponse {
  const status = reply.status ?? 200;
  if (reply.raw === undefined) {
    const response = jsonResponse(status, reply.body);
    Object.assign(response.headers, reply.headers);
    return response;
  }
  return { status, headers: { ...reply.headers }, body: reply.raw };
}

/**
 * Builds the request handler over a store and a route table. Unknown routes answer 404
 * `{"status":404,"error":"Not Found"}`; an exception a route does not expect answers 500
 * `{"status":500,"error":"Internal Server Error"}` (Rails' JSON public exceptions).
 */
export function createChatwootHandler(runtime: SimulatorRuntime, routes: readonly Route[]) {
  const { store } = runtime;
  const compiled = routes.map(compile);

  function match(method: string, path: string) {
    const wanted = method === "HEAD" ? "GET" : method;
    for (const candidate of compiled) {
      if (!candidate.methods.has(wanted)) continue;
      const found = candidate.regex.exec(path);
      if (!found) continue;
      const pathParams: Record<string, string> = {};
      candidate.names.forEach((name, i) => {
        pathParams[name] = decodeURIComponent(found[i + 1] ?? "");
      });
      return { route: candidate.route, pathParams };
    }
    return undefined;
  }

  return async function handle(request: ChatwootRequest): Promise<ChatwootResponse> {
    try {
      const matched = match(request.method.toUpperCase(), request.path);
      if (!matched) throw railsPublicException(404);
      const body = await parseBody(headerValue(request.headers, "content-type"), request.rawBody);
      const params = mergeParams(request.query, body, matched.pathParams);
      const { route } = matched;
      if (route.scope === "public") return toResponse(await route.handle({ store, runtime, params }));
      const user = authenticate(store, request.headers);
      const reply =
        route.scope === "user"
          ? await route.handle({ store, runtime, params, user })
          : await route.handle({ store, runtime, params, user, ...currentAccount(store, params, user) });
      return toResponse(reply);
    } catch (error) {
      if (error instanceof ChatwootHttpError) return jsonResponse(error.status, error.body);
      // Deliberate 500s are ChatwootHttpErrors; anything else is a simulator bug worth seeing.
      console.error("[chatwoot-simulator] unexpected error:", error);
      const fallback = railsPublicException(500);
      return jsonResponse(fallback.status, fallback.body);
    }
  };
}
