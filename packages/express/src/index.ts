import type { HttpHandler } from "@ryze/chatwoot-core/adapter";
import type { NextFunction, Request, RequestHandler, Response } from "express";

/**
 * Express middleware serving the bridge's routes. Mount it with `app.use(chatwootExpress(bridge))`;
 * requests that are not ours go to `next()`. A host body parser placed before it is used as is; without one
 * the body is read here (capped by the core).
 */
export function chatwootExpress(bridge: { http: HttpHandler }): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const aborted = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) aborted.abort();
    });
    // A host body parser consumed the stream: use what it produced, never re-encode it.
    const parsed = req.readableEnded;
    bridge.http
      .handle({
        method: req.method,
        path: req.originalUrl,
        headers: req.headers,
        ...(parsed ? { body: req.body } : { stream: req }),
        signal: aborted.signal,
      })
      .then((response) => {
        if (!response) return next();
        res.status(response.status).set(response.headers);
        if (response.body === null) res.end();
        else res.end(response.body);
      }, next);
  };
}
