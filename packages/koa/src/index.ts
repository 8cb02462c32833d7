import type { HttpHandler } from "@ryze/chatwoot-core/adapter";
import type { Middleware } from "koa";

/**
 * Koa middleware serving the bridge's routes. Mount it with `app.use(chatwootKoa(bridge))`; requests
 * that are not ours go to `next()`. A host body parser placed before it (e.g. `@koa/bodyparser`) is used as
 * is; without one the body is read here (capped by the core).
 */
export function chatwootKoa(bridge: { http: HttpHandler }): Middleware {
  return async (ctx, next) => {
    const aborted = new AbortController();
    const onClose = () => {
      if (!ctx.res.writableFinished) aborted.abort();
    };
    ctx.res.on("close", onClose);
    // A host body parser consumed the stream: use what it produced, never re-encode it. (`@koa/bodyparser`
    // also sets `ctx.request.body = {}` for types it skips, so the body alone is no marker.)
    const parsed = ctx.req.readableEnded;
    const body: unknown = "body" in ctx.request ? ctx.request.body : undefined;
    const response = await bridge.http.handle({
      method: ctx.method,
      path: ctx.originalUrl,
      headers: ctx.req.headers,
      ...(parsed ? { body } : { stream: ctx.req }),
      signal: aborted.signal,
    });
    if (!response) {
      ctx.res.off("close", onClose);
      return next();
    }
    ctx.status = response.status;
    ctx.set(response.headers);
    // HEAD (`body: null`): Koa sends no body and keeps the content-length the core set.
    if (response.body !== null) ctx.body = response.body;
  };
}
