import type { IncomingMessage, ServerResponse } from "node:http";
import type { HttpRequest } from "./types.js";

/** What an adapter knows beyond the Node request itself. */
export interface NodeRequestOptions {
  /** The path as the host app sees it, with its query string (Express and Koa `originalUrl`, Fastify `url`). */
  path: string;
  /** What the host's body parser produced, when one read the body before the adapter. */
  parsedBody?: unknown;
  /**
   * The exact bytes that parser read (Koa: `ctx.request.rawBody` of `@koa/bodyparser`). Default: `req.rawBody`
   * when it is bytes or a string, as the `express.json({ verify })` hook of `docs/frameworks.md` leaves it.
   */
  rawBody?: Uint8Array | string | undefined;
  /** The unread body when it is not `req` itself (e.g. the stream Fastify hands its content-type parsers). */
  stream?: AsyncIterable<Uint8Array> | undefined;
  /**
   * The client's address as the framework determines it (its trusted-proxy setting decides behind a proxy: Express
   * `req.ip`, Koa `ctx.ip`, Fastify `request.ip`). Default: the socket's peer address.
   */
  remoteAddress?: string | undefined;
}

const bytesOf = (value: unknown): Uint8Array | string | undefined =>
  typeof value === "string" || value instanceof Uint8Array ? value : undefined;

/**
 * Turns a Node request into the core's `HttpRequest`, the one translation every adapter needs. `signal` aborts when
 * the client goes away (`res` closes before it finished). The body goes over in the best form there is: the unread
 * stream (the core reads it with the route's cap and keeps the exact bytes); or, when a host parser already read
 * it, the parsed body together with the raw bytes if the host kept them (signatures are computed over those).
 */
export function toHttpRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: NodeRequestOptions,
): HttpRequest {
  const aborted = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) aborted.abort();
  });
  const request: HttpRequest = {
    method: req.method ?? "GET",
    path: options.path,
    headers: req.headers,
    signal: aborted.signal,
  };
  const remoteAddress = options.remoteAddress ?? req.socket?.remoteAddress;
  if (remoteAddress) request.remoteAddress = remoteAddress;
  if (options.stream) request.stream = options.stream;
  else if (!req.readableEnded) request.stream = req;
  else {
    // A host parser consumed the stream: use what it produced, never re-encode it.
    if (options.parsedBody !== undefined) request.body = options.parsedBody;
    const raw = options.rawBody ?? bytesOf((req as { rawBody?: unknown }).rawBody);
    if (raw !== undefined) request.rawBody = raw;
  }
  return request;
}
