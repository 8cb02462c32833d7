// Issue 15, rows 1, 4 and 5: what a misdirected or hostile answer, or a database error, may show the caller, the log
// and `last_error`. Each test failed before its fix (Detail echoed 500 characters of any body; a profile that failed
// the schema was echoed whole, tokens included; a store error reached the caller with its SQL and values; any length
// of chatwootBaseUrl was accepted).
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { activateBodySchema } from "./activation/schema.js";
import { type ChatwootBridgeOptions, createChatwootBridge } from "./bridge.js";
import { createStaticDirectory } from "./directory/index.js";
import type { Logger } from "./observability/index.js";
import { createMemoryStore } from "./store/memory.js";

const key = randomBytes(32).toString("base64");
const TOKEN = "leaks-account-token";
const API_TOKEN = "cw-api-token-of-the-caller";

type Handler = (req: IncomingMessage) => [number, string, string?];
let handlers: Record<string, Handler> = {};
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = (req.url ?? "/").replace(/\?.*$/, "");
    const handler =
      handlers[`${req.method} ${path}`] ??
      Object.entries(handlers).find(([pattern]) =>
        new RegExp(`^${pattern}$`).test(`${req.method} ${path}`),
      )?.[1];
    const [status, body, type] = handler?.(req) ?? [404, '{"error":"Resource could not be found"}'];
    res.writeHead(status, { "content-type": type ?? "application/json; charset=utf-8" }).end(body);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  handlers = {};
});

const PROFILE = JSON.stringify({
  id: 1,
  name: "Jane",
  access_token: "profile-access-token-AT1",
  pubsub_token: "profile-pubsub-token-PS1",
  accounts: [{ id: 1, role: "administrator" }],
});

function recordingLogger() {
  const lines: string[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push(JSON.stringify({ level, msg, ...obj }));
    };
  const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  return { lines, logger };
}

function start(options: Partial<ChatwootBridgeOptions> = {}) {
  const { lines, logger } = recordingLogger();
  const bridge = createChatwootBridge({
    store: createMemoryStore(),
    directory: createStaticDirectory({
      accounts: [{ id: "a", token: TOKEN, instances: [{ name: "suporte", token: "i" }] }],
    }),
    encryption: { current: { id: "k1", key } },
    // No realtime socket: these tests are about REST answers.
    delivery: "webhook",
    publicUrl: "https://bridge.example",
    logger,
    ...options,
  });
  const call = (method: string, path: string, body?: unknown) =>
    bridge.http.handle({
      method,
      path: `/api/chatwoot/${path}`,
      headers: { token: TOKEN, "content-type": "application/json" },
      ...(body === undefined ? {} : { body }),
    });
  const activate = (body: Record<string, unknown> = {}) =>
    call("POST", "set/suporte", {
      chatwootBaseUrl: baseUrl,
      chatwootAccountId: 1,
      chatwootApiToken: API_TOKEN,
      ...body,
    });
  const message = (answer: Awaited<ReturnType<typeof call>>) =>
    (JSON.parse(answer?.body ?? "{}") as { error?: { message: string } }).error?.message ?? "";
  return { bridge, lines, call, activate, message };
}

describe("Detail carries Chatwoot's error message fields only (row 1)", () => {
  it("never shows a body that is not JSON: whatever a wrong URL answers stays out", async () => {
    handlers["GET /api/v1/profile"] = () => [
      404,
      "<html><title>Router admin</title>serial=ABC123 wifi-password=hunter2</html>",
      "text/html",
    ];
    const { bridge, lines, activate, message } = start();
    try {
      const answer = await activate();
      expect(answer?.status).toBe(400);
      expect(message(answer)).toBe(
        `Chatwoot account or endpoint not found - verify chatwootBaseUrl (${baseUrl}) and chatwootAccountId (1). Detail: ${baseUrl}/api/v1/profile HTTP 404`,
      );
      expect(lines.join("\n")).not.toMatch(/Router admin|hunter2|ABC123/);
    } finally {
      await bridge.stop();
    }
  });

  it("keeps error, message and errors of a JSON answer, without keys naming a token, secret or password, cut at 200", async () => {
    handlers["GET /api/v1/profile"] = () => [
      401,
      JSON.stringify({
        error: "Invalid Access Token",
        access_token: "leaked-AT2",
        errors: {
          name: ["has already been taken"],
          secret_key: "leaked-S2",
          nested: { user_password: "leaked-P2" },
        },
        backtrace: ["app/controllers/a.rb:1"],
      }),
    ];
    const { bridge, lines, activate, message } = start();
    try {
      const answer = await activate();
      expect(answer?.status).toBe(401);
      expect(message(answer)).toBe(
        `Chatwoot rejected the API token - verify chatwootApiToken. Detail: ${baseUrl}/api/v1/profile HTTP 401: {"error":"Invalid Access Token","errors":{"name":["has already been taken"],"nested":{}}}`,
      );
      expect(`${answer?.body}\n${lines.join("\n")}`).not.toMatch(/leaked-|backtrace|a\.rb/);
      handlers["GET /api/v1/profile"] = () => [422, JSON.stringify({ message: "y".repeat(1000) })];
      const long = message(await activate());
      expect(long.slice(long.indexOf("HTTP 422: ") + "HTTP 422: ".length)).toHaveLength(200);
    } finally {
      await bridge.stop();
    }
  });
});

describe("an answer that fails our schema names the field, never its content (row 4)", () => {
  it("a profile with its tokens: not in the answer nor in the log", async () => {
    handlers["GET /api/v1/profile"] = () => [
      200,
      JSON.stringify({
        id: "1",
        access_token: "profile-access-token-AT3",
        pubsub_token: "profile-pubsub-token-PS3",
        accounts: [],
      }),
    ];
    const { bridge, lines, activate, message } = start();
    try {
      const answer = await activate();
      expect(answer?.status).toBe(400);
      expect(message(answer)).toMatch(
        new RegExp(
          `Detail: ${baseUrl}/api/v1/profile HTTP 200: not a Chatwoot answer \\(id: .*expected number, received string\\)$`,
        ),
      );
      expect(`${answer?.body}\n${lines.join("\n")}`).not.toMatch(/AT3|PS3/);
    } finally {
      await bridge.stop();
    }
  });

  it("an inbox with its webhook secret: not in list's last_error", async () => {
    handlers["GET /api/v1/profile"] = () => [200, PROFILE];
    handlers["POST /api/v1/accounts/1/inboxes"] = () => [200, JSON.stringify({ id: 9, name: "RyzeAPI" })];
    const { bridge, lines, activate, call } = start();
    try {
      expect((await activate())?.status).toBe(201);
      handlers["GET /api/v1/accounts/1/inboxes/9"] = () => [
        200,
        JSON.stringify({ id: 9, name: null, secret: "inbox-signing-secret-S4", hmac_token: "inbox-hmac-H4" }),
      ];
      const list = JSON.parse((await call("GET", "list/suporte"))?.body ?? "{}") as { last_error: string };
      expect(list.last_error).toMatch(
        /HTTP 200: not a Chatwoot answer \(name: .*expected string, received null\)$/,
      );
      expect(`${JSON.stringify(list)}\n${lines.join("\n")}`).not.toMatch(/S4|H4|AT1|PS1/);
    } finally {
      await bridge.stop();
    }
  });

  it("a body that is not JSON at all", async () => {
    handlers["GET /api/v1/profile"] = () => [200, "<html>Welcome to nginx! build 1.2.3</html>", "text/html"];
    const { bridge, activate, message } = start();
    try {
      expect(message(await activate())).toMatch(/HTTP 200: not a Chatwoot answer \(not JSON\)$/);
    } finally {
      await bridge.stop();
    }
  });
});

describe("database and internal errors answer a reference to the log line (row 5)", () => {
  const SQL =
    "insert into `chatwoot_integrations` (`api_token`, `instance`) values ('cw1:k1:c2VhbGVk', 'suporte') - SQLITE_CONSTRAINT: UNIQUE constraint failed";

  it("a failed persist: the SQL and its values are logged under the reference, never answered", async () => {
    handlers["GET /api/v1/profile"] = () => [200, PROFILE];
    handlers["POST /api/v1/accounts/1/inboxes"] = () => [200, JSON.stringify({ id: 9, name: "RyzeAPI" })];
    handlers["DELETE /api/v1/accounts/1/inboxes/9"] = () => [200, "{}"];
    const store = createMemoryStore();
    const update = store.integrations.update.bind(store.integrations);
    store.integrations.update = async (id, version, patch) => {
      if (patch.status === "active") throw new Error(SQL);
      return update(id, version, patch);
    };
    const { bridge, lines, activate, message } = start({ store });
    try {
      const answer = await activate();
      expect(answer?.status).toBe(500);
      const text = message(answer);
      const ref =
        /^chatwoot integration failed: persist integration: storage error \(ref ([0-9a-f]{12})\)$/.exec(
          text,
        )?.[1];
      expect(ref, text).toBeDefined();
      expect(answer?.body).not.toMatch(/insert into|SQLITE|cw1:/);
      const logged = lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line.ref === ref);
      expect(logged).toMatchObject({ level: "error", err: SQL });
      // Inline, the same.
      const inline = await bridge.activate("suporte", {
        chatwootBaseUrl: baseUrl,
        chatwootAccountId: 1,
        chatwootApiToken: API_TOKEN,
      });
      expect(inline).toEqual({
        status: "error",
        error: expect.stringMatching(
          /^chatwoot integration failed: persist integration: storage error \(ref [0-9a-f]{12}\)$/,
        ),
      });
    } finally {
      await bridge.stop();
    }
  });

  it("any other local failure: internal error with a reference, the cause in the log line", async () => {
    const store = createMemoryStore();
    store.integrations.get = async () => {
      throw new Error(SQL);
    };
    const { bridge, lines, call, message } = start({ store });
    try {
      const answer = await call("GET", "list/suporte");
      expect(answer?.status).toBe(500);
      const ref = /^internal error \(ref ([0-9a-f]{12})\)$/.exec(message(answer))?.[1];
      expect(ref, answer?.body ?? "").toBeDefined();
      expect(answer?.body).not.toContain("insert into");
      const logged = lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line.ref === ref);
      expect(logged).toMatchObject({ level: "error", msg: "chatwoot: request failed", err: SQL });
    } finally {
      await bridge.stop();
    }
  });

  it("chatwootBaseUrl is at most 2048 characters, as given and as normalised (the stores' column)", async () => {
    const at = (length: number) =>
      `https://chatwoot.example/${"p".repeat(length - "https://chatwoot.example/".length)}`;
    expect(
      activateBodySchema.safeParse({ chatwootBaseUrl: at(2048), chatwootAccountId: 1, chatwootApiToken: "t" })
        .success,
    ).toBe(true);
    const { bridge, activate, message } = start();
    try {
      for (const chatwootBaseUrl of [at(2049), at(60_000), `https://chatwoot.example/${"é".repeat(700)}`]) {
        const answer = await activate({ chatwootBaseUrl });
        expect([answer?.status, message(answer)]).toEqual([
          400,
          "invalid body: chatwootBaseUrl: must be at most 2048 characters",
        ]);
      }
    } finally {
      await bridge.stop();
    }
  });
});
