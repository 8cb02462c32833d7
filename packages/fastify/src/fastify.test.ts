import type { AddressInfo } from "node:net";
import type { HttpHandler, HttpRequest } from "@ryze/chatwoot-core/adapter";
import {
  type AdapterMount,
  runHttpAdapterConformance,
  webhookSignatureCases,
} from "@ryze/chatwoot-testkit/conformance";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { chatwootFastify } from "./index.js";

let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function listen(instance: FastifyInstance): Promise<number> {
  await instance.listen({ port: 0, host: "127.0.0.1" });
  return (instance.server.address() as AddressInfo).port;
}

const JSON_TYPE = "application/json; charset=utf-8";
// Rails-escaped `<b>` and `&`, UTF-8 accents: what Chatwoot signs.
const RAW = '{"content":"\\u003cb\\u003e \\u0026 café"}';

describe("chatwootFastify", () => {
  it("falls through to the host's not-found handler and leaves the host's parsers alone", async () => {
    const seen: string[] = [];
    const http: HttpHandler = {
      async handle(request) {
        seen.push(`${request.method} ${request.path}`);
        if (request.path !== "/api/chatwoot/ours?x=1") return null;
        return { status: 201, headers: { "content-type": JSON_TYPE }, body: "{}" };
      },
    };
    app = Fastify({ forceCloseConnections: true });
    await app.register(chatwootFastify, { bridge: { http }, prefix: "/api/chatwoot" });
    app.post("/echo", async (request) => ({ parsed: request.body }));
    app.setNotFoundHandler((_request, reply) => reply.code(404).type(JSON_TYPE).send('{"host":"not found"}'));
    const port = await listen(app);
    const base = `http://127.0.0.1:${port}`;

    const ours = await fetch(`${base}/api/chatwoot/ours?x=1`);
    expect([ours.status, ours.headers.get("content-type"), await ours.text()]).toEqual([
      201,
      JSON_TYPE,
      "{}",
    ]);
    const theirs = await fetch(`${base}/api/chatwoot/theirs`, { method: "OPTIONS" });
    expect([theirs.status, await theirs.text()]).toEqual([404, '{"host":"not found"}']);
    const echo = await fetch(`${base}/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"a":1}',
    });
    expect(await echo.json()).toEqual({ parsed: { a: 1 } });
    expect(seen).toEqual(["GET /api/chatwoot/ours?x=1", "OPTIONS /api/chatwoot/theirs"]);
  });

  it("sends the core's JSON as is under a host reply serializer, and the host's onSend hooks still run", async () => {
    const body = '{"instance_name":"suporte"}';
    const http: HttpHandler = {
      handle: async () => ({ status: 200, headers: { "content-type": JSON_TYPE }, body }),
    };
    app = Fastify({ forceCloseConnections: true });
    app.setReplySerializer((payload) => JSON.stringify({ wrapped: payload }));
    app.addHook("onSend", async (_request, reply, payload) => {
      reply.header("x-host-hook", "ran");
      return payload;
    });
    await app.register(chatwootFastify, { bridge: { http }, prefix: "/api/chatwoot" });
    app.get("/host/data", async () => ({ a: 1 }));
    const base = `http://127.0.0.1:${await listen(app)}`;

    const ours = await fetch(`${base}/api/chatwoot/list/suporte`);
    expect([ours.status, ours.headers.get("x-host-hook"), await ours.text()]).toEqual([200, "ran", body]);
    expect(ours.headers.get("content-length")).toBe(String(body.length));
    // The host's own routes keep its serializer.
    expect(await (await fetch(`${base}/host/data`)).text()).toBe('{"wrapped":{"a":1}}');
    const head = await fetch(`${base}/api/chatwoot/list/suporte`, { method: "HEAD" });
    expect([head.status, await head.text()]).toEqual([200, ""]);
  });

  it("refuses a registration prefix other than the bridge's", async () => {
    app = Fastify();
    const bridge = { http: { handle: async () => null }, prefix: "/hooks/cw" };
    await expect(app.register(chatwootFastify, { bridge, prefix: "/api/chatwoot" })).rejects.toThrow(
      /prefix "\/api\/chatwoot" but the bridge's prefix is "\/hooks\/cw"/,
    );
  });
});

/** Starts Fastify with the plugin over a handler that records what it was handed (the stream read to its end). */
async function recording(hostBodyParser: boolean) {
  const seen: Array<HttpRequest & { streamed?: string }> = [];
  const http: HttpHandler = {
    async handle(request) {
      const chunks: Buffer[] = [];
      for await (const chunk of request.stream ?? []) chunks.push(Buffer.from(chunk));
      seen.push({
        ...request,
        ...(request.stream ? { streamed: Buffer.concat(chunks).toString("utf8") } : {}),
      });
      return { status: 200, headers: { "content-type": JSON_TYPE }, body: "{}" };
    },
  };
  app = Fastify({ forceCloseConnections: true });
  await app.register(chatwootFastify, { bridge: { http }, prefix: "/api/chatwoot", hostBodyParser });
  app.post("/echo", async (request) => ({ parsed: request.body }));
  const base = `http://127.0.0.1:${await listen(app)}`;
  const init = { method: "POST", headers: { "content-type": "application/json" }, body: RAW };
  await fetch(`${base}/api/chatwoot/webhook/x`, init);
  // The host's routes keep Fastify's JSON parser either way.
  expect(await (await fetch(`${base}/echo`, init)).json()).toEqual({ parsed: { content: "<b> & café" } });
  return seen[0]!;
}

describe("chatwootFastify and the request body", () => {
  it("hostBodyParser: true hands the core the exact bytes with the parsed body", async () => {
    const request = await recording(true);
    expect(request.body).toEqual({ content: "<b> & café" });
    expect(Buffer.from(request.rawBody!).toString("utf8")).toBe(RAW);
    expect(request.stream).toBeUndefined();
  });

  it("by default hands the core the unread stream", async () => {
    const request = await recording(false);
    expect([request.body, request.rawBody]).toEqual([undefined, undefined]);
    expect(request.streamed).toBe(RAW);
  });
});

/** Fastify with `hostBodyParser` passed through, as docs/frameworks.md shows it. */
const documentedMount: AdapterMount = {
  name: "fastify (hostBodyParser as documented)",
  async start({ handlers, hostBodyParser }) {
    const instance = Fastify({ forceCloseConnections: true });
    for (const handler of handlers) {
      await instance.register(chatwootFastify, { bridge: handler, prefix: "/api/chatwoot", hostBodyParser });
    }
    instance.setNotFoundHandler((_request, reply) =>
      reply.code(404).type(JSON_TYPE).send('{"host":"not found"}'),
    );
    return { url: `http://127.0.0.1:${await listen(instance)}`, close: () => instance.close() };
  },
};

runHttpAdapterConformance(documentedMount, { cases: webhookSignatureCases });
