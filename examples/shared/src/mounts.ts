import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { bodyParser } from "@koa/bodyparser";
import type { HttpHandler } from "@ryze/chatwoot-core/adapter";
import { chatwootExpress } from "@ryze/chatwoot-express";
import { chatwootFastify } from "@ryze/chatwoot-fastify";
import { chatwootKoa } from "@ryze/chatwoot-koa";
import type { AdapterMount, StartedServer } from "@ryze/chatwoot-testkit/conformance";
import express from "express";
import Fastify from "fastify";
import Koa from "koa";

const HOST_NOT_FOUND = '{"host":"not found"}';
const JSON_TYPE = "application/json; charset=utf-8";

async function listening(server: Server): Promise<StartedServer> {
  if (!server.listening) await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Express with the adapter mounted, as the HTTP conformance suite expects. */
export const expressMount: AdapterMount = {
  name: "express",
  async start({ handlers, hostBodyParser }) {
    const app = express();
    if (hostBodyParser) app.use(express.json({ limit: "1mb" }));
    for (const handler of handlers) app.use(chatwootExpress(handler));
    app.get("/host/ping", (_req, res) => {
      res.type("text/plain").send("pong");
    });
    app.use((_req: express.Request, res: express.Response) => {
      res.status(404).type("application/json").send(HOST_NOT_FOUND);
    });
    return listening(app.listen(0, "127.0.0.1"));
  },
};

/** Koa with the adapter mounted; the host's body parser is `@koa/bodyparser`. */
export const koaMount: AdapterMount = {
  name: "koa",
  async start({ handlers, hostBodyParser }) {
    const app = new Koa();
    if (hostBodyParser) app.use(bodyParser({ enableTypes: ["json"], jsonLimit: "1mb" }));
    for (const handler of handlers) app.use(chatwootKoa(handler));
    app.use(async (ctx, next) => {
      if (ctx.method !== "GET" || ctx.path !== "/host/ping") return next();
      ctx.type = "text/plain";
      ctx.body = "pong";
    });
    app.use((ctx) => {
      ctx.status = 404;
      ctx.set("content-type", JSON_TYPE);
      ctx.body = HOST_NOT_FOUND;
    });
    return listening(app.listen(0, "127.0.0.1"));
  },
};

/** The prefix a handler serves: the bridge's own, else the root. */
const prefixOf = (handler: { http: HttpHandler }) =>
  "prefix" in handler && typeof handler.prefix === "string" ? handler.prefix : "/";

/**
 * Fastify with the plugin registered under each handler's prefix. Fastify's built-in JSON parser is the host's
 * body parser; with `hostBodyParser` the plugin keeps it for our routes (otherwise the core reads the raw body).
 */
export const fastifyMount: AdapterMount = {
  name: "fastify",
  async start({ handlers, hostBodyParser }) {
    const app = Fastify({ forceCloseConnections: true });
    for (const handler of handlers) {
      await app.register(chatwootFastify, {
        bridge: handler,
        prefix: prefixOf(handler),
        hostBodyParser,
      });
    }
    app.get("/host/ping", (_request, reply) => reply.type("text/plain; charset=utf-8").send("pong"));
    app.setNotFoundHandler((_request, reply) => reply.code(404).type(JSON_TYPE).send(HOST_NOT_FOUND));
    await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  },
};
