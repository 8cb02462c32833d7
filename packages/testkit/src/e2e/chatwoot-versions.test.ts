import { randomBytes } from "node:crypto";
import { type ChatwootBridge, createChatwootBridge, createStaticDirectory } from "@ryze/chatwoot-core";
import { createMemoryStore, type MemoryStore } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, type ChatwootVersion, startChatwootSimulator } from "../simulator/index.js";

// Activation reads Chatwoot's version (`GET /api`, app/controllers/api_controller.rb: `{"version": "4.13.0", ...}`,
// no authentication), refuses what is older than 4.10.0, shows it in `list` (`chatwoot_version`), and in webhook mode
// keeps the inbox's webhook-signing `secret` (administrators see it in the inbox JSON from 4.13.0,
// app/views/api/v1/models/_inbox.json.jbuilder) sealed like the API token. docs/chatwoot-versions.md.

let sim: ChatwootSimulator | undefined;
let bridge: ChatwootBridge | undefined;
afterEach(async () => {
  await bridge?.stop();
  await sim?.close();
  bridge = undefined;
  sim = undefined;
});

interface Started {
  sim: ChatwootSimulator;
  bridge: ChatwootBridge;
  store: MemoryStore;
  accountId: number;
  adminToken: string;
  set(body?: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }>;
  list(): Promise<{ status: number; body: Record<string, unknown> }>;
}

async function start(
  version?: ChatwootVersion,
  delivery: "realtime" | "webhook" = "realtime",
): Promise<Started> {
  sim = await startChatwootSimulator({ cablePingIntervalMs: 200, ...(version ? { version } : {}) });
  const accountId = sim.createAccount({ name: "Acme" }).id;
  const admin = sim.createUser({ name: "Jane", accounts: [{ accountId, role: "administrator" }] });
  const store = createMemoryStore();
  bridge = createChatwootBridge({
    store,
    directory: createStaticDirectory({
      accounts: [{ id: "a", token: "t", instances: [{ name: "suporte", token: "i" }] }],
    }),
    encryption: { current: { id: "k1", key: randomBytes(32).toString("base64") } },
    realtime: { pingIntervalMs: 200, subscribeTimeoutMs: 2_000 },
    delivery,
    ...(delivery === "webhook" ? { publicUrl: "http://127.0.0.1:9" } : {}),
  });
  await bridge.start();
  const call = async (method: string, path: string, body?: unknown) => {
    const answer = await bridge!.http.handle({
      method,
      path,
      headers: { token: "t", "content-type": "application/json" },
      ...(body === undefined ? {} : { body }),
    });
    return { status: answer!.status, body: JSON.parse(answer!.body!) as Record<string, unknown> };
  };
  return {
    sim,
    bridge,
    store,
    accountId,
    adminToken: admin.accessToken,
    set: (body = {}) =>
      call("POST", "/api/chatwoot/set/suporte", {
        chatwootBaseUrl: sim!.url,
        chatwootAccountId: accountId,
        chatwootApiToken: admin.accessToken,
        ...body,
      }),
    list: () => call("GET", "/api/chatwoot/list/suporte"),
  };
}

/** `GET /api` of another Chatwoot build, through the simulator's fault injection. */
const versionAnswer = (s: Started, version: unknown) =>
  s.sim.faults.inject({
    method: "GET",
    path: "/api",
    status: 200,
    body: { version, timestamp: "2026-01-19 12:00:00", queue_services: "ok", data_services: "ok" },
  });

describe("activation reads Chatwoot's version", () => {
  it.each([
    ["4.10", "4.10.0"],
    ["4.11", "4.11.2"],
    ["4.12", "4.12.1"],
    ["4.13", "4.13.0"],
  ] as const)("Chatwoot %s: list shows chatwoot_version %s", async (version, release) => {
    const s = await start(version);
    expect((await s.set()).status).toBe(201);
    expect(s.sim.countRequests({ method: "GET", path: "/api" })).toBe(1);
    const list = await s.list();
    expect(list.status).toBe(200);
    expect(list.body["chatwoot_version"]).toBe(release);
    // The key sits with the other Chatwoot facts, before last_error.
    const keys = Object.keys(list.body);
    expect(keys.indexOf("chatwoot_version")).toBe(keys.indexOf("chatwoot_inbox_name") + 1);
  });

  it("refuses a Chatwoot older than 4.10 with a 400 naming its version, before the token is checked or an inbox made", async () => {
    const s = await start();
    for (const old of ["4.9.2", "4.9", "3.16.0", "v4.9.0"]) {
      const fault = versionAnswer(s, old);
      s.sim.clearRequests();
      const answer = await s.set();
      expect(answer).toEqual({
        status: 400,
        body: {
          success: false,
          error: {
            message: `Chatwoot ${old} is not supported - upgrade Chatwoot at ${s.sim.url} to 4.10.0 or later. Detail: ${s.sim.url}/api answered version "${old}"`,
          },
        },
      });
      expect(s.sim.requests.map((request) => `${request.method} ${request.path}`)).toEqual(["GET /api"]);
      fault.remove();
    }
    expect(s.sim.inboxes(s.accountId)).toEqual([]);
    expect((await s.list()).status).toBe(404);
    // The inline activation says the same.
    versionAnswer(s, "4.9.2");
    expect(
      await s.bridge.activate("suporte", {
        chatwootBaseUrl: s.sim.url,
        chatwootAccountId: s.accountId,
        chatwootApiToken: s.adminToken,
      }),
    ).toEqual({
      status: "error",
      error: `Chatwoot 4.9.2 is not supported - upgrade Chatwoot at ${s.sim.url} to 4.10.0 or later. Detail: ${s.sim.url}/api answered version "4.9.2"`,
    });
  });

  it.each([
    ["404 (GET /api blocked by a proxy)", { status: 404, body: "Not Found" }],
    [
      "an HTML page",
      { status: 200, body: "<html>Chatwoot</html>", headers: { "content-type": "text/html" } },
    ],
    ["no version key", { status: 200, body: { status: "ok" } }],
    ["a version that is not one", { status: 200, body: { version: "develop" } }],
    ["a number", { status: 200, body: { version: 4.13 } }],
    ["a reset connection", { reset: true }],
  ] as const)("accepts an unknown version (%s) and shows chatwoot_version null", async (_, fault) => {
    const s = await start("4.13");
    s.sim.faults.inject({ method: "GET", path: "/api", ...fault });
    expect((await s.set()).status).toBe(201);
    expect((await s.list()).body).toMatchObject({ status: "active", chatwoot_version: null });
  });

  it("re-activation reads the version again (an upgraded Chatwoot)", async () => {
    const s = await start("4.13");
    const older = versionAnswer(s, "4.12.1");
    expect((await s.set()).status).toBe(201);
    expect((await s.list()).body["chatwoot_version"]).toBe("4.12.1");
    older.remove();
    expect((await s.set()).status).toBe(201);
    expect((await s.list()).body["chatwoot_version"]).toBe("4.13.0");
  });
});

describe("activation keeps the inbox's webhook signing secret (webhook mode, Chatwoot 4.13)", () => {
  it("stores it sealed under its own column's AAD, never in plaintext", async () => {
    const s = await start("4.13", "webhook");
    expect((await s.set()).status).toBe(201);
    const [inbox] = s.sim.inboxes(s.accountId) as Array<{ id: number; secret: string }>;
    expect(inbox!.secret).toMatch(/^[1-9A-HJ-NP-Za-km-z]{24}$/);
    const row = [...s.store.raw.integrations.values()][0]!;
    expect(row.signingSecret).toMatch(/^cw1:k1:[A-Za-z0-9_-]+$/);
    expect(row.chatwootVersion).toBe("4.13.0");
    expect(JSON.stringify([...s.store.raw.integrations.values()])).not.toContain(inbox!.secret);
    // A re-activation that reuses the inbox reads it again (a secret rotated in the meantime is picked up).
    const rotated = await fetch(
      `${s.sim.url}/api/v1/accounts/${s.accountId}/inboxes/${inbox!.id}/reset_secret`,
      {
        method: "POST",
        headers: { api_access_token: s.adminToken },
      },
    );
    const secret = ((await rotated.json()) as { secret: string }).secret;
    expect((await s.set()).status).toBe(201);
    const again = [...s.store.raw.integrations.values()][0]!;
    expect(again.signingSecret).not.toBe(row.signingSecret);
    expect(JSON.stringify(again)).not.toContain(secret);
    expect(s.sim.inboxes(s.accountId)).toHaveLength(1);
  });

  it.each(["4.10", "4.11", "4.12"] as const)(
    "Chatwoot %s: the inbox has no secret, none is stored",
    async (version) => {
      const s = await start(version, "webhook");
      expect((await s.set()).status).toBe(201);
      expect([...s.store.raw.integrations.values()][0]).toMatchObject({ signingSecret: null });
    },
  );

  it("realtime mode keeps none (nothing to verify)", async () => {
    const s = await start("4.13");
    expect((await s.set()).status).toBe(201);
    expect([...s.store.raw.integrations.values()][0]).toMatchObject({
      signingSecret: null,
      chatwootVersion: "4.13.0",
    });
  });
});
