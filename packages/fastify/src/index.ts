import type { IncomingMessage } from "node:http";
import { type HttpHandler, WEBHOOK_BODY_LIMIT } from "@ryze/chatwoot-core/adapter";
import { errorCodes, type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from "fastify";

export interface ChatwootFastifyOptions {
  /** The bridge (or any `{ http }` handler); its `prefix`, when it has one, must be the registration prefix. */
  bridge: { http: HttpHandler; prefix?: string };
  /**
   * Default `false`: inside this plugin's scope the host's content-type parsers are set aside and the core reads
   * the raw body itself (its 64 KiB cap, its JSON errors). `true` keeps the host's parsers for our routes, and the
   * core uses `request.body` as Fastify parsed it (the host's parse errors then answer malformed bodies).
   */
  hostBodyParser?: boolean;
}

// Above the core's largest cap (1 MiB, webhook), so that a body the host parses gets the core's 413, not Fastify's.
const BODY_LIMIT = 2 * WEBHOOK_BODY_LIMIT;

const trimSlashes = (prefix: string) => prefix.replace(/\/+$/, "");

/**
 * Fastify plugin serving the bridge's routes, encapsulated: register it with
 * `app.register(chatwootFastify, { bridge, prefix: "/api/chatwoot" })`, the same prefix as the core's
 * `prefix` option. Requests under the prefix that are not ours go to the host's not-found handler.
 */
export const chatwootFastify: FastifyPluginAsync<ChatwootFastifyOptions> = async (app, options) => {
  const { bridge } = options;
  if (bridge.prefix !== undefined && trimSlashes(bridge.prefix) !== trimSlashes(app.prefix)) {
    throw new Error(
      `chatwootFastify: registered under prefix "${app.prefix}" but the bridge's prefix is "${bridge.prefix}"`,
    );
  }
  // The body stream as Fastify hands it to parsers (after the host's preParsing hooks, e.g. decompression).
  const unread = new WeakMap<FastifyRequest, IncomingMessage>();
  if (!options.hostBodyParser) {
    app.removeAllContentTypeParsers();
    // Leaves the body unread: the core reads it with its own cap.
    app.addContentTypeParser("*", (request, payload, done) => {
      unread.set(request, payload);
      done(null, undefined);
    });
  }
  async function serve(request: FastifyRequest, reply: FastifyReply) {
    const aborted = new AbortController();
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) aborted.abort();
    });
    const response = await bridge.http.handle({
      method: request.method,
      path: request.url,
      headers: request.headers,
      ...(request.body !== undefined
        ? { body: request.body }
        : { stream: unread.get(request) ?? request.raw }),
      signal: aborted.signal,
    });
    if (!response) {
      reply.callNotFound();
      return reply;
    }
    // The core's body is a finished string: Fastify sends a string as is (the host's reply serializer applies to
    // objects only), in one write with the headers. `undefined` (HEAD) keeps the content-length the core set.
    reply.code(response.status).headers(response.headers);
    return reply.send(response.body ?? undefined);
  }

  app.route({
    method: app.supportedMethods,
    url: "/*",
    // HEAD goes to the core (it is in `supportedMethods`), not to Fastify's automatic HEAD-from-GET.
    exposeHeadRoute: false,
    bodyLimit: BODY_LIMIT,
    handler: serve,
  });
  // Fastify refuses a malformed Content-Type, or one no parser in scope takes, before our handler runs; the core
  // words that answer, as on Express and Koa.
  app.setErrorHandler((error, request, reply) => {
    if (error instanceof errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE) return serve(request, reply);
    throw error;
  });
};
