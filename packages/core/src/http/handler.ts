import { BridgeError, errorRef, MESSAGES, toBridgeError } from "../errors/index.js";
import type { Logger } from "../observability/index.js";
import { errorResponse } from "./response.js";
import { compilePath, matchPath, type Route, type RouteCall } from "./routes.js";
import type { HttpHandler, HttpRequest, HttpResponse } from "./types.js";

export interface HttpHandlerOptions {
  /** `false`: every route answers 503 (the module is mounted but switched off). */
  enabled: boolean;
  prefix: string;
  /** The route table: every route under the prefix (`docs/http-api.md`). */
  routes: readonly Route[];
  logger: Logger;
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

/**
 * The framework-neutral HTTP entry: serves the route table exactly as `docs/http-api.md` says, with the checks in
 * the contract's order (module switch, the route's access, then the route). Adapters only translate requests and
 * responses; a request that no route serves with its method answers `null` and goes back to the host.
 */
export function createHttpHandler(options: HttpHandlerOptions): HttpHandler {
  const prefix = options.prefix.replace(/\/+$/, "");
  const table = options.routes.map((route) => ({ route, segments: compilePath(route.path) }));

  function find(pathname: string, method: string): { route: Route; params: Record<string, string> } | null {
    if (!pathname.startsWith(`${prefix}/`)) return null;
    const parts = pathname.slice(prefix.length + 1).split("/");
    for (const { route, segments } of table) {
      if (!(route.methods as readonly string[]).includes(method)) continue;
      const params = matchPath(segments, parts);
      if (params) return { route, params };
    }
    return null;
  }

  /**
   * The one error path: a BridgeError answers as itself; anything else is a 500 `internal error (ref <ref>)` with one
   * log line carrying the same `ref` and the cause (never the answer: a database error names its SQL and values).
   */
  async function serve(route: Route, call: Omit<RouteCall, "grant">, method: string): Promise<HttpResponse> {
    try {
      const grant = await route.access(call);
      const served = await route.handle({ ...call, grant });
      return { ...served, headers: { ...served.headers, ...call.headers } };
    } catch (error) {
      const publicError = toBridgeError(error);
      if (publicError.code === "INTERNAL") {
        const ref = errorRef();
        options.logger.error(
          { method, route: route.path, params: call.params, ref, err: describe(error) },
          "chatwoot: request failed",
        );
        return errorResponse(new BridgeError("INTERNAL", `internal error (ref ${ref})`), call.headers);
      }
      return errorResponse(publicError, call.headers);
    }
  }

  return {
    async handle(request) {
      const method = request.method.toUpperCase();
      const { pathname, search } = splitPath(request.path);
      const found = find(pathname, method);
      if (!found) return null;
      const response = options.enabled
        ? await serve(
            found.route,
            {
              request,
              params: found.params,
              headers: {},
              query: (name) => queryValue(request, search, name),
            },
            method,
          )
        : errorResponse(new BridgeError("MODULE_DISABLED", MESSAGES.moduleDisabled));
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
