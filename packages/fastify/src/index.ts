import type { IncomingMessage } from "node:http";
import { type HttpHandler, toHttpRequest, WEBHOOK_BODY_LIMIT } from "@ryze/chatwoot-core/adapter";
import { errorCodes, type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from "fastify";

export interface ChatwootFastifyOptions {
  /** The bridge (or any `{ http }` handler); its `prefix`, when it has one, must be the registration prefix. */
  bridge: { http: HttpHandler; prefix?: string };
  /**
   * Default `false`: inside this plugin's scope the host's content-type parsers are set aside and the core reads the
   * raw body itself (its caps, its JSON errors). `true` keeps the host's parsers for our routes, except that JSON is
   * parsed by Fastify's default JSON parser through a parser that also keeps the bytes (webhook signatures need
   * them); Fastify's parse errors then answer malformed bodies.
   */
  hostBodyParser?: boolean;
}

/**
 * Fastify plugin serving the bridge's routes, encapsulated: register it with
 * `app.register(chatwootFastify, { bridge, prefix: "/api/chatwoot" })`, the same prefix as the core's
 * `prefix` option. Requests under the prefix that are not ours go to the host's not-found handler.
 */
export const chatwootFastify: FastifyPluginAsync<ChatwootFastifyOptions> = async (app, options) => {
  const { bridge } = options;
  const trim = (prefix: string) => prefix.replace(/\/+$/, "");
  if (bridge.prefix !== undefined && trim(bridge.prefix) !== trim(app.prefix)) {
    throw new Error(
      `chatwootFastify: registered under prefix "${app.prefix}" but the bridge's prefix is "${bridge.prefix}"`,
    );
  }
  // The unread body as Fastify hands it to parsers (after the host's preParsing hooks), or the bytes of parsed JSON.
  const unread = new WeakMap<FastifyRequest, IncomingMessage>();
  const bytes = new WeakMap<FastifyRequest, Buffer>();
  if (!options.hostBodyParser) {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", (request, payload, done) => done(null, void unread.set(request, payload)));
  } else {
    const { onProtoPoisoning = "error", onConstructorPoisoning = "error" } = app.initialConfig;
    const parseJson = app.getDefaultJsonParser(onProtoPoisoning, onConstructorPoisoning);
    app.removeContentTypeParser("application/json");
    app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
      bytes.set(request, body as Buffer);
      parseJson(request, body.toString("utf8"), done);
    });
  }
  async function serve(request: FastifyRequest, reply: FastifyReply) {
    const [stream, rawBody, parsedBody] = [unread.get(request), bytes.get(request), request.body];
    const http = toHttpRequest(request.raw, reply.raw, {
      path: request.url,
      parsedBody,
      stream,
      rawBody,
      remoteAddress: request.ip,
    });
    const response = await bridge.http.handle(http);
    if (!response) return reply.callNotFound();
    // A string is sent as is (the host's reply serializer applies to objects only); `undefined` (HEAD) keeps the
    // content-length the core set.
    reply.code(response.status).headers(response.headers);
    return reply.send(response.body ?? undefined);
  }
  // Above the core's largest cap (1 MiB, webhook), so that a body the host parses gets the core's 413, not Fastify's.
  const bodyLimit = 2 * WEBHOOK_BODY_LIMIT;
  // HEAD goes to the core (it is in `supportedMethods`), not to Fastify's automatic HEAD-from-GET.
  app.route({ method: app.supportedMethods, url: "/*", exposeHeadRoute: false, bodyLimit, handler: serve });
  // Fastify refuses a malformed Content-Type, or one no parser in scope takes, before our handler runs: the core
  // words that answer, as on Express and Koa.
  app.setErrorHandler((error, request, reply) => {
    if (error instanceof errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE) return serve(request, reply);
    throw error;
  });
};
