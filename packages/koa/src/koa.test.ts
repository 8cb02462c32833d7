import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import Koa from "koa";
import { afterEach, describe, expect, it } from "vitest";
import { chatwootKoa } from "./index.js";

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
