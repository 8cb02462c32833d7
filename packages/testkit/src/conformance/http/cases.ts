import { createHmac } from "node:crypto";
import { expect } from "vitest";
import { eventually } from "../../eventually.js";
import { toRailsJson } from "../../simulator/rails-json.js";
import { webhookSignature } from "../../simulator/webhooks.js";
import {
  ACCOUNT_TOKEN,
  type Answer,
  activateBody,
  errorOf,
  FOREIGN_ACCOUNT_TOKEN,
  type Harness,
  type HarnessOptions,
  INSTANCE_TOKEN,
  OTHER_INSTANCE_TOKEN,
  send,
} from "./harness.js";
import { statusCases } from "./status-cases.js";

/** One case of the HTTP contract: run against a fresh harness, its final answer compared across frameworks. */
export interface HttpCase {
  name: string;
  harness?: Omit<HarnessOptions, "mount">;
  run(h: Harness): Promise<Answer>;
}

const SET = "/api/chatwoot/set/suporte";
const LIST = "/api/chatwoot/list/suporte";
const DELETE = "/api/chatwoot/delete/suporte";
const JSON_TYPE = "application/json; charset=utf-8";

const set = (h: Harness, overrides: Record<string, unknown> = {}, token: string | null = ACCOUNT_TOKEN) =>
  send(h.server, SET, { method: "POST", token, body: activateBody(h, overrides) });
const list = (h: Harness, token: string | null = ACCOUNT_TOKEN) => send(h.server, LIST, { token });

async function activated(h: Harness): Promise<{ id: string }> {
  const answer = await set(h);
  expect(answer.status, answer.body).toBe(201);
  return { id: (JSON.parse(answer.body) as { bridge_integration_id: string }).bridge_integration_id };
}

function expectError(answer: Answer, status: number, message: string | RegExp): void {
  expect(answer.status, answer.body).toBe(status);
  expect(answer.headers["content-type"]).toBe(JSON_TYPE);
  const text = errorOf(answer);
  if (typeof message === "string") expect(text).toBe(message);
  else expect(text).toMatch(message);
}

function expectRateLimitHeaders(answer: Answer, limit = 10_000): void {
  expect(answer.headers["x-ratelimit-limit"]).toBe(String(limit));
  expect(Number(answer.headers["x-ratelimit-remaining"])).toBeGreaterThanOrEqual(0);
  const reset = Number(answer.headers["x-ratelimit-reset"]);
  expect(reset).toBeGreaterThan(Date.now() / 1000 - 1);
  expect(reset).toBeLessThanOrEqual(Date.now() / 1000 + 61);
}

const notFoundPrefix = (h: Harness, accountId = h.accountId) =>
  `Chatwoot account or endpoint not found - verify chatwootBaseUrl (${h.sim.url}) and chatwootAccountId (${accountId}). Detail: `;
const unreachablePrefix = (h: Harness) =>
  `Chatwoot is unreachable at ${h.sim.url} - verify chatwootBaseUrl and that the host is reachable from the server. Detail: `;
const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** What a Rails-escaped, UTF-8 delivery carries: `<`, `>`, `&` (escaped by Rails), accents, CJK, an emoji, U+2028. */
const TRICKY_TEXT = "<b>Tom & Jerry</b> -> caf\u00e9, a\u00e7\u00e3o, \u65e5\u672c\u8a9e \u{1F600}\u2028fim";

/**
 * A webhook delivery exactly as Chatwoot 4.13 sends it: the body is `payload.to_json` (Rails escapes `<`, `>`, `&`,
 * U+2028 and U+2029, and leaves other non-ASCII as UTF-8), `X-Chatwoot-Timestamp` is Unix seconds, and
 * `X-Chatwoot-Signature` is `sha256=HMAC-SHA256(inbox secret, "<timestamp>.<raw body>")`. The delivery is an
 * agent reply, so an accepted one is queued for WhatsApp with the text as sent.
 */
function signedDeliveryCase(hostBodyParser: boolean): HttpCase {
  return {
    name: `webhook: a delivery signed as Chatwoot 4.13 signs it, over Rails-escaped JSON with <, >, & and non-ASCII, is accepted (${hostBodyParser ? "host body parser" : "no host body parser"})`,
    // Chatwoot is never told to deliver here: the case posts the deliveries itself.
    harness: { hostBodyParser, bridge: { delivery: "webhook", publicUrl: "http://127.0.0.1:9" } },
    async run(h) {
      const { id } = await activated(h);
      const inboxId = h.sim.inboxes(h.accountId)[0]!.id as number;
      h.sim.setWebhookSigning(inboxId, "secret");
      const inbox = h.sim.getInbox(h.accountId, inboxId) as { webhook_url: string; secret: string };
      const registered = new URL(inbox.webhook_url);
      const path = `${registered.pathname}${registered.search}`;
      const raw = toRailsJson({
        event: "message_created",
        id: 4242,
        content: TRICKY_TEXT,
        content_type: "text",
        message_type: "outgoing",
        private: false,
        source_id: null,
        created_at: "2026-04-20T10:15:30.000Z",
        account: { id: h.accountId, name: "Acme & Co <BR>" },
        inbox: { id: inboxId, name: "WhatsApp - Orion" },
        sender: { id: 1, name: "Jane Doe", type: "user" },
        conversation: { id: 7, inbox_id: inboxId, contact_inbox: { source_id: "5511900001111" } },
      });
      // The bytes Chatwoot signs are not what JSON.stringify of the parsed body gives.
      expect(raw).toContain("\\u003cb\\u003eTom \\u0026 Jerry");
      expect(raw).toContain("caf\u00e9");
      expect(raw).not.toBe(JSON.stringify(JSON.parse(raw)));
      const timestamp = String(Math.floor(Date.now() / 1000));
      const post = (secret: string) =>
        send(h.server, path, {
          method: "POST",
          raw,
          headers: {
            "content-type": "application/json",
            "x-chatwoot-timestamp": timestamp,
            "x-chatwoot-signature": webhookSignature(secret, timestamp, raw),
            "x-chatwoot-delivery": "0b5c7f0e-3f0e-4c8e-9d55-6f1d8c1f2a10",
          },
        });
      // The signature is really checked on this path: the same bytes under another secret are refused.
      expectError(await post("not-the-inbox-secret"), 401, "invalid webhook secret");
      const answer = await post(inbox.secret);
      expect(answer.status, answer.body).toBe(200);
      expect(answer.headers["content-type"]).toBe(JSON_TYPE);
      expect(JSON.parse(answer.body)).toEqual({ received: true });
      const queued = await h.store.outbox.claim({
        owner: "conformance",
        limit: 10,
        claimTtlMs: 60_000,
        now: new Date(),
      });
      expect(queued.map((item) => item.integrationId)).toEqual([id]);
      expect(queued[0]!.payload).toMatchObject({
        kind: "agent-message",
        messageId: 4242,
        content: TRICKY_TEXT,
      });
      return answer;
    },
  };
}

/** Chatwoot 4.13 signatures over the raw bytes, with and without a host body parser before the adapter. */
export const webhookSignatureCases: HttpCase[] = [signedDeliveryCase(false), signedDeliveryCase(true)];

export const httpCases: HttpCase[] = [
  // --- activation --------------------------------------------------------------------------------
  {
    name: "set: 201 with the exact body",
    async run(h) {
      const answer = await set(h);
      expect(answer.status, answer.body).toBe(201);
      expect(answer.headers["content-type"]).toBe(JSON_TYPE);
      expectRateLimitHeaders(answer);
      const body = JSON.parse(answer.body) as Record<string, unknown>;
      expect(Object.keys(body)).toEqual(["instance", "status", "bridge_integration_id", "message"]);
      expect(body).toMatchObject({
        instance: "suporte",
        status: "active",
        message: "chatwoot integration activated",
      });
      expect(body.bridge_integration_id).toMatch(/^int_[A-Za-z0-9_-]{12,}$/);
      const inboxes = h.sim.inboxes(h.accountId);
      expect(inboxes).toHaveLength(1);
      expect(inboxes[0]).toMatchObject({ name: "WhatsApp - Orion", channel_type: "Channel::Api" });
      return answer;
    },
  },
  {
    name: "set: an instance token and a Bearer header are accepted",
    async run(h) {
      const answer = await send(h.server, SET, {
        method: "POST",
        headers: { authorization: `Bearer ${INSTANCE_TOKEN}` },
        body: activateBody(h),
      });
      expect(answer.status, answer.body).toBe(201);
      return answer;
    },
  },
  {
    name: "set: re-activation reuses and renames the inbox and keeps the bridge id",
    async run(h) {
      const first = await activated(h);
      const answer = await set(h, { inboxName: "Renamed", signMessages: false });
      expect(answer.status, answer.body).toBe(201);
      expect(JSON.parse(answer.body)).toMatchObject({ bridge_integration_id: first.id });
      const inboxes = h.sim.inboxes(h.accountId);
      expect(inboxes).toHaveLength(1);
      expect(inboxes[0]).toMatchObject({ name: "Renamed" });
      const info = JSON.parse((await list(h)).body) as Record<string, unknown>;
      expect(info).toMatchObject({
        chatwoot_inbox_name: "Renamed",
        sign_messages: false,
        bridge_integration_id: first.id,
      });
      return answer;
    },
  },
  {
    name: "set: re-activation creates a new inbox when the old one was deleted in Chatwoot",
    async run(h) {
      await activated(h);
      const [old] = h.sim.inboxes(h.accountId);
      await fetch(`${h.sim.url}/api/v1/accounts/${h.accountId}/inboxes/${old!.id}`, {
        method: "DELETE",
        headers: { api_access_token: h.adminToken },
      });
      const answer = await set(h);
      expect(answer.status, answer.body).toBe(201);
      const inboxes = h.sim.inboxes(h.accountId);
      expect(inboxes).toHaveLength(1);
      expect(inboxes[0]!.id).not.toBe(old!.id);
      expect(JSON.parse((await list(h)).body)).toMatchObject({ chatwoot_inbox_id: inboxes[0]!.id });
      return answer;
    },
  },
  {
    name: "set: a failed re-activation keeps what was stored",
    async run(h) {
      const first = await activated(h);
      const answer = await set(h, { chatwootApiToken: "not-a-valid-token", inboxName: "Other" });
      expect(answer.status).toBe(401);
      const info = JSON.parse((await list(h)).body) as Record<string, unknown>;
      expect(info).toMatchObject({
        status: "active",
        bridge_integration_id: first.id,
        chatwoot_api_token: h.adminToken,
        chatwoot_inbox_name: "WhatsApp - Orion",
      });
      return answer;
    },
  },
  {
    name: "set: two concurrent activations leave exactly one inbox (409 for the other)",
    async run(h) {
      h.sim.faults.inject({ method: "GET", path: "/api/v1/profile", delayMs: 300, times: 2 });
      const answers = await Promise.all([set(h), set(h)]);
      const statuses = answers.map((answer) => answer.status).sort();
      expect(statuses).toEqual([201, 409]);
      const conflict = answers.find((answer) => answer.status === 409)!;
      expectError(conflict, 409, "chatwoot activation already in progress for this instance");
      expect(h.sim.inboxes(h.accountId)).toHaveLength(1);
      return conflict;
    },
  },
  {
    name: "set: a failed persist deletes the inbox it created (500)",
    harness: {
      wrapStore: (store) => ({
        ...store,
        integrations: {
          ...store.integrations,
          async update(id, version, patch) {
            if (patch.status === "active") throw new Error("disk I/O error (simulated)");
            return store.integrations.update(id, version, patch);
          },
        },
      }),
    },
    async run(h) {
      const answer = await set(h);
      // The store's message is in the log only, under the reference the answer gives (docs/security.md).
      expectError(
        answer,
        500,
        /^chatwoot integration failed: persist integration: storage error \(ref [0-9a-f]{12}\)$/,
      );
      const ref = /\(ref ([0-9a-f]{12})\)/.exec(answer.body)![1]!;
      const logged = h.logs.find((line) => line.msg === "chatwoot: persist integration failed");
      expect(logged?.obj).toMatchObject({ ref, err: "disk I/O error (simulated)" });
      expect(h.sim.inboxes(h.accountId)).toHaveLength(0);
      expect(h.sim.countRequests({ method: "DELETE", path: /\/inboxes\/\d+$/ })).toBe(1);
      expectError(await list(h), 404, "no chatwoot integration for this instance");
      return answer;
    },
  },
  // --- errors in the contract's order ------------------------------------------------------------
  {
    name: "503 when the module is disabled, before authentication",
    harness: { bridge: { enabled: false } },
    async run(h) {
      for (const [path, method] of [
        [LIST, "GET"],
        [DELETE, "DELETE"],
      ] as const) {
        const other = await send(h.server, path, { method });
        expectError(other, 503, "integration gateway not configured");
      }
      const answer = await set(h, {}, null);
      expectError(answer, 503, "integration gateway not configured");
      expect(answer.headers["x-ratelimit-limit"]).toBeUndefined();
      return answer;
    },
  },
  {
    name: "401 Missing token",
    async run(h) {
      const answer = await set(h, {}, null);
      expectError(answer, 401, "Missing token");
      return answer;
    },
  },
  {
    name: "401 Invalid token",
    async run(h) {
      const answer = await list(h, "who-knows");
      expectError(answer, 401, "Invalid token");
      expect(answer.headers["x-ratelimit-limit"]).toBeUndefined();
      return answer;
    },
  },
  {
    name: "429 for the 101st request in a minute, with Retry-After",
    harness: { bridge: { rateLimit: { points: 100 } } },
    async run(h) {
      for (let i = 1; i <= 100; i++) {
        const answer = await list(h);
        expect(answer.status).toBe(404);
        expect(answer.headers["x-ratelimit-remaining"]).toBe(String(100 - i));
      }
      const answer = await list(h);
      expectError(answer, 429, "Rate limit exceeded. Try again later.");
      expectRateLimitHeaders(answer, 100);
      expect(answer.headers["x-ratelimit-remaining"]).toBe("0");
      const retryAfter = Number(answer.headers["retry-after"]);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      // The quota is per token: another caller is not limited.
      expect((await list(h, INSTANCE_TOKEN)).status).toBe(404);
      return answer;
    },
  },
  {
    name: "429 past 20 failed caller tokens a minute from one client address, on every route; other addresses pass",
    // Issue 15, row 7: token guessing is limited per client address (the address the framework determines), before
    // the token is looked up, so the valid token is refused too from that address.
    async run(h) {
      const from = (
        localAddress: string,
        method: string,
        path: string,
        token: string | null,
        body?: unknown,
      ) =>
        send(h.server, path, {
          method,
          localAddress,
          headers: token === null ? {} : { token },
          ...(body === undefined ? {} : { body }),
        });
      for (let attempt = 1; attempt <= 20; attempt++) {
        const answer =
          attempt % 4 === 0
            ? await from("127.0.0.2", "GET", LIST, null)
            : await from("127.0.0.2", "GET", LIST, `guess-${attempt}`);
        expectError(answer, 401, attempt % 4 === 0 ? "Missing token" : "Invalid token");
      }
      const limited = [
        await from("127.0.0.2", "GET", LIST, ACCOUNT_TOKEN),
        await from("127.0.0.2", "POST", SET, ACCOUNT_TOKEN, activateBody(h)),
        await from("127.0.0.2", "DELETE", DELETE, "guess-21"),
      ];
      for (const answer of limited) {
        expectError(answer, 429, "Rate limit exceeded. Try again later.");
        expect(Number(answer.headers["retry-after"])).toBeGreaterThan(0);
        expect(Number(answer.headers["retry-after"])).toBeLessThanOrEqual(60);
        expect(answer.headers["x-ratelimit-limit"]).toBeUndefined();
      }
      // Nothing was activated from the limited address; a valid caller on another address is served.
      expect(h.sim.inboxes(h.accountId)).toHaveLength(0);
      expect((await from("127.0.0.3", "GET", LIST, ACCOUNT_TOKEN)).status).toBe(404);
      expect((await from("127.0.0.3", "POST", SET, ACCOUNT_TOKEN, activateBody(h))).status).toBe(201);
      return limited[0]!;
    },
  },
  {
    name: "404 instance not found",
    async run(h) {
      const answer = await send(h.server, "/api/chatwoot/list/nope", { token: ACCOUNT_TOKEN });
      expectError(answer, 404, "instance not found");
      expectRateLimitHeaders(answer);
      return answer;
    },
  },
  {
    name: "403 instance token of another instance",
    async run(h) {
      const answer = await set(h, {}, OTHER_INSTANCE_TOKEN);
      expectError(answer, 403, "Instance token does not match the instance");
      return answer;
    },
  },
  {
    name: "403 account token of another account",
    async run(h) {
      const answer = await list(h, FOREIGN_ACCOUNT_TOKEN);
      expectError(answer, 403, "Instance does not belong to this account");
      return answer;
    },
  },
  {
    name: "400 invalid body names every failing field",
    async run(h) {
      const answer = await send(h.server, SET, {
        method: "POST",
        token: ACCOUNT_TOKEN,
        body: { chatwootBaseUrl: h.sim.url, chatwootAccountId: 0, color: "red" },
      });
      expectError(
        answer,
        400,
        "invalid body: chatwootAccountId: must be greater than 0; chatwootApiToken: required; color: unknown field",
      );
      expect(h.sim.countRequests()).toBe(0);
      return answer;
    },
  },
  {
    name: "400 invalid body: malformed JSON",
    async run(h) {
      const answer = await send(h.server, SET, {
        method: "POST",
        token: ACCOUNT_TOKEN,
        headers: { "content-type": "application/json" },
        raw: '{"chatwootBaseUrl": ',
      });
      expectError(answer, 400, /^invalid body: .*JSON/);
      return answer;
    },
  },
  {
    name: "400 invalid body: wrong content type",
    async run(h) {
      const answer = await send(h.server, SET, {
        method: "POST",
        token: ACCOUNT_TOKEN,
        headers: { "content-type": "text/plain" },
        raw: JSON.stringify(activateBody(h)),
      });
      expectError(answer, 400, 'invalid body: Content-Type must be application/json, got "text/plain"');
      return answer;
    },
  },
  {
    name: "400 invalid body: a malformed Content-Type",
    async run(h) {
      const answer = await send(h.server, SET, {
        method: "POST",
        token: ACCOUNT_TOKEN,
        headers: { "content-type": "foo" },
        raw: JSON.stringify(activateBody(h)),
      });
      expectError(answer, 400, 'invalid body: Content-Type must be application/json, got "foo"');
      return answer;
    },
  },
  {
    name: "400 invalid body: not an object",
    async run(h) {
      const answer = await send(h.server, SET, { method: "POST", token: ACCOUNT_TOKEN, body: [1, 2] });
      expectError(answer, 400, "invalid body: expected a JSON object");
      return answer;
    },
  },
  {
    name: "413 body larger than 64 KiB, of a declared length or streamed",
    async run(h) {
      const big = activateBody(h, { inboxName: "x".repeat(70 * 1024) });
      const answer = await send(h.server, SET, { method: "POST", token: ACCOUNT_TOKEN, body: big });
      expectError(answer, 413, "request body too large");
      const streamed = await send(h.server, SET, {
        method: "POST",
        token: ACCOUNT_TOKEN,
        body: big,
        chunked: true,
      });
      expectError(streamed, 413, "request body too large");
      expect(h.sim.inboxes(h.accountId)).toHaveLength(0);
      return answer;
    },
  },
  {
    name: "400 Chatwoot account not found (account not in the token user's accounts)",
    async run(h) {
      const answer = await set(h, { chatwootAccountId: 987654 });
      expectError(
        answer,
        400,
        new RegExp(
          `^${esc(notFoundPrefix(h, 987654))}${esc(h.sim.url)}/api/v1/profile: account not in the token user's accounts`,
        ),
      );
      return answer;
    },
  },
  {
    name: "400 Chatwoot 404",
    async run(h) {
      h.sim.faults.inject({
        method: "POST",
        path: /\/inboxes$/,
        status: 404,
        body: { error: "Resource could not be found" },
      });
      const answer = await set(h);
      expectError(
        answer,
        400,
        `${notFoundPrefix(h)}${h.sim.url}/api/v1/accounts/${h.accountId}/inboxes HTTP 404: {"error":"Resource could not be found"}`,
      );
      return answer;
    },
  },
  {
    name: "400 Chatwoot 401 for a foreign account",
    async run(h) {
      const answer = await set(h, { chatwootApiToken: h.strangerToken });
      // The profile does not list the account; Chatwoot itself would answer 401 on the inbox call.
      expectError(answer, 400, new RegExp(`^${esc(notFoundPrefix(h))}`));
      h.sim.faults.inject({
        method: "GET",
        path: "/api/v1/profile",
        status: 401,
        body: { error: "You are not authorized to access this account" },
      });
      const second = await set(h);
      expectError(
        second,
        400,
        `${notFoundPrefix(h)}${h.sim.url}/api/v1/profile HTTP 401: {"error":"You are not authorized to access this account"}`,
      );
      return second;
    },
  },
  {
    name: "400 a 2xx answer that is not Chatwoot (HTML page) and a redirect",
    async run(h) {
      h.sim.faults.inject({
        method: "GET",
        path: "/api/v1/profile",
        status: 200,
        body: "<html>Welcome</html>",
        headers: { "content-type": "text/html" },
        times: 1,
      });
      const html = await set(h);
      expectError(
        html,
        400,
        `${notFoundPrefix(h)}${h.sim.url}/api/v1/profile HTTP 200: not a Chatwoot answer (not JSON)`,
      );
      h.sim.faults.inject({
        method: "GET",
        path: "/api/v1/profile",
        status: 301,
        body: "",
        headers: { location: "https://elsewhere.example/" },
        times: 1,
      });
      const redirect = await set(h);
      expectError(redirect, 400, `${notFoundPrefix(h)}${h.sim.url}/api/v1/profile HTTP 301`);
      return redirect;
    },
  },
  {
    name: "400 Chatwoot rejected the request (422, 402)",
    async run(h) {
      h.sim.faults.inject({
        method: "POST",
        path: /\/inboxes$/,
        status: 402,
        body: { error: "Account limit exceeded. Upgrade to a higher plan" },
        times: 1,
      });
      const limit = await set(h);
      expectError(
        limit,
        400,
        `Chatwoot rejected the request as invalid - verify inboxName and the Chatwoot account settings. Detail: ${h.sim.url}/api/v1/accounts/${h.accountId}/inboxes HTTP 402: {"error":"Account limit exceeded. Upgrade to a higher plan"}`,
      );
      h.sim.faults.inject({
        method: "POST",
        path: /\/inboxes$/,
        status: 422,
        body: { message: "Name is invalid", attributes: ["name"] },
        times: 1,
      });
      const invalid = await set(h);
      expectError(
        invalid,
        400,
        `Chatwoot rejected the request as invalid - verify inboxName and the Chatwoot account settings. Detail: ${h.sim.url}/api/v1/accounts/${h.accountId}/inboxes HTTP 422: {"message":"Name is invalid"}`,
      );
      return invalid;
    },
  },
  {
    name: "401 Chatwoot rejected the API token",
    async run(h) {
      const answer = await set(h, { chatwootApiToken: "definitely-wrong" });
      expectError(
        answer,
        401,
        `Chatwoot rejected the API token - verify chatwootApiToken. Detail: ${h.sim.url}/api/v1/profile HTTP 401: {"error":"Invalid Access Token"}`,
      );
      expect(answer.body).not.toContain("definitely-wrong");
      return answer;
    },
  },
  {
    name: "403 the token's user is an agent, not an administrator",
    async run(h) {
      const answer = await set(h, { chatwootApiToken: h.agentToken });
      expectError(
        answer,
        403,
        `Chatwoot denied the request - verify the API token has admin scope on account ${h.accountId}. Detail: ${h.sim.url}/api/v1/profile: role in the account is "agent", not "administrator"`,
      );
      expect(h.sim.inboxes(h.accountId)).toHaveLength(0);
      return answer;
    },
  },
  {
    name: "403 Chatwoot 401 'not authorized to do this action' and 403",
    async run(h) {
      h.sim.faults.inject({
        method: "POST",
        path: /\/inboxes$/,
        status: 401,
        body: { error: "You are not authorized to do this action" },
        times: 1,
      });
      const pundit = await set(h);
      expectError(
        pundit,
        403,
        `Chatwoot denied the request - verify the API token has admin scope on account ${h.accountId}. Detail: ${h.sim.url}/api/v1/accounts/${h.accountId}/inboxes HTTP 401: {"error":"You are not authorized to do this action"}`,
      );
      h.sim.faults.inject({
        method: "POST",
        path: /\/inboxes$/,
        status: 403,
        body: { error: "forbidden" },
        times: 1,
      });
      const forbidden = await set(h);
      expectError(forbidden, 403, /HTTP 403: \{"error":"forbidden"\}$/);
      return forbidden;
    },
  },
  {
    name: "502 Chatwoot unreachable: closed port",
    async run(h) {
      await h.sim.closePort();
      const answer = await set(h);
      expectError(
        answer,
        502,
        new RegExp(`^${esc(unreachablePrefix(h))}GET "${esc(h.sim.url)}/api/v1/profile": .*ECONNREFUSED`),
      );
      await h.sim.reopenPort();
      expectError(await list(h), 404, "no chatwoot integration for this instance");
      return answer;
    },
  },
  {
    name: "502 Chatwoot unreachable: 5xx, 429 and a connection reset",
    async run(h) {
      h.sim.faults.inject({
        method: "POST",
        path: /\/inboxes$/,
        status: 503,
        body: "Service Unavailable",
        times: 1,
      });
      const unavailable = await set(h);
      expectError(
        unavailable,
        502,
        // Not JSON: nothing of the body is shown (docs/security.md).
        `${unreachablePrefix(h)}${h.sim.url}/api/v1/accounts/${h.accountId}/inboxes HTTP 503`,
      );
      h.sim.faults.inject({
        method: "GET",
        path: "/api/v1/profile",
        status: 429,
        body: "Retry later\n",
        times: 1,
      });
      expectError(await set(h), 502, `${unreachablePrefix(h)}${h.sim.url}/api/v1/profile HTTP 429`);
      h.sim.faults.inject({ method: "GET", path: "/api/v1/profile", reset: true, times: 1 });
      const reset = await set(h);
      expectError(
        reset,
        502,
        new RegExp(`^${esc(unreachablePrefix(h))}GET "${esc(h.sim.url)}/api/v1/profile": .+`),
      );
      expect(h.sim.inboxes(h.accountId)).toHaveLength(0);
      return unavailable;
    },
  },
  {
    name: "502 the realtime subscription is not confirmed; the integration is kept in error",
    harness: { bridge: { realtime: { subscribeTimeoutMs: 300 } } },
    async run(h) {
      const cable = h.sim.faults.inject({ path: "/cable", status: 503, body: "cable down" });
      const answer = await set(h);
      expectError(
        answer,
        502,
        `${unreachablePrefix(h)}SUBSCRIBE "${h.sim.url.replace("http", "ws")}/cable": realtime subscription not confirmed within 0.3s`,
      );
      cable.remove();
      // Persisted before step 4: the inbox stays, and list says why the link is not up.
      expect(h.sim.inboxes(h.accountId)).toHaveLength(1);
      const listed = await list(h);
      expect(listed.status, listed.body).toBe(200);
      expect(JSON.parse(listed.body)).toMatchObject({
        status: "error",
        last_error: expect.stringContaining("realtime subscription not confirmed"),
      });
      return answer;
    },
  },
  {
    name: "502 the activation deadline expires",
    harness: { bridge: { activationTimeoutMs: 300 } },
    async run(h) {
      h.sim.faults.inject({ method: "GET", path: "/api/v1/profile", delayMs: 5_000, times: 1 });
      const answer = await set(h);
      expectError(answer, 502, `${unreachablePrefix(h)}activation timed out after 0.3s`);
      return answer;
    },
  },
  // --- list ----------------------------------------------------------------------------------------
  {
    name: "list: 200 with every key, the flags and the plaintext token",
    async run(h) {
      const { id } = await activated(h);
      const answer = await list(h);
      expect(answer.status, answer.body).toBe(200);
      expectRateLimitHeaders(answer);
      const body = JSON.parse(answer.body) as Record<string, unknown>;
      const [inbox] = h.sim.inboxes(h.accountId);
      expect(body).toEqual({
        instance_name: "suporte",
        status: "active",
        bridge_integration_id: id,
        chatwoot_base_url: h.sim.url,
        chatwoot_account_id: h.accountId,
        chatwoot_api_token: h.adminToken,
        chatwoot_inbox_id: inbox!.id,
        chatwoot_inbox_name: "WhatsApp - Orion",
        chatwoot_version: "4.13.0",
        last_error: "",
        realtime: expect.stringMatching(/^(connected|connecting|remote)$/),
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        sign_messages: true,
        ignore_groups: false,
        start_as_pending: false,
        reopen_resolved: true,
        import_history_days: 0,
        history: { imported: 0, skipped: 0, pending: 0 },
      });
      return answer;
    },
  },
  {
    name: "list: exposeApiToken false returns null for the token",
    harness: { bridge: { exposeApiToken: false } },
    async run(h) {
      await activated(h);
      const answer = await list(h);
      expect(JSON.parse(answer.body)).toMatchObject({ chatwoot_api_token: null });
      expect(answer.body).not.toContain(h.adminToken);
      return answer;
    },
  },
  {
    name: "list: a deleted inbox shows as error with last_error",
    async run(h) {
      await activated(h);
      const [inbox] = h.sim.inboxes(h.accountId);
      await fetch(`${h.sim.url}/api/v1/accounts/${h.accountId}/inboxes/${inbox!.id}`, {
        method: "DELETE",
        headers: { api_access_token: h.adminToken },
      });
      const answer = await list(h);
      expect(JSON.parse(answer.body)).toMatchObject({
        status: "error",
        last_error: `Chatwoot inbox ${inbox!.id} no longer exists - re-activate the integration to create a new one.`,
      });
      return answer;
    },
  },
  {
    name: "list: polling does not flood Chatwoot (one live check per 30 s)",
    async run(h) {
      await activated(h);
      const before = h.sim.countRequests({ method: "GET", path: /\/inboxes\/\d+$/ });
      for (let i = 0; i < 5; i++) expect((await list(h)).status).toBe(200);
      expect(h.sim.countRequests({ method: "GET", path: /\/inboxes\/\d+$/ }) - before).toBe(1);
      return list(h);
    },
  },
  {
    name: "list: reports Chatwoot going away, and a failing live check never fails the request",
    async run(h) {
      await activated(h);
      await h.sim.closePort();
      // The realtime link notices at once; until it does, the (failing) inbox check answers.
      const answer = await eventually(async () => {
        const current = await list(h);
        expect(current.status).toBe(200);
        const body = JSON.parse(current.body) as Record<string, unknown>;
        expect(body.status).toBe("error");
        expect(body.last_error).toMatch(/^Chatwoot is unreachable at |^Chatwoot realtime link lost/);
        return String(body.last_error).startsWith("Chatwoot realtime link lost") ? current : null;
      });
      expect(JSON.parse(answer.body).last_error).toBe(
        `Chatwoot realtime link lost - reconnecting to ${h.sim.url.replace("http", "ws")}/cable`,
      );
      await h.sim.reopenPort();
      return answer;
    },
  },
  {
    name: "list: 404 no chatwoot integration",
    async run(h) {
      const answer = await list(h);
      expectError(answer, 404, "no chatwoot integration for this instance");
      return answer;
    },
  },
  {
    name: "list: HEAD is answered like GET without a body",
    async run(h) {
      await activated(h);
      const get = await list(h);
      const head = await send(h.server, LIST, { method: "HEAD", token: ACCOUNT_TOKEN });
      expect(head.status).toBe(200);
      expect(head.body).toBe("");
      expect(head.headers["content-type"]).toBe(get.headers["content-type"]);
      expect(head.headers["x-ratelimit-limit"]).toBe("10000");
      return head;
    },
  },
  // --- delete --------------------------------------------------------------------------------------
  {
    name: "delete: 200, keeps the inbox; a later activation creates a new one",
    async run(h) {
      const first = await activated(h);
      const [inbox] = h.sim.inboxes(h.accountId);
      const answer = await send(h.server, DELETE, { method: "DELETE", token: ACCOUNT_TOKEN });
      expect(answer.status, answer.body).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ message: "chatwoot integration deactivated" });
      expect(h.sim.inboxes(h.accountId).map((entry) => entry.id)).toEqual([inbox!.id]);
      expectError(await list(h), 404, "no chatwoot integration for this instance");
      const again = await set(h);
      expect(again.status).toBe(201);
      expect(JSON.parse(again.body).bridge_integration_id).not.toBe(first.id);
      expect(h.sim.inboxes(h.accountId)).toHaveLength(2);
      return answer;
    },
  },
  {
    name: "delete: ?deleteInbox=true removes the inbox",
    async run(h) {
      await activated(h);
      const answer = await send(h.server, `${DELETE}?deleteInbox=true`, {
        method: "DELETE",
        token: ACCOUNT_TOKEN,
      });
      expect(answer.status, answer.body).toBe(200);
      expect(h.sim.inboxes(h.accountId)).toHaveLength(0);
      return answer;
    },
  },
  {
    name: "delete: 404 no chatwoot integration to delete",
    async run(h) {
      const answer = await send(h.server, DELETE, { method: "DELETE", token: INSTANCE_TOKEN });
      expectError(answer, 404, "no chatwoot integration to delete");
      return answer;
    },
  },
  // --- webhook receiver ------------------------------------------------------------------------------
  {
    name: "webhook: answered through the adapter, without caller tokens, with its own 1 MiB cap",
    // Chatwoot is never told to deliver here: the case posts the deliveries itself, unsigned as Chatwoot 4.12 sends them.
    harness: { version: "4.12", bridge: { delivery: "webhook", publicUrl: "http://127.0.0.1:9" } },
    async run(h) {
      const { id } = await activated(h);
      // An unknown integration is answered like a wrong secret.
      const unknown = await send(h.server, "/api/chatwoot/webhook/int_unknownunknown?secret=x", {
        method: "POST",
        body: { event: "message_created" },
      });
      expectError(unknown, 401, "invalid webhook secret");
      expect(unknown.headers["x-ratelimit-limit"]).toBeUndefined();
      const refused = await send(h.server, `/api/chatwoot/webhook/${id}?secret=guess`, {
        method: "POST",
        body: { event: "message_created" },
      });
      expectError(refused, 401, "invalid webhook secret");
      expect(
        (await send(h.server, `/api/chatwoot/webhook/${id}?secret=guess`, { method: "GET" })).status,
      ).toBe(404);
      // With the registered secret: exactly 1 MiB is accepted (16 times the other routes' 64 KiB), one byte more is
      // refused, whether its length is declared or it is streamed.
      const inbox = h.sim.getInbox(h.accountId, h.sim.inboxes(h.accountId)[0]!.id as number) as {
        webhook_url: string;
      };
      const registered = new URL(inbox.webhook_url);
      const path = `${registered.pathname}${registered.search}`;
      const sized = (bytes: number) => {
        const head = '{"event":"conversation_typing_on","padding":"';
        return `${head}${"x".repeat(bytes - head.length - 2)}"}`;
      };
      const deliver = (bytes: number, chunked = false) =>
        send(h.server, path, {
          method: "POST",
          raw: sized(bytes),
          headers: { "content-type": "application/json" },
          chunked,
        });
      for (const chunked of [false, true]) {
        const atCap = await deliver(1024 * 1024, chunked);
        expect(atCap.status, `exactly 1 MiB${chunked ? ", streamed" : ""}: ${atCap.body}`).toBe(200);
        expect(JSON.parse(atCap.body)).toEqual({ received: true });
        expectError(await deliver(1024 * 1024 + 1, chunked), 413, "request body too large");
      }
      const tooLarge = await deliver(1024 * 1024 + 1);
      expectError(tooLarge, 413, "request body too large");
      expect(tooLarge.headers["x-ratelimit-limit"]).toBeUndefined();
      return tooLarge;
    },
  },
  {
    name: "webhook: the registered secret with Chatwoot 4.13's signature over the exact bytes is accepted; no signature, a bad one or a stale timestamp is refused",
    // Chatwoot is never told to deliver here: the case posts the deliveries itself.
    harness: { bridge: { delivery: "webhook", publicUrl: "http://127.0.0.1:9" } },
    async run(h) {
      const { id } = await activated(h);
      const inboxId = h.sim.inboxes(h.accountId)[0]!.id as number;
      h.sim.setWebhookSigning(inboxId, "secret");
      const inbox = h.sim.getInbox(h.accountId, inboxId) as { webhook_url: string; secret: string };
      const registered = new URL(inbox.webhook_url);
      expect(registered.pathname).toBe(`/api/chatwoot/webhook/${id}`);
      const path = `${registered.pathname}${registered.search}`;
      // As Rails renders it (`<` escaped, UTF-8 text): re-encoding the parsed body would change these bytes.
      const raw = '{"event":"conversation_typing_on","content":"\\u003cb\\u003e caf\u00e9"}';
      const post = (headers: Record<string, string> = {}) =>
        send(h.server, path, {
          method: "POST",
          raw,
          headers: { "content-type": "application/json", ...headers },
        });
      const signed = (timestamp: number, secret = inbox.secret) => ({
        "x-chatwoot-timestamp": String(timestamp),
        "x-chatwoot-signature": `sha256=${createHmac("sha256", secret).update(`${timestamp}.${raw}`).digest("hex")}`,
      });
      const accepted = (answer: Answer) => {
        expect(answer.status, answer.body).toBe(200);
        expect(answer.headers["content-type"]).toBe(JSON_TYPE);
        expect(answer.headers["x-ratelimit-limit"]).toBeUndefined();
        expect(JSON.parse(answer.body)).toEqual({ received: true });
      };
      const now = Math.floor(Date.now() / 1000);
      const valid = await post(signed(now));
      accepted(valid);
      // The inbox has a signing secret: the URL secret alone is not enough (fail closed).
      expectError(await post(), 401, "invalid webhook secret");
      expectError(await post(signed(now, "not-the-inbox-secret")), 401, "invalid webhook secret");
      expectError(await post(signed(now - 6 * 60)), 401, "invalid webhook secret");
      return valid;
    },
  },
  {
    name: "webhook: from a Chatwoot before 4.13 (no signing secret), the registered secret alone is accepted",
    harness: { version: "4.12", bridge: { delivery: "webhook", publicUrl: "http://127.0.0.1:9" } },
    async run(h) {
      await activated(h);
      const inboxId = h.sim.inboxes(h.accountId)[0]!.id as number;
      const inbox = h.sim.getInbox(h.accountId, inboxId) as { webhook_url: string };
      expect(inbox).not.toHaveProperty("secret");
      const registered = new URL(inbox.webhook_url);
      const answer = await send(h.server, `${registered.pathname}${registered.search}`, {
        method: "POST",
        raw: '{"event":"conversation_typing_on"}',
        headers: {
          "content-type": "application/json",
          "x-chatwoot-delivery": "5f0c3a52-1d1e-4d3c-8a59-2b6f7e1c0d11",
        },
      });
      expect(answer.status, answer.body).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ received: true });
      expect((await list(h)).body).toContain('"chatwoot_version":"4.12.1"');
      return answer;
    },
  },
  {
    name: "webhook: failed attempts are counted per client address: 429 past 20 a minute, other addresses and verified secrets pass",
    // Unsigned deliveries (Chatwoot 4.12), from two client addresses of this machine: the adapter hands the core the
    // address its framework determines.
    harness: { version: "4.12", bridge: { delivery: "webhook", publicUrl: "http://127.0.0.1:9" } },
    async run(h) {
      const { id } = await activated(h);
      const inbox = h.sim.getInbox(h.accountId, h.sim.inboxes(h.accountId)[0]!.id as number) as {
        webhook_url: string;
      };
      const registered = new URL(inbox.webhook_url);
      const valid = `${registered.pathname}${registered.search}`;
      const post = (path: string, localAddress: string) =>
        send(h.server, path, {
          method: "POST",
          raw: '{"event":"conversation_typing_on"}',
          localAddress,
          headers: { "content-type": "application/json" },
        });
      for (let attempt = 1; attempt <= 20; attempt++) {
        const wrong = await post(`/api/chatwoot/webhook/${id}?secret=guess-${attempt}`, "127.0.0.2");
        expectError(wrong, 401, "invalid webhook secret");
      }
      // Past the limit: refused before the store is read, the unknown integration as much as the known one.
      const limited = await post(`/api/chatwoot/webhook/int_unknownunknown?secret=guess`, "127.0.0.2");
      expectError(limited, 429, "Rate limit exceeded. Try again later.");
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
      expect(Number(limited.headers["retry-after"])).toBeLessThanOrEqual(60);
      expect((await post(valid, "127.0.0.2")).status).toBe(429);
      // Another address is not affected; once it delivered with the registered secret, that secret is known good
      // and passes from the limited address too.
      expectError(
        await post(`/api/chatwoot/webhook/${id}?secret=guess`, "127.0.0.3"),
        401,
        "invalid webhook secret",
      );
      expect((await post(valid, "127.0.0.3")).status).toBe(200);
      expect((await post(valid, "127.0.0.2")).status).toBe(200);
      return limited;
    },
  },
  ...webhookSignatureCases,
  {
    name: "webhook: a store failure answers 500 and logs one line with the cause, like the other routes",
    harness: {
      bridge: { delivery: "webhook", publicUrl: "http://127.0.0.1:9" },
      wrapStore: (store) => ({
        ...store,
        integrations: {
          ...store.integrations,
          async getById() {
            throw new Error("disk I/O error (simulated)");
          },
        },
      }),
    },
    async run(h) {
      const { id } = await activated(h);
      const secret = new URL(
        (h.sim.getInbox(h.accountId, h.sim.inboxes(h.accountId)[0]!.id as number) as { webhook_url: string })
          .webhook_url,
      ).searchParams.get("secret")!;
      h.logs.length = 0;
      const answer = await send(
        h.server,
        `/api/chatwoot/webhook/${id}?secret=${encodeURIComponent(secret)}`,
        {
          method: "POST",
          body: { event: "conversation_typing_on" },
        },
      );
      expectError(answer, 500, /^internal error \(ref [0-9a-f]{12}\)$/);
      expect(answer.headers["x-ratelimit-limit"]).toBeUndefined();
      const errors = h.logs.filter((line) => line.level === "error");
      expect(errors, JSON.stringify(h.logs)).toHaveLength(1);
      expect(errors[0]!.msg).toBe("chatwoot: request failed");
      expect(JSON.stringify(errors[0]!.obj)).toContain("disk I/O error (simulated)");
      expect(JSON.stringify(h.logs)).not.toContain(secret);
      // The other routes log the same way.
      h.logs.length = 0;
      h.store.integrations.get = async () => {
        throw new Error("disk I/O error (simulated)");
      };
      expectError(await list(h), 500, /^internal error \(ref [0-9a-f]{12}\)$/);
      expect(h.logs.filter((line) => line.level === "error").map((line) => line.msg)).toEqual([
        "chatwoot: request failed",
      ]);
      return answer;
    },
  },
  // --- what is not ours ----------------------------------------------------------------------------
  {
    name: "fall-through: the host's own routes and 404",
    async run(h) {
      const ping = await send(h.server, "/host/ping");
      expect(ping.status).toBe(200);
      expect(ping.body).toBe("pong");
      for (const path of [
        "/api/chatwoot/unknown/suporte",
        "/api/chatwoot/set",
        "/api/chatwoot/list/a/b",
        "/elsewhere",
      ]) {
        const answer = await send(h.server, path, { method: "POST", token: ACCOUNT_TOKEN });
        expect(answer.status, path).toBe(404);
        expect(answer.body, path).toBe('{"host":"not found"}');
      }
      return send(h.server, "/api/chatwoot/unknown/suporte");
    },
  },
  {
    name: "fall-through: methods that are not ours (OPTIONS, PUT, GET on set)",
    async run(h) {
      for (const [method, path] of [
        ["OPTIONS", SET],
        ["PUT", SET],
        ["GET", SET],
        ["POST", LIST],
        ["OPTIONS", LIST],
      ] as const) {
        const answer = await send(h.server, path, { method, token: ACCOUNT_TOKEN });
        expect(answer.status, `${method} ${path}`).toBe(404);
        expect(answer.body, `${method} ${path}`).toBe('{"host":"not found"}');
        expect(answer.headers["x-ratelimit-limit"]).toBeUndefined();
      }
      return send(h.server, SET, { method: "OPTIONS" });
    },
  },
  {
    name: "custom prefix",
    harness: { bridge: { prefix: "/hooks/cw" } },
    async run(h) {
      const answer = await send(h.server, "/hooks/cw/set/suporte", {
        method: "POST",
        token: ACCOUNT_TOKEN,
        body: activateBody(h),
      });
      expect(answer.status, answer.body).toBe(201);
      expect((await send(h.server, "/hooks/cw/list/suporte", { token: ACCOUNT_TOKEN })).status).toBe(200);
      expect((await send(h.server, LIST, { token: ACCOUNT_TOKEN })).status).toBe(404);
      expect((await send(h.server, LIST, { token: ACCOUNT_TOKEN })).body).toBe('{"host":"not found"}');
      return answer;
    },
  },
  {
    name: "host body parser: the parsed body is used",
    harness: { hostBodyParser: true },
    async run(h) {
      const invalid = await send(h.server, SET, {
        method: "POST",
        token: ACCOUNT_TOKEN,
        body: { chatwootBaseUrl: h.sim.url, chatwootAccountId: "5", chatwootApiToken: "x" },
      });
      expectError(invalid, 400, "invalid body: chatwootAccountId: must be an integer");
      const answer = await set(h);
      expect(answer.status, answer.body).toBe(201);
      const oversized = activateBody(h, { inboxName: "x".repeat(70 * 1024) });
      const big = await send(h.server, SET, { method: "POST", token: ACCOUNT_TOKEN, body: oversized });
      expectError(big, 413, "request body too large");
      // Streamed, the host parser cannot know the size in advance and parses it anyway: still refused.
      const streamed = await send(h.server, SET, {
        method: "POST",
        token: ACCOUNT_TOKEN,
        body: oversized,
        chunked: true,
      });
      expectError(streamed, 413, "request body too large");
      expect(h.sim.inboxes(h.accountId)).toHaveLength(1);
      return answer;
    },
  },
  ...statusCases,
];
