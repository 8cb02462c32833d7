import type { HttpRequest, HttpResponse } from "./types.js";

/** The methods a route may serve. Any other method on its path falls through to the host. */
export type RouteMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";

type ParamNames<Path extends string> = Path extends `${infer Head}/${infer Tail}`
  ? ParamNames<Head> | ParamNames<Tail>
  : Path extends `:${infer Name}`
    ? Name
    : never;

/** The decoded path parameters of a route path: `dead-letters/:instance/:id/retry` → `{ instance, id }`. */
export type PathParams<Path extends string> = { readonly [Name in ParamNames<Path>]: string };

/** What a route's `access` check and handler get for one request. */
export interface RouteCall<Params = Record<string, string>, Grant = unknown> {
  readonly request: HttpRequest;
  /** The path parameters, URL-decoded. */
  readonly params: Params;
  /** A query parameter (first value), from the adapter's parsed query or the path's query string. */
  query(name: string): string | undefined;
  /**
   * Headers added to the answer, success or error, from the moment they are set: the caller check puts the
   * rate-limit headers here as soon as the caller's quota was counted.
   */
  readonly headers: Record<string, string>;
  /** What `access` granted: the caller's principal, the webhook's integration, nothing for a public page. */
  readonly grant: Grant;
}

/**
 * Who may call a route. It runs after the module switch and before the handler; it refuses by throwing a
 * `BridgeError` (401, 403, 404, 429, ...) and otherwise returns what it established for the handler.
 */
export type RouteAccess<Params, Grant> = (call: Omit<RouteCall<Params, never>, "grant">) => Promise<Grant>;

/**
 * One row of the route table. Every route is served by the same dispatcher (`createHttpHandler`): match, method,
 * module switch (503), `access`, handler, and one error path (a `BridgeError` answers its status and message;
 * anything else answers 500 `internal error` and logs one line with the cause). HEAD answers like GET without a
 * body, on routes that list it.
 */
export interface Route<Path extends string = string, Grant = unknown> {
  /**
   * Below the prefix, without leading or trailing `/`: literal segments and `:name` parameters, e.g. `status`,
   * `set/:instance`, `dead-letters/:instance/:id/retry`. A parameter matches one non-empty segment.
   */
  readonly path: Path;
  readonly methods: readonly RouteMethod[];
  /** Who may call it, e.g. `caller.access` (a caller token that may act on `:instance`) or the webhook's URL secret. */
  access(call: Omit<RouteCall<PathParams<Path>, never>, "grant">): Promise<Grant>;
  handle(call: RouteCall<PathParams<Path>, Grant>): Promise<HttpResponse>;
}

/** Types a route from its path (its parameters) and its access check (its grant); the table holds plain `Route`s. */
export function defineRoute<const Path extends string, Grant>(route: Route<Path, Grant>): Route {
  return route;
}

/** Access for routes anyone may call (e.g. a static page); the module switch still applies. */
export const anyone: RouteAccess<unknown, undefined> = async () => undefined;

type Segment = { literal: string } | { param: string };

/** A route path split once, for matching. Throws on a malformed path (a programming error in the table). */
export function compilePath(path: string): Segment[] {
  const names = new Set<string>();
  return path.split("/").map((part) => {
    if (!part || part === ":") throw new Error(`route path "${path}": empty segment`);
    if (!part.startsWith(":")) return { literal: part };
    const name = part.slice(1);
    if (names.has(name)) throw new Error(`route path "${path}": parameter ":${name}" twice`);
    names.add(name);
    return { param: name };
  });
}

/** The parameters when `parts` (the request path below the prefix, split on `/`) match, else null. */
export function matchPath(
  segments: readonly Segment[],
  parts: readonly string[],
): Record<string, string> | null {
  if (parts.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (let index = 0; index < segments.length; index++) {
    const segment = segments[index]!;
    const part = parts[index]!;
    if ("literal" in segment) {
      if (part !== segment.literal) return null;
      continue;
    }
    if (!part) return null;
    try {
      params[segment.param] = decodeURIComponent(part);
    } catch {
      return null;
    }
  }
  return params;
}
