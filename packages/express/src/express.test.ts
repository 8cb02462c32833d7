import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { HttpHandler, HttpRequest } from "@ryze/chatwoot-core/adapter";
import {
  type AdapterMount,
  runHttpAdapterConformance,
  webhookSignatureCases,
} from "@ryze/chatwoot-testkit/conformance";
import express from "express";
import { afterEach, describe, expect, it } from "vitest";
import { chatwootExpress } from "./index.js";

const JSON_TYPE = "application/json; charset=utf-8";
// Rails-escaped `<b>` and `&`, UTF-8 accents: what Chatwoot signs.
const RAW = '{"content":"\\u003cb\\u003e \\u0026 café"}';

/** The host's JSON parser before the adapter, configured as docs/frameworks.md says (it keeps the bytes). */
const hostJson = () =>
  express.json({ limit: "1mb", verify: (req, _res, buf) => Object.assign(req, { rawBody: buf }) });

async function listen(app: express.Express): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

const documentedMount: AdapterMount = {
  name: "express (host parser as documented)",
  async start({ handlers, hostBodyParser }) {
    const app = express();
    if (hostBodyParser) app.use(hostJson());
    for (const handler of handlers) app.use(chatwootExpress(handler));
    app.use((_req: express.Request, res: express.Response) => {
      res.status(404).type("application/json").send('{"host":"not found"}');
    });
    return listen(app);
  },
};

let server: { close(): Promise<void> } | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Starts Express with the adapter over a handler that records what it was handed (the stream read to its end). */
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
  const app = express();
  if (hostBodyParser) app.use(hostJson());
  app.use(chatwootExpress({ http }));
  const started = await listen(app);
  server = started;
  await fetch(`${started.url}/api/chatwoot/webhook/x`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: RAW,
  });
  return seen[0]!;
}

describe("chatwootExpress", () => {
  it("hands the core the exact bytes the host's parser read (verify hook), with its parsed body", async () => {
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

runHttpAdapterConformance(documentedMount, { cases: webhookSignatureCases });
