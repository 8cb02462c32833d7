// README.md and docs/http-api.md: with CHATWOOT_ENABLED=false an example app mounts the routes with the module
// switched off, and every route of the module answers 503 `integration gateway not configured`, before any token
// check; the host's own routes keep working. Checked on all three example apps.
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { buildApp as buildExpress } from "../../express/src/app.js";
import { buildApp as buildFastify } from "../../fastify/src/app.js";
import { buildApp as buildKoa } from "../../koa/src/app.js";
import { readConfig } from "./config.js";
import type { ExampleRuntime, RuntimeOptions } from "./runtime.js";

const ACCOUNT_TOKEN = "disabled-account-token";
const INSTANCE_TOKEN = "disabled-instance-token";
const DISABLED = { success: false, error: { message: "integration gateway not configured" } };

interface Started {
  url: string;
  runtime: ExampleRuntime;
  close(): Promise<void>;
}

async function onNode(server: Server, runtime: ExampleRuntime): Promise<Started> {
  if (!server.listening) await new Promise((resolve) => server.once("listening", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    runtime,
    async close() {
      server.closeAllConnections();
      server.close();
      await runtime.close();
    },
  };
}

const apps: Array<{
  name: string;
  start(config: ReturnType<typeof readConfig>, options: RuntimeOptions): Promise<Started>;
}> = [
  {
    name: "express",
    async start(config, options) {
      const runtime = await buildExpress(config, options);
      return onNode(runtime.app.listen(0, "127.0.0.1"), runtime);
    },
  },
  {
    name: "koa",
    async start(config, options) {
      const runtime = await buildKoa(config, options);
      return onNode(runtime.app.listen(0, "127.0.0.1"), runtime);
    },
  },
  {
    name: "fastify",
    async start(config, options) {
      const runtime = await buildFastify(config, options);
      const url = await runtime.app.listen({ port: 0, host: "127.0.0.1" });
      return {
        url,
        runtime,
        async close() {
          await runtime.app.close();
          await runtime.close();
        },
      };
    },
  },
];

describe.each(apps)("examples/$name with CHATWOOT_ENABLED=false", (app) => {
  const dir = mkdtempSync(join(tmpdir(), `cw-disabled-${app.name}-`));
  let started: Started | undefined;
  afterAll(async () => {
    await started?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 503 integration gateway not configured on set, list, delete and the webhook; the host's routes still work", async () => {
    const config = readConfig({
      DATABASE_URL: `sqlite:${join(dir, "chatwoot.sqlite")}`,
      RYZE_ACCOUNT_TOKEN: ACCOUNT_TOKEN,
      RYZE_INSTANCES: `suporte:${INSTANCE_TOKEN}`,
      CHATWOOT_ENABLED: "false",
    });
    expect(config.enabled).toBe(false);
    started = await app.start(config, { dataDir: dir, logger: pino({ level: "silent" }) });
    const call = (path: string, init: RequestInit = {}) => fetch(`${started!.url}${path}`, init);
    const body = JSON.stringify({
      chatwootBaseUrl: "http://127.0.0.1:9",
      chatwootAccountId: 1,
      chatwootApiToken: "x",
    });
    const requests: Array<[string, string, RequestInit]> = [
      [
        "set",
        "/api/chatwoot/set/suporte",
        { method: "POST", headers: { token: ACCOUNT_TOKEN, "content-type": "application/json" }, body },
      ],
      ["list", "/api/chatwoot/list/suporte", { headers: { token: INSTANCE_TOKEN } }],
      ["delete", "/api/chatwoot/delete/suporte", { method: "DELETE", headers: { token: ACCOUNT_TOKEN } }],
      // The module is off before anything else: even without a token.
      ["list without a token", "/api/chatwoot/list/suporte", {}],
      [
        "webhook",
        "/api/chatwoot/webhook/int_abcdefghijklmnop?secret=x",
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"event":"message_created"}',
        },
      ],
    ];
    for (const [what, path, init] of requests) {
      const answer = await call(path, init);
      expect(answer.status, what).toBe(503);
      expect(answer.headers.get("content-type"), what).toBe("application/json; charset=utf-8");
      expect(await answer.json(), what).toEqual(DISABLED);
    }
    // Switched off, the module still answers for its process and database.
    expect(await (await call("/health")).json()).toEqual({
      status: "ok",
      checks: { store: { status: "ok" } },
    });
    // Nothing was stored.
    expect(await started.runtime.knex("chatwoot_integrations").count({ n: "*" })).toEqual([{ n: 0 }]);
  });
});
