import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { bodyParser } from "@koa/bodyparser";
import type { HttpHandler, HttpRequest } from "@ryze/chatwoot-core/adapter";
import {
  type AdapterMount,
  runHttpAdapterConformance,
  webhookSignatureCases,
} from "@ryze/chatwoot-testkit/conformance";
import Koa from "koa";
import { afterEach, describe, expect, it } from "vitest";
import { chatwootKoa } from "./index.js";

const JSON_TYPE = "application/json; charset=utf-8";
// Rails-escaped `<b>` and `&`, UTF-8 accents: what Chatwoot signs.
const RAW = '{"content":"\\u003cb\\u003e \\u0026 café"}';

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

async function listen(app: Koa): Promise<number> {
  server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

describe("chatwootKoa", () => {
  it("calls next() for what is not ours, and answers what is", async () => {
    const app = new Koa();
    app.use(
      chatwootKoa({
        http: {
          async handle(request) {
            if (request.path !== "/ours?x=1") return null;
            return {
              status: 201,
              headers: { "content-type": "application/json; charset=utf-8" },
              body: "{}",
            };
          },
        },
      }),
    );
    app.use((ctx) => {
      ctx.status = 418;
      ctx.body = "host";
    });
    const port = await listen(app);
    const ours = await fetch(`http://127.0.0.1:${port}/ours?x=1`);
    expect([ours.status, ours.headers.get("content-type"), await ours.text()]).toEqual([
      201,
      "application/json; charset=utf-8",
      "{}",
    ]);
    const theirs = await fetch(`http://127.0.0.1:${port}/theirs`, { method: "POST", body: "x" });
    expect([theirs.status, await theirs.text()]).toEqual([418, "host"]);
  });
});

/** Starts Koa with the adapter over a handler that records what it was handed (the stream read to its end). */
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
  const app = new Koa();
  if (hostBodyParser) app.use(bodyParser());
  app.use(chatwootKoa({ http }));
  const port = await listen(app);
  await fetch(`http://127.0.0.1:${port}/api/chatwoot/webhook/x`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: RAW,
  });
  return seen[0]!;
}

describe("chatwootKoa and the request body", () => {
  it("hands the core the exact bytes @koa/bodyparser read (ctx.request.rawBody), with its parsed body", async () => {
    const request = await recording(true);
    expect(request.body).toEqual({ content: "<b> & café" });
    expect(Buffer.from(request.rawBody!).toString("utf8")).toBe(RAW);
    expect(request.stream).toBeUndefined();
  });

  it("hands the core the unread stream without a host parser", async () => {
    const request = await recording(false);
    expect([request.body, request.rawBody]).toEqual([undefined, undefined]);
    expect(request.streamed).toBe(RAW);
  });
});

/** Koa with the host's parser before the adapter as docs/frameworks.md shows it (`@koa/bodyparser`). */
const documentedMount: AdapterMount = {
  name: "koa (host parser as documented)",
  async start({ handlers, hostBodyParser }) {
    const app = new Koa();
    if (hostBodyParser) app.use(bodyParser({ jsonLimit: "1mb" }));
    for (const handler of handlers) app.use(chatwootKoa(handler));
    app.use((ctx) => {
      ctx.status = 404;
      ctx.set("content-type", JSON_TYPE);
      ctx.body = '{"host":"not found"}';
    });
    const started = app.listen(0, "127.0.0.1");
    await once(started, "listening");
    return {
      url: `http://127.0.0.1:${(started.address() as AddressInfo).port}`,
      close: () =>
        new Promise<void>((resolve, reject) => {
          started.close((error) => (error ? reject(error) : resolve()));
          started.closeAllConnections();
        }),
    };
  },
};

runHttpAdapterConformance(documentedMount, { cases: webhookSignatureCases });
