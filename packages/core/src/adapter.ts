/**
 * `@ryze/chatwoot-core/adapter`: what a framework adapter needs to serve the bridge's routes: the neutral
 * request and response, the body caps, and the Node helper that turns an `IncomingMessage` into a request.
 */

export { toBridgeError } from "./errors/index.js";
export { type ReadBody, readJsonBody, SET_BODY_LIMIT, WEBHOOK_BODY_LIMIT } from "./http/body.js";
export { type NodeRequestOptions, toHttpRequest } from "./http/node.js";
export { errorResponse, json as jsonResponse } from "./http/response.js";
export type { CallerGuard, HttpHandler, HttpRequest, HttpResponse } from "./http/types.js";
