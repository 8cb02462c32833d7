import { type HttpHandler, toHttpRequest } from "@ryze/chatwoot-core/adapter";
import type { Middleware } from "koa";

/**
 * Koa middleware serving the bridge's routes. Mount it with `app.use(chatwootKoa(bridge))`, before the host's body
 * parser; requests that are not ours go to `next()`. A host parser placed before it (e.g. `@koa/bodyparser`) is used
 * as is, with the bytes it keeps in `ctx.request.rawBody`.
 */
export function chatwootKoa(bridge: { http: HttpHandler }): Middleware {
  return async (ctx, next) => {
    const { body: parsedBody, rawBody } = ctx.request as { body?: unknown; rawBody?: unknown };
    const http = toHttpRequest(ctx.req, ctx.res, {
      path: ctx.originalUrl,
      parsedBody,
      remoteAddress: ctx.ip,
      rawBody: typeof rawBody === "string" || rawBody instanceof Uint8Array ? rawBody : undefined,
    });
    const response = await bridge.http.handle(http);
    if (!response) return next();
    ctx.status = response.status;
    ctx.set(response.headers);
    // HEAD (`body: null`): Koa sends no body and keeps the content-length the core set.
    if (response.body !== null) ctx.body = response.body;
  };
}
