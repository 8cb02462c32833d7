import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ChatwootApi } from "../chatwoot/index.js";
import { isBridgeError } from "../errors/index.js";
import type { RouteCall } from "../http/routes.js";
import type { HttpRequest } from "../http/types.js";
import type { Integration, IntegrationRepository } from "../integrations/index.js";
import { silentLogger } from "../observability/index.js";
import { createWebhookRoute, railsJson } from "./webhook.js";

// Webhook receipt on its own, without a framework: the URL secret, the per-integration limit, the signature of
// Chatwoot 4.13+ and its time window, the signing secret read from the inbox and kept (mutation testing:
// docs/testing.md). More cases, through the HTTP handler and a memory store: webhook-route.test.ts.

const NOW_S = 1_900_000_000;
const URL_SECRET = "url-secret-0123456789";

function integration(patch: Partial<Integration> = {}): Integration {
  return {
    id: "int_w",
    instance: "inst",
    status: "active",
    version: 1,
    baseUrl: "https://cw.example.com",
    accountId: 7,
    apiToken: "api-token",
    webhookSecret: URL_SECRET,
    signingSecret: null,
    chatwootVersion: null,
    inboxId: 11,
    inboxName: "WhatsApp",
    chatwootUserId: 3,
    deliveryMode: "webhook",
    signMessages: false,
    ignoreGroups: false,
    startAsPending: false,
    reopenResolved: false,
    lastError: "",
    provisioningUntil: null,
    createdAt: new Date(0),
    updatedAt: new Date(0),
    ...patch,
  };
}

function setup(
  options: { rows?: Integration[]; inboxSecrets?: Array<string | null | Error>; perMinute?: number } = {},
) {
  const rows = new Map((options.rows ?? [integration()]).map((row) => [row.id, row]));
  const inboxSecrets = [...(options.inboxSecrets ?? [])];
  const inboxCalls: Array<{ target: unknown; inboxId: number; timeoutMs: number | undefined }> = [];
  let nowS = NOW_S;
  const accepted: Array<{ id: string; event: string; payload: unknown }> = [];
  const route = createWebhookRoute({
    integrations: {
      getById: async (id: string) => rows.get(id) ?? null,
      // The signing secret read from Chatwoot is kept (compare-and-set on the version).
      update: async (current: Integration, patch: Partial<Integration>) => {
        const row = rows.get(current.id);
        if (!row || row.version !== current.version) return null;
        const next = { ...row, ...patch, version: row.version + 1 };
        rows.set(row.id, next);
        return next;
      },
    } as unknown as IntegrationRepository,
    chatwoot: {
      getInbox: async (target: unknown, inboxId: number, call?: { timeoutMs?: number }) => {
        inboxCalls.push({ target, inboxId, timeoutMs: call?.timeoutMs });
        const next = inboxSecrets.length > 1 ? inboxSecrets.shift() : inboxSecrets[0];
        if (next instanceof Error) throw next;
        return next === undefined ? {} : { secret: next };
      },
    } as unknown as ChatwootApi,
    clock: { now: () => new Date(nowS * 1000) },
    logger: silentLogger,
    accept: async (target, event, payload) => {
      accepted.push({ id: target.id, event, payload });
    },
    ...(options.perMinute === undefined ? {} : { perMinute: options.perMinute }),
  });

  const call = (request: HttpRequest, params: Record<string, string>, secret: string | null) => ({
    request,
    params,
    headers: {},
    query: (name: string) => (name === "secret" && secret !== null ? secret : undefined),
  });

  /** access, then handle, as the HTTP dispatcher runs them; a refusal answers its code. */
  async function deliver(
    body: unknown,
    headers: Record<string, string> = {},
    { secret = URL_SECRET as string | null, id = "int_w", raw = true } = {},
  ): Promise<string | { status: number; body: unknown }> {
    const bytes = JSON.stringify(body);
    const request: HttpRequest = {
      method: "POST",
      path: `/api/chatwoot/webhook/${id}`,
      headers: { "content-type": "application/json", ...headers },
      ...(raw ? { rawBody: Buffer.from(bytes) } : { body }),
    };
    try {
      const base = call(request, { bridgeIntegrationId: id }, secret);
      const grant = await route.access(base as Omit<RouteCall, "grant">);
      const response = await route.handle({ ...base, grant } as RouteCall);
      return { status: response.status, body: JSON.parse(response.body ?? "null") };
    } catch (error) {
      if (isBridgeError(error)) return error.code;
      throw error;
    }
  }

  return {
    route,
    deliver,
    accepted,
    inboxCalls,
    rows,
    advance: (seconds: number) => {
      nowS += seconds;
    },
  };
}

const sign = (secret: string, timestamp: number | string, bytes: string) =>
  `sha256=${createHmac("sha256", secret).update(`${timestamp}.${bytes}`).digest("hex")}`;
const event = { event: "message_created", id: 5, content: "<hi> & bye" };
const signed = (
  secret: string,
  body: unknown = event,
  timestamp: number | string = NOW_S,
  bytes = JSON.stringify(body),
) => ({
  "x-chatwoot-signature": sign(secret, timestamp, bytes),
  "x-chatwoot-timestamp": String(timestamp),
});

describe("webhook route", () => {
  it("is POST webhook/:bridgeIntegrationId", () => {
    const t = setup();
    expect(t.route.path).toBe("webhook/:bridgeIntegrationId");
    expect(t.route.methods).toEqual(["POST"]);
  });

  it("queues an unsigned delivery with its event and answers at once", async () => {
    const t = setup();
    expect(await t.deliver(event)).toEqual({ status: 200, body: { received: true } });
    expect(t.accepted).toEqual([{ id: "int_w", event: "message_created", payload: event }]);
    expect(t.inboxCalls).toEqual([]);
  });

  it("answers a delivery without an event, or an empty one, without queueing anything", async () => {
    const t = setup();
    expect(await t.deliver({ id: 1 })).toEqual({ status: 200, body: { received: true } });
    expect(await t.deliver({ event: 42 })).toEqual({ status: 200, body: { received: true } });
    expect(await t.deliver(undefined, {}, { raw: false })).toEqual({ status: 200, body: { received: true } });
    expect(t.accepted).toEqual([]);
  });
});

describe("webhook access", () => {
  it("knows only provisioned integrations", async () => {
    const t = setup({
      rows: [
        integration({ id: "int_p", status: "provisioning", inboxId: null }),
        integration({ id: "int_w" }),
      ],
    });
    // The same answer as a wrong secret: nobody learns which integration ids exist.
    expect(await t.deliver(event, {}, { id: "int_missing" })).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, {}, { id: "int_p" })).toBe("WEBHOOK_SECRET_INVALID");
  });

  it("needs the URL secret of the integration", async () => {
    const t = setup({ rows: [integration(), integration({ id: "int_none", webhookSecret: null })] });
    expect(await t.deliver(event, {}, { secret: null })).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, {}, { secret: "" })).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, {}, { secret: `${URL_SECRET}x` })).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, {}, { secret: URL_SECRET.slice(1) })).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, {}, { id: "int_none", secret: "anything" })).toBe("WEBHOOK_SECRET_INVALID");
    expect(t.accepted).toEqual([]);
  });

  it("limits events other than messages per integration per minute (600 by default); messages never", async () => {
    const typing = { event: "conversation_typing_on" };
    const t = setup({ perMinute: 2, rows: [integration(), integration({ id: "int_b" })] });
    expect(await t.deliver(typing)).toMatchObject({ status: 200 });
    expect(await t.deliver(typing)).toMatchObject({ status: 200 });
    expect(await t.deliver(typing)).toBe("RATE_LIMITED");
    expect(await t.deliver({ id: 1 })).toBe("RATE_LIMITED");
    expect(await t.deliver(typing, {}, { id: "int_b" })).toMatchObject({ status: 200 });
    for (let i = 0; i < 10; i++) expect(await t.deliver(event)).toMatchObject({ status: 200 });

    const defaults = setup();
    for (let i = 0; i < 600; i++) expect(await defaults.deliver(typing)).toMatchObject({ status: 200 });
    expect(await defaults.deliver(typing)).toBe("RATE_LIMITED");
    expect(await defaults.deliver(event)).toMatchObject({ status: 200 });
  });
});

describe("webhook signatures (Chatwoot 4.13+)", () => {
  it("accept a delivery signed with the inbox secret over the exact bytes", async () => {
    const t = setup({ inboxSecrets: ["inbox-secret"] });
    expect(await t.deliver(event, signed("inbox-secret"))).toMatchObject({ status: 200 });
    expect(t.accepted).toHaveLength(1);
    expect(t.inboxCalls).toEqual([
      {
        target: { baseUrl: "https://cw.example.com", accountId: 7, apiToken: "api-token" },
        inboxId: 11,
        timeoutMs: 2_000,
      },
    ]);
  });

  it("tolerate spaces around the signature header", async () => {
    const t = setup({ inboxSecrets: ["inbox-secret"] });
    const headers = signed("inbox-secret");
    headers["x-chatwoot-signature"] = `  ${headers["x-chatwoot-signature"]} `;
    expect(await t.deliver(event, headers)).toMatchObject({ status: 200 });
  });

  it("refuse a wrong signature, and a signature over other bytes", async () => {
    const t = setup({ inboxSecrets: ["inbox-secret"] });
    expect(await t.deliver(event, signed("other-secret"))).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, signed("inbox-secret", event, NOW_S, "{}"))).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, { ...signed("inbox-secret"), "x-chatwoot-signature": "sha256=" })).toBe(
      "WEBHOOK_SECRET_INVALID",
    );
    expect(t.accepted).toEqual([]);
  });

  it("need a timestamp within five minutes either way", async () => {
    const t = setup({ inboxSecrets: ["inbox-secret"] });
    const { "x-chatwoot-signature": signature } = signed("inbox-secret");
    expect(await t.deliver(event, { "x-chatwoot-signature": signature })).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, signed("inbox-secret", event, "soon"))).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, signed("inbox-secret", event, NOW_S - 300))).toMatchObject({ status: 200 });
    expect(await t.deliver(event, signed("inbox-secret", event, NOW_S + 300))).toMatchObject({ status: 200 });
    expect(await t.deliver(event, signed("inbox-secret", event, NOW_S - 301))).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, signed("inbox-secret", event, NOW_S + 301))).toBe("WEBHOOK_SECRET_INVALID");
  });

  it("read the inbox secret when it is not known, keep it, and read it again (once a minute) when a signature does not match it (a rotated secret)", async () => {
    const t = setup({ inboxSecrets: ["first", "second"] });
    expect(await t.deliver(event, signed("first"))).toMatchObject({ status: 200 });
    expect(t.rows.get("int_w")?.signingSecret).toBe("first");
    expect(await t.deliver(event, signed("first"))).toMatchObject({ status: 200 });
    expect(t.inboxCalls).toHaveLength(1);
    // Within the minute of the last read, a signature that does not match is refused without asking Chatwoot again.
    expect(await t.deliver(event, signed("second"))).toBe("WEBHOOK_SECRET_INVALID");
    expect(t.inboxCalls).toHaveLength(1);
    t.advance(61);
    expect(await t.deliver(event, signed("second", event, NOW_S + 61))).toMatchObject({ status: 200 });
    expect(t.inboxCalls).toHaveLength(2);
    expect(t.rows.get("int_w")?.signingSecret).toBe("second");
    expect(await t.deliver(event, signed("second", event, NOW_S + 61))).toMatchObject({ status: 200 });
    expect(await t.deliver(event, signed("first", event, NOW_S + 61))).toBe("WEBHOOK_SECRET_INVALID");
    expect(t.inboxCalls).toHaveLength(2);
  });

  it("refuse a signed delivery when the inbox has no signing secret to check it with (fail closed)", async () => {
    const t = setup({ inboxSecrets: [null] });
    expect(await t.deliver(event, signed("whatever"))).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, signed("whatever"))).toBe("WEBHOOK_SECRET_INVALID");
    expect(t.inboxCalls).toHaveLength(1);
    // Unsigned, as Chatwoot before 4.13 sends it: the URL secret decides.
    expect(await t.deliver(event)).toMatchObject({ status: 200 });
    expect(t.accepted).toHaveLength(1);
  });

  it("refuse when the inbox cannot be read (fail closed), and read it again after the interval", async () => {
    const t = setup({ inboxSecrets: [new Error("Chatwoot down"), "inbox-secret"] });
    expect(await t.deliver(event, signed("inbox-secret"))).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, signed("inbox-secret"))).toBe("WEBHOOK_SECRET_INVALID");
    expect(t.inboxCalls).toHaveLength(1);
    t.advance(61);
    expect(await t.deliver(event, signed("inbox-secret", event, NOW_S + 61))).toMatchObject({ status: 200 });
    expect(t.inboxCalls).toHaveLength(2);
  });

  it("require a signature once the inbox has a secret, or Chatwoot is 4.13 or later", async () => {
    const t = setup({
      rows: [
        integration({ signingSecret: "inbox-secret" }),
        integration({ id: "int_413", chatwootVersion: "4.13.0" }),
        integration({ id: "int_412", chatwootVersion: "4.12.1" }),
      ],
    });
    expect(await t.deliver(event)).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, {}, { id: "int_413" })).toBe("WEBHOOK_SECRET_INVALID");
    expect(await t.deliver(event, {}, { id: "int_412" })).toMatchObject({ status: 200 });
    expect(await t.deliver(event, signed("inbox-secret"))).toMatchObject({ status: 200 });
    expect(t.inboxCalls).toEqual([]);
  });

  it("check a body a host parser kept no bytes of against Rails' encoding and plain JSON", async () => {
    const t = setup({ inboxSecrets: ["inbox-secret"] });
    const rails = railsJson(event);
    expect(rails).not.toBe(JSON.stringify(event));
    expect(await t.deliver(event, signed("inbox-secret", event, NOW_S, rails), { raw: false })).toMatchObject(
      {
        status: 200,
      },
    );
    expect(await t.deliver(event, signed("inbox-secret"), { raw: false })).toMatchObject({ status: 200 });
    const plain = { event: "message_created", content: "plain" };
    expect(await t.deliver(plain, signed("inbox-secret", plain), { raw: false })).toMatchObject({
      status: 200,
    });
    expect(await t.deliver(plain, signed("inbox-secret", plain, NOW_S, "{}"), { raw: false })).toBe(
      "WEBHOOK_SECRET_INVALID",
    );
    // With its bytes, only those bytes count.
    expect(await t.deliver(event, signed("inbox-secret", event, NOW_S, rails))).toBe(
      "WEBHOOK_SECRET_INVALID",
    );
  });
});
