/** A framework-neutral request, as an adapter hands it to `http.handle()`. */
export interface HttpRequest {
  method: string;
  /** The request path as the host app sees it, optionally with its query string (`/api/chatwoot/list/x?y=1`). */
  path: string;
  /** Header names in any case. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed query; when absent, the query string of `path` is used. */
  query?: Record<string, unknown>;
  /** The body the host's body parser already produced (used as is). */
  body?: unknown;
  /**
   * The exact bytes of the body, when the adapter has them: with `body`, the bytes the host's parser read (webhook
   * signatures are computed over them); alone, the body the core parses.
   */
  rawBody?: Uint8Array | string;
  /** The unread request stream, when no body parser ran; the core reads it with the route's size cap. */
  stream?: AsyncIterable<Uint8Array>;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
  /**
   * The client's address, as the host's framework determines it (behind a proxy: its trusted-proxy setting, e.g.
   * Express `req.ip`, Koa `ctx.ip`, Fastify `request.ip`); the socket's peer address otherwise. The webhook route counts
   * failed attempts per address.
   */
  remoteAddress?: string;
}

/** The answer: the adapter writes status, headers and body as they are (the body is already serialised). */
export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  /** Null for HEAD. */
  body: string | null;
}

export interface HttpHandler {
  /** Null when the request is not for one of our routes and methods: the host answers it. */
  handle(request: HttpRequest): Promise<HttpResponse | null>;
}

/** The caller checks of the contract (token, rate limit, instance, ownership), for host routes that share them. */
export interface CallerGuard {
  /**
   * The rate-limit headers to add when the caller may act on `instance`, else the error response to send. With
   * `quota: false` the token, instance and ownership are checked but the request spends none of the token's quota
   * (and gets no rate-limit headers): for routes that stand for WhatsApp traffic, not API calls.
   */
  authorize(
    request: HttpRequest,
    instance: string,
    options?: { quota?: boolean },
  ): Promise<{ headers: Record<string, string> } | HttpResponse>;
}
