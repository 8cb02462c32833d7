import type { LookupAddress } from "node:dns";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { interceptors, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { createPolicyAgent } from "./agent.js";
import { createNetworkPolicy, type LookupFunction, NetworkRefusedError } from "./policy.js";
import { websocketOptions } from "./websocket.js";

/** An HTTP (and WebSocket) listener that counts the connections it accepts. */
interface Listener {
  server: Server;
  port: number;
  connections: number;
  close(): Promise<void>;
}

async function listen(host: string, handle?: (path: string) => [number, Record<string, string>, string]) {
  const server = createServer((req, res) => {
    const [status, headers, body] = handle?.(req.url ?? "/") ?? [200, {}, "ok"];
    res.writeHead(status, headers).end(body);
  });
  const wss = new WebSocketServer({ server });
  wss.on("connection", (socket) => socket.send("hello"));
  const listener: Listener = {
    server,
    port: 0,
    connections: 0,
    async close() {
      wss.close();
      server.closeAllConnections();
      server.close();
    },
  };
  server.on("connection", () => listener.connections++);
  server.listen(0, host);
  await once(server, "listening");
  listener.port = (server.address() as AddressInfo).port;
  return listener;
}

const fixed =
  (answers: Record<string, string[]>): LookupFunction =>
  (hostname, _options, callback) => {
    const list = answers[hostname]?.shift();
    if (!list) return callback(Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" }), "");
    const entry: LookupAddress = { address: list, family: list.includes(":") ? 6 : 4 };
    setImmediate(() => callback(null, [entry]));
  };

describe("undici through the policy", () => {
  let loopback: Listener;
  let second: Listener;

  beforeAll(async () => {
    loopback = await listen("127.0.0.1", (path) =>
      path === "/away" ? [302, { location: `http://127.0.0.2:${second.port}/file` }, ""] : [200, {}, "ok"],
    );
    second = await listen("127.0.0.2");
  });
  afterAll(async () => {
    await loopback.close();
    await second.close();
  });

  it("refuses loopback in every spelling without opening a connection, when private networks are refused", async () => {
    const agent = createPolicyAgent(createNetworkPolicy({ allowPrivateNetworks: false }));
    try {
      for (const host of ["127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]", "0x7f.1"]) {
        const error = await request(`http://${host}:${loopback.port}/`, { dispatcher: agent }).catch(
          (caught: unknown) => caught,
        );
        expect(error, host).toBeInstanceOf(NetworkRefusedError);
        expect((error as Error).message, host).toMatch(
          /^(127\.0\.0\.1 is|::ffff:7f00:1 is|localhost resolves to) .*refused network \(loopback\)$/,
        );
      }
      expect(loopback.connections).toBe(0);
    } finally {
      await agent.close();
    }
  });

  it("connects to loopback by default", async () => {
    const agent = createPolicyAgent(createNetworkPolicy());
    try {
      const answer = await request(`http://localhost:${loopback.port}/`, { dispatcher: agent });
      expect(await answer.body.text()).toBe("ok");
      expect(loopback.connections).toBe(1);
    } finally {
      await agent.close();
    }
  });

  it("checks every redirect hop", async () => {
    const agent = createPolicyAgent(createNetworkPolicy({ deny: ["127.0.0.2/32"] }));
    const dispatcher = agent.compose(interceptors.redirect({ maxRedirections: 5 }));
    try {
      const error = await request(`http://127.0.0.1:${loopback.port}/away`, { dispatcher }).catch(
        (caught: unknown) => caught,
      );
      expect((error as Error).message).toBe("127.0.0.2 is in a refused network (127.0.0.2/32)");
      expect(second.connections).toBe(0);
    } finally {
      await agent.close();
    }
  });

  it("checks the address connected to, so a name that changes its answer (DNS rebinding) cannot pass", async () => {
    // The name first resolves to an allowed address, then to a denied one.
    const resolve = fixed({ "rebind.test": ["127.0.0.1", "127.0.0.2"] });
    const policy = createNetworkPolicy({ deny: ["127.0.0.2/32"] }, { resolve });
    const first = createPolicyAgent(policy);
    const before = loopback.connections;
    expect((await request(`http://rebind.test:${loopback.port}/`, { dispatcher: first })).statusCode).toBe(
      200,
    );
    await first.close();
    expect(loopback.connections).toBe(before + 1);
    const second_ = createPolicyAgent(policy);
    try {
      const error = await request(`http://rebind.test:${second.port}/`, { dispatcher: second_ }).catch(
        (caught: unknown) => caught,
      );
      expect((error as Error).message).toBe("rebind.test resolves to a refused network (127.0.0.2/32)");
      expect(second.connections).toBe(0);
    } finally {
      await second_.close();
    }
  });
});

describe("ws through the policy", () => {
  let loopback: Listener;
  beforeAll(async () => {
    loopback = await listen("127.0.0.1");
  });
  afterAll(async () => {
    await loopback.close();
  });

  const open = (url: string, policy = createNetworkPolicy()) =>
    new Promise<string>((resolve) => {
      const socket = new WebSocket(url, [], websocketOptions(policy, url.startsWith("wss:")));
      socket.on("message", (data) => {
        resolve(`message: ${String(data)}`);
        socket.close();
      });
      socket.on("error", (error) => resolve(`error: ${error.message}`));
    });

  it("refuses a socket to a refused host in every spelling, without a connection", async () => {
    const closed = createNetworkPolicy({ allowPrivateNetworks: false });
    for (const host of ["127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]"]) {
      expect(await open(`ws://${host}:${loopback.port}/cable`, closed), host).toMatch(
        /^error: (127\.0\.0\.1 is|::ffff:7f00:1 is|localhost resolves to) .*refused network \(loopback\)$/,
      );
    }
    expect(await open(`wss://127.0.0.1:${loopback.port}/cable`, closed)).toBe(
      "error: 127.0.0.1 is in a refused network (loopback)",
    );
    expect(loopback.connections).toBe(0);
  });

  it("opens an allowed socket", async () => {
    expect(await open(`ws://localhost:${loopback.port}/cable`)).toBe("message: hello");
    expect(loopback.connections).toBe(1);
  });
});
