import { type HttpHandler, toHttpRequest } from "@ryze/chatwoot-core/adapter";
import type { NextFunction, Request, RequestHandler, Response } from "express";

/**
 * Express middleware serving the bridge's routes. Mount it with `app.use(chatwootExpress(bridge))`, before the
 * host's body parser; requests that are not ours go to `next()`. A host parser placed before it is used as is, and
 * its bytes too when it keeps them in `req.rawBody` (`express.json({ verify })`, see docs/frameworks.md).
 */
export function chatwootExpress(bridge: { http: HttpHandler }): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    bridge.http
      .handle(toHttpRequest(req, res, { path: req.originalUrl, parsedBody: req.body, remoteAddress: req.ip }))
      .then((response) => {
        if (!response) return next();
        res.status(response.status).set(response.headers);
        res.end(response.body ?? undefined);
      }, next);
  };
}
