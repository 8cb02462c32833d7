// Issue 15, row 1: `chatwootBaseUrl` could point anywhere, and the realtime socket followed it. Through the bridge:
// the `network` option refuses an activation with a 400 naming the field, and neither REST nor the socket connects.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChatwootBridgeOptions, createChatwootBridge } from "../bridge.js";
import type { ChatwootApi } from "../chatwoot/index.js";
import { createStaticDirectory } from "../directory/index.js";
import { createMemoryStore } from "../store/memory.js";

const key = randomBytes(32).toString("base64");
const TOKEN = "policy-account-token";

let listener: Server;
let port: number;
let connections = 0;

beforeAll(async () => {
  // Anything that would answer: a Chatwoot lookalike, or an admin port the caller should not reach.
  listener = createServer((_req, res) => res.writeHead(404).end("internal admin page"));
  listener.on("connection", () => connections++);
  listener.on("upgrade", (_req, socket) => socket.destroy());
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  port = (listener.address() as AddressInfo).port;
});
afterAll(() => {
  listener.closeAllConnections();
  listener.close();
});

function bridgeWith(options: Partial<ChatwootBridgeOptions>) {
  return createChatwootBridge({
    store: createMemoryStore(),
    directory: createStaticDirectory({
      accounts: [{ id: "a", token: TOKEN, instances: [{ name: "suporte", token: "i" }] }],
    }),
    encryption: { current: { id: "k1", key } },
    ...options,
  });
}

const activate = (bridge: ReturnType<typeof bridgeWith>, chatwootBaseUrl: string) =>
  bridge.http.handle({
    method: "POST",
    path: "/api/chatwoot/set/suporte",
    headers: { token: TOKEN, "content-type": "application/json" },
    body: { chatwootBaseUrl, chatwootAccountId: 1, chatwootApiToken: "cw-token" },
  });

describe("activation under the network policy", () => {
  it("refuses loopback in every spelling with 400 naming chatwootBaseUrl, and opens no connection", async () => {
    const bridge = bridgeWith({ network: { allowPrivateNetworks: false } });
    try {
      for (const [url, reason] of [
        [`http://127.0.0.1:${port}`, "127.0.0.1 is in a refused network (loopback)"],
        [`http://2130706433:${port}`, "127.0.0.1 is in a refused network (loopback)"],
        [`http://[::ffff:127.0.0.1]:${port}`, "::ffff:7f00:1 is in a refused network (loopback)"],
        [`http://localhost:${port}`, "localhost resolves to a refused network (loopback)"],
      ] as const) {
        const answer = await activate(bridge, url);
        expect([answer?.status, JSON.parse(answer?.body ?? "{}")], url).toEqual([
          400,
          { success: false, error: { message: `invalid body: chatwootBaseUrl: ${reason}` } },
        ]);
      }
      expect(connections).toBe(0);
    } finally {
      await bridge.stop();
    }
  });

  it("always refuses the cloud metadata address, also with private networks allowed (the default)", async () => {
    // A Chatwoot client double that only counts: should the policy ever fail, nothing leaves this process.
    let calls = 0;
    const chatwootApi = new Proxy({} as ChatwootApi, {
      get: (_target, name) =>
        name === "close"
          ? async () => {}
          : async () => {
              calls++;
              throw new Error("called");
            },
    });
    const bridge = bridgeWith({ chatwootApi });
    try {
      for (const [url, reason] of [
        ["http://169.254.169.254", "169.254.169.254 is in a refused network (link-local)"],
        ["http://[fd00:ec2::254]", "fd00:ec2::254 is in a refused network (cloud metadata)"],
        ["http://0.0.0.0:80", "0.0.0.0 is in a refused network (unspecified)"],
      ] as const) {
        const answer = await activate(bridge, url);
        expect([answer?.status, JSON.parse(answer?.body ?? "{}").error.message], url).toEqual([
          400,
          `invalid body: chatwootBaseUrl: ${reason}`,
        ]);
      }
      // The inline activation answers the same.
      expect(
        await bridge.activate("suporte", {
          chatwootBaseUrl: "http://169.254.169.254",
          chatwootAccountId: 1,
          chatwootApiToken: "x",
        }),
      ).toEqual({
        status: "error",
        error: "invalid body: chatwootBaseUrl: 169.254.169.254 is in a refused network (link-local)",
      });
      expect(calls).toBe(0);
    } finally {
      await bridge.stop();
    }
  });

  it("refuses a denied network and still reaches the others", async () => {
    const bridge = bridgeWith({ network: { deny: ["127.0.0.0/30"] } });
    try {
      const refused = await activate(bridge, `http://127.0.0.2:${port}`);
      expect(JSON.parse(refused?.body ?? "{}").error.message).toBe(
        "invalid body: chatwootBaseUrl: 127.0.0.2 is in a refused network (127.0.0.0/30)",
      );
      expect(connections).toBe(0);
      // 127.0.0.5 is not denied: the call goes out (and finds no Chatwoot there).
      const other = await listen("127.0.0.5");
      try {
        const reached = await activate(bridge, other.url);
        expect(reached?.status).toBe(400);
        expect(JSON.parse(reached?.body ?? "{}").error.message).toMatch(
          /^Chatwoot account or endpoint not found/,
        );
        // GET /api (Chatwoot's version) and GET /api/v1/profile: one connection, or two when the first is not back in
        // the pool yet.
        expect(other.connections()).toBeGreaterThanOrEqual(1);
      } finally {
        other.close();
      }
    } finally {
      await bridge.stop();
    }
  });

  it("names the option's bad fields", () => {
    expect(() =>
      bridgeWith({ network: { allowPrivateNetworks: "no" as unknown as boolean, deny: ["10/8"] } }),
    ).toThrow(
      /^invalid options: network\.allowPrivateNetworks: must be a boolean; network\.deny\.0: must be a CIDR/,
    );
  });
});

describe("the realtime socket under the network policy", () => {
  it("never connects to a refused host, even when the REST side answered", async () => {
    // A Chatwoot client double: the REST side succeeds without the network, so only the socket is left to try.
    const chatwootApi = {
      getProfile: async () => ({
        id: 1,
        pubsub_token: "pubsub",
        accounts: [{ id: 1, role: "administrator" }],
      }),
      createInbox: async () => ({ id: 9, name: "RyzeAPI" }),
      getInbox: async () => ({ id: 9, name: "RyzeAPI" }),
      close: async () => {},
    } as unknown as ChatwootApi;
    const bridge = bridgeWith({
      chatwootApi,
      network: { allowPrivateNetworks: false },
      realtime: { subscribeTimeoutMs: 400, pingIntervalMs: 200 },
    });
    try {
      const answer = await activate(bridge, `http://localhost:${port}`);
      expect(answer?.status).toBe(502);
      expect(connections).toBe(0);
    } finally {
      await bridge.stop();
    }
  });
});

async function listen(host: string) {
  let count = 0;
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on("connection", () => count++);
  server.listen(0, host);
  await once(server, "listening");
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}`,
    connections: () => count,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
