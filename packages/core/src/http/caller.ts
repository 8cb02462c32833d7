import type { InstanceDirectory, Principal } from "../directory/index.js";
import { BridgeError, isBridgeError, MESSAGES } from "../errors/index.js";
import { readHeader } from "./body.js";
import type { FailedAuthLimiter, RateLimitDecision, RateLimiter } from "./rate-limit.js";
import { errorResponse } from "./response.js";
import type { RouteAccess } from "./routes.js";
import type { CallerGuard, HttpRequest } from "./types.js";

/** The caller checks of the contract, as route access and as the guard host routes use. */
export interface CallerChecks extends CallerGuard {
  /**
   * Route access: from an address not past its failed-attempt limit (429 with `Retry-After`), a caller token the
   * directory knows (401; a failed attempt of the address), within its rate limit (429, the rate-limit headers
   * from then on), for an instance that exists (404) and that the token may act on (403): the route's `:instance`.
   */
  readonly access: RouteAccess<{ readonly instance: string }, Principal>;
  /**
   * Route access for routes without an `:instance` (the status route): the same checks up to the rate limit; the
   * route itself keeps to what the principal owns.
   */
  readonly principal: RouteAccess<unknown, Principal>;
}

export interface CallerChecksOptions {
  directory: InstanceDirectory;
  rateLimiter: RateLimiter;
  /**
   * Failed attempts (a missing or unknown token) per client address: past its limit an address is answered 429
   * before the directory is asked again. Without it, failures are not counted.
   */
  failedAuth?: FailedAuthLimiter;
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

export function createCallerChecks(options: CallerChecksOptions): CallerChecks {
  /** The checks in the contract's order; fills `headers` with the rate-limit headers once the quota is counted. */
  async function check(
    request: HttpRequest,
    instance: string | null,
    headers: Record<string, string>,
    quota = true,
  ): Promise<Principal> {
    const { failedAuth } = options;
    const address = request.remoteAddress;
    // An address that keeps failing is refused before its token is even looked at: guessing tokens costs the
    // guesser time, not the host's directory a look-up per guess.
    const blockedFor = failedAuth ? await failedAuth.blocked(address) : null;
    if (blockedFor !== null) {
      headers["retry-after"] = String(blockedFor);
      throw new BridgeError("RATE_LIMITED", MESSAGES.rateLimited);
    }
    const token = callerToken(request);
    if (!token) {
      await failedAuth?.fail(address);
      throw new BridgeError("MISSING_TOKEN", MESSAGES.missingToken);
    }
    const principal = await options.directory.resolveToken(token);
    if (!principal) {
      await failedAuth?.fail(address);
      throw new BridgeError("INVALID_TOKEN", MESSAGES.invalidToken);
    }
    if (quota) {
      const decision = await options.rateLimiter.consume(token);
      Object.assign(headers, rateLimitHeaders(decision));
      if (!decision.allowed) throw new BridgeError("RATE_LIMITED", MESSAGES.rateLimited);
    }
    if (instance === null) return principal;
    const info = await options.directory.getInstance(instance);
    if (!info) throw new BridgeError("INSTANCE_NOT_FOUND", MESSAGES.instanceNotFound);
    if (principal.kind === "instance" && principal.instance !== info.name) {
      throw new BridgeError("INSTANCE_FORBIDDEN", MESSAGES.instanceTokenMismatch);
    }
    if (principal.kind === "account" && principal.accountId !== info.accountId) {
      throw new BridgeError("INSTANCE_FORBIDDEN", MESSAGES.instanceNotInAccount);
    }
    return principal;
  }

  return {
    access: (call) => check(call.request, call.params.instance, call.headers),
    principal: (call) => check(call.request, null, call.headers),
    async authorize(request, instance, authorizeOptions) {
      const headers: Record<string, string> = {};
      try {
        await check(request, instance, headers, authorizeOptions?.quota ?? true);
        return { headers };
      } catch (error) {
        // A refusal is an answer; a failing directory or rate-limit store is the host route's error.
        if (!isBridgeError(error)) throw error;
        return errorResponse(error, headers);
      }
    },
  };
}
