/**
 * Child process: one framework app (argv[2]: express, koa or fastify) serving two routes from the same store:
 * - `GET /api/chatwoot/list/:instance` through the library's adapter (caller token, rate limit, directory,
 *   the store read, the secret opened, the cached live check, the contract's JSON);
 * - `GET /bare/list/:instance`, the bare framework route: the same store read and secret opening, the same JSON,
 *   and nothing else.
 * The simulator it activates against runs in this process too; after the first list it is asked once per 30 s.
 */
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createKeyring } from "@ryze/chatwoot-core";
import { secretAad } from "@ryze/chatwoot-core/testing";
import { chatwootExpress } from "@ryze/chatwoot-express";
import { chatwootFastify } from "@ryze/chatwoot-fastify";
import { chatwootKoa } from "@ryze/chatwoot-koa";
import { startChatwootSimulator } from "@ryze/chatwoot-testkit";
import express from "express";
import Fastify from "fastify";
import Koa from "koa";
import { benchBridge, ENCRYPTION, openStore } from "./fixtures.js";
import { serve } from "./rpc.js";

export type Framework = "express" | "koa" | "fastify";
const framework = process.argv[2] as Framework;
const JSON_TYPE = "application/json; charset=utf-8";
const ADAPTER_INSTANCE = "suporte";

const isoSeconds = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

async function listening(server: Server): Promise<string> {
  if (!server.listening) await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const closers: Array<() => Promise<void>> = [];

const methods = {
  async start() {
    const sim = await startChatwootSimulator();
    closers.push(() => sim.close());
    const accountId = sim.createAccount({ name: "Adapters" }).id;
    const admin = sim.createUser({ name: "Admin", accounts: [{ accountId, role: "administrator" }] });
    const maybe = await openStore("sqlite-wal");
    if ("unreachable" in maybe) throw new Error(maybe.unreachable);
    const opened = maybe;
    closers.push(() => opened.close());
    // A limiter that never refuses: the bench measures the route, not the quota.
    const bridge = benchBridge(opened.store, [ADAPTER_INSTANCE], { rateLimit: { points: 1e9 } });
    closers.unshift(() => bridge.stop());
    await bridge.start();
    const activated = await bridge.activate(ADAPTER_INSTANCE, {
      chatwootBaseUrl: sim.url,
      chatwootAccountId: accountId,
      chatwootApiToken: admin.accessToken,
      inboxName: "Bench adapters",
    });
    if (activated.status !== "active") throw new Error(`activation failed: ${activated.error}`);

    const cipher = createKeyring(ENCRYPTION);
    /** The bare route's work: the same store read and secret opening, serialised to the same JSON. */
    async function bareList(instance: string): Promise<string | null> {
      const row = await opened.store.integrations.get(instance);
      if (!row) return null;
      // The same second read as the bridge's list (the history-sync counts); the realtime state is in memory there.
      const history = await opened.store.mappings.historyProgress(row.id);
      return JSON.stringify({
        instance_name: row.instance,
        status: row.status,
        bridge_integration_id: row.id,
        chatwoot_base_url: row.baseUrl,
        chatwoot_account_id: row.accountId,
        chatwoot_api_token: cipher.open(
          row.apiToken,
          secretAad("chatwoot_integrations", "api_token", row.id),
        ),
        chatwoot_inbox_id: row.inboxId,
        chatwoot_inbox_name: row.inboxName,
        chatwoot_version: row.chatwootVersion,
        last_error: row.lastError,
        realtime: "connected",
        created_at: isoSeconds(row.createdAt),
        sign_messages: row.signMessages,
        ignore_groups: row.ignoreGroups,
        start_as_pending: row.startAsPending,
        reopen_resolved: row.reopenResolved,
        import_history_days: row.importHistoryDays ?? 0,
        history: {
          imported: history.imported,
          skipped: history.skipped,
          pending: Math.max(0, history.queued - history.imported - history.skipped),
        },
      });
    }

    let url: string;
    if (framework === "express") {
      const app = express();
      app.get("/bare/list/:instance", (req, res, next) => {
        bareList(req.params.instance).then((body) => {
          if (body === null) return next();
          res.status(200).set("content-type", JSON_TYPE).end(body);
        }, next);
      });
      app.use(chatwootExpress(bridge));
      const server = app.listen(0, "127.0.0.1");
      closers.unshift(
        () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      );
      url = await listening(server);
    } else if (framework === "koa") {
      const app = new Koa();
      app.silent = true;
      const barePath = /^\/bare\/list\/([^/]+)$/;
      app.use(async (ctx, next) => {
        const match = ctx.method === "GET" ? barePath.exec(ctx.path) : null;
        if (!match) return next();
        const body = await bareList(decodeURIComponent(match[1]!));
        if (body === null) return next();
        ctx.status = 200;
        ctx.set("content-type", JSON_TYPE);
        ctx.body = body;
      });
      app.use(chatwootKoa(bridge));
      const server = app.listen(0, "127.0.0.1");
      closers.unshift(
        () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      );
      url = await listening(server);
    } else {
      const app = Fastify({ forceCloseConnections: true });
      app.get<{ Params: { instance: string } }>("/bare/list/:instance", async (request, reply) => {
        const body = await bareList(request.params.instance);
        if (body === null) return reply.callNotFound();
        return reply.code(200).type(JSON_TYPE).send(body);
      });
      await app.register(chatwootFastify, { bridge, prefix: bridge.prefix });
      await app.listen({ port: 0, host: "127.0.0.1" });
      closers.unshift(() => app.close());
      url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    }
    return {
      url,
      adapterPath: `/api/chatwoot/list/${ADAPTER_INSTANCE}`,
      barePath: `/bare/list/${ADAPTER_INSTANCE}`,
      /** The instance's caller token (the static directory's `token-<instance>`). */
      token: `token-${ADAPTER_INSTANCE}`,
    };
  },

  cpuMs: () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  },
};

export type AdapterHostMethods = typeof methods;

serve(methods, async () => {
  for (const close of closers) await close().catch(() => undefined);
});
