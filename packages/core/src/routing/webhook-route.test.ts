import { createHmac, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { ChatwootApi, ChatwootInbox } from "../chatwoot/api.js";
import { ChatwootRequestError } from "../chatwoot/failure.js";
import { createKeyring } from "../crypto/index.js";
import { createHttpHandler } from "../http/handler.js";
import type { HttpRequest } from "../http/types.js";
import { createIntegrationRepository, type Integration } from "../integrations/index.js";
import { silentLogger } from "../observability/index.js";
import { createMemoryStore } from "../store/memory.js";
import { createWebhookRoute, type WebhookRouteOptions } from "./webhook.js";

// The webhook route's guards (docs/http-api.md, webhook receiver), against a memory store and a hand-driven clock:
// - the URL secret first, one answer (401 `invalid webhook secret`) for an unknown integration and a wrong secret, and
//   failed attempts counted per client address (429 past the limit, without reading the store);
// - Chatwoot 4.13's signature (`lib/webhooks/trigger.rb`: `X-Chatwoot-Signature: sha256=HMAC-SHA256(channel_api.secret,
//   "<X-Chatwoot-Timestamp>.<raw body>")`) required whenever the inbox has a secret, fail closed, with one rate-limited
//   re-read of the inbox when the secret was rotated (`POST …/inboxes/:id/reset_secret`, 4.13.0);
// - `X-Chatwoot-Delivery` (4.12.0+, fixed when Chatwoot queues the job): a redelivery is answered and not processed;
// - message events are never answered 429 (Chatwoot marks the message failed on any non-2xx: webhook_job.rb,
//   `handle_error`); the per-integration limit counts the other events.

const START = Date.UTC(2030, 0, 1, 12);
const URL_SECRET = "url-secret-0123456789abcdefghijklmnopqrstuv";
const INBOX_SECRET = "inboxSecret4p13aaaaaaaaaa";
const ROTATED = "rotatedSecret4p13bbbbbbbb";

interface Setup {
  handle(
    request: Partial<HttpRequest> & { body?: unknown },
  ): Promise<{ status: number; body: unknown; headers: Record<string, string> }>;
  integration: Integration;
  accepted: Array<{ event: string; payload: unknown }>;
  /** Store reads of the route (getById). */
  reads: () => number;
  /** GET inbox calls to Chatwoot. */
  inboxReads: () => number;
  advance(ms: number): void;
  setInboxSecret(secret: string | null | Error): void;
  stored(): Promise<Integration | null>;
  rawRow(): Record<string, unknown> | undefined;
  path: string;
}

let now = START;

async function setup(
  integrationPatch: Partial<Integration> = {},
  options: Partial<WebhookRouteOptions> = {},
): Promise<Setup> {
  now = START;
  const clock = { now: () => new Date(now) };
  const store = createMemoryStore();
  let reads = 0;
  const counted = {
    ...store.integrations,
    getById: (id: string) => {
      reads++;
      return store.integrations.getById(id);
    },
  };
  const cipher = createKeyring({ current: { id: "k1", key: randomBytes(32).toString("base64") } });
  const integrations = createIntegrationRepository(counted, cipher, clock);
  const inserted = await integrations.insert({
    id: `int_${randomBytes(9).toString("base64url")}`,
    instance: "suporte",
    status: "provisioning",
    baseUrl: "https://chatwoot.example.test",
    accountId: 1,
    apiToken: "admin-token",
    webhookSecret: URL_SECRET,
    inboxId: null,
    inboxName: "WhatsApp",
    chatwootUserId: 1,
    deliveryMode: "webhook",
    signMessages: false,
    ignoreGroups: false,
    startAsPending: false,
    reopenResolved: false,
    lastError: "",
    provisioningUntil: null,
  });
  const integration = (await integrations.update(inserted!, {
    status: "active",
    inboxId: 7,
    signingSecret: INBOX_SECRET,
    chatwootVersion: "4.13.0",
    ...integrationPatch,
  }))!;
  let inboxSecret: string | null | Error = INBOX_SECRET;
  let inboxReads = 0;
  const chatwoot = {
    async getInbox(_target: unknown, inboxId: number): Promise<ChatwootInbox> {
      inboxReads++;
      if (inboxSecret instanceof Error) throw inboxSecret;
      return { id: inboxId, name: "WhatsApp", ...(inboxSecret === null ? {} : { secret: inboxSecret }) };
    },
  } as unknown as ChatwootApi;
  const accepted: Array<{ event: string; payload: unknown }> = [];
  const route = createWebhookRoute({
    integrations,
    chatwoot,
    clock,
    logger: silentLogger,
    accept: async (_integration, event, payload) => {
      accepted.push({ event, payload });
    },
    ...options,
  });
  const http = createHttpHandler({
    enabled: true,
    prefix: "/api/chatwoot",
    routes: [route],
    logger: silentLogger,
  });
  const path = `/api/chatwoot/webhook/${integration.id}`;
  return {
    integration,
    accepted,
    path,
    reads: () => reads,
    inboxReads: () => inboxReads,
    advance(ms) {
      now += ms;
    },
    setInboxSecret(secret) {
      inboxSecret = secret;
    },
    stored: () => integrations.getById(integration.id),
    rawRow: () => store.raw.integrations.get(integration.id) as Record<string, unknown> | undefined,
    async handle(request) {
      const answer = await http.handle({
        method: "POST",
        path: `${path}?secret=${encodeURIComponent(URL_SECRET)}`,
        headers: { "content-type": "application/json" },
        ...request,
      });
      return { status: answer!.status, body: JSON.parse(answer!.body!), headers: answer!.headers };
    },
  };
}

afterEach(() => {
  now = START;
});

const seconds = () => String(Math.floor(now / 1000));
const sign = (secret: string, timestamp: string, body: string) =>
  `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
/** A delivery as Chatwoot sends it: the raw body, signed with `secret` (none: unsigned), and a delivery id. */
function delivery(
  payload: Record<string, unknown>,
  options: { secret?: string | null; timestamp?: string; deliveryId?: string; remoteAddress?: string } = {},
): Partial<HttpRequest> {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { "content-type": "application/json" };
  const secret = options.secret === undefined ? INBOX_SECRET : options.secret;
  if (secret !== null) {
    const timestamp = options.timestamp ?? seconds();
    headers["x-chatwoot-timestamp"] = timestamp;
    headers["x-chatwoot-signature"] = sign(secret, timestamp, body);
  }
  if (options.deliveryId) headers["x-chatwoot-delivery"] = options.deliveryId;
  return {
    headers,
    rawBody: body,
    ...(options.remoteAddress === undefined ? {} : { remoteAddress: options.remoteAddress }),
  };
}
const typing = { event: "conversation_typing_on" };
const message = (id: number) => ({
  event: "message_created",
  id,
  content: `m${id}`,
  message_type: "incoming",
});
const INVALID = { success: false, error: { message: "invalid webhook secret" } };
const LIMITED = { success: false, error: { message: "Rate limit exceeded. Try again later." } };

describe("the URL secret comes first", () => {
  it("answers an unknown integration exactly like a wrong secret: 401 invalid webhook secret", async () => {
    const s = await setup();
    const unknown = await s.handle({
      path: `/api/chatwoot/webhook/int_doesnotexist000?secret=${URL_SECRET}`,
      ...delivery(typing),
    });
    const wrong = await s.handle({ path: `${s.path}?secret=not-it`, ...delivery(typing) });
    const missing = await s.handle({ path: s.path, ...delivery(typing) });
    for (const answer of [unknown, wrong, missing]) {
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual(INVALID);
    }
    expect(unknown.headers).toEqual(wrong.headers);
    expect(s.accepted).toEqual([]);
  });

  it("counts failed attempts per client address and answers 429 past the limit, without reading the store", async () => {
    const s = await setup({}, { failedAttempts: { limit: 5, windowMs: 60_000 } });
    const attacker = "203.0.113.9";
    for (let i = 0; i < 5; i++) {
      const answer = await s.handle({
        path: `${s.path}?secret=guess-${i}`,
        ...delivery(typing, { remoteAddress: attacker }),
      });
      expect(answer.status, `attempt ${i + 1}`).toBe(401);
    }
    const readsBefore = s.reads();
    for (let i = 0; i < 50; i++) {
      const answer = await s.handle({
        path: `/api/chatwoot/webhook/int_random${i}?secret=guess`,
        ...delivery(typing, { remoteAddress: attacker }),
      });
      expect(answer.status).toBe(429);
      expect(answer.body).toEqual(LIMITED);
      expect(Number(answer.headers["retry-after"])).toBeGreaterThan(0);
    }
    // The flood past the limit read nothing and opened nothing.
    expect(s.reads()).toBe(readsBefore);
    // Another address is not affected; the attacker's window ends.
    expect((await s.handle(delivery(typing, { remoteAddress: "198.51.100.7" }))).status).toBe(200);
    s.advance(60_001);
    expect(
      (await s.handle({ path: `${s.path}?secret=guess`, ...delivery(typing, { remoteAddress: attacker }) }))
        .status,
    ).toBe(401);
  });

  it("does not lock out a Chatwoot whose secret was verified, when the same address also fails (a stale inbox)", async () => {
    const s = await setup({}, { failedAttempts: { limit: 3, windowMs: 60_000 } });
    const chatwoot = "192.0.2.10";
    expect((await s.handle(delivery(message(1), { remoteAddress: chatwoot }))).status).toBe(200);
    // An inbox of a deactivated integration on the same Chatwoot keeps posting to its old URL.
    for (let i = 0; i < 10; i++) {
      await s.handle({
        path: `/api/chatwoot/webhook/int_deactivated000?secret=old`,
        ...delivery(message(100 + i), { remoteAddress: chatwoot }),
      });
    }
    const answer = await s.handle(delivery(message(2), { remoteAddress: chatwoot }));
    expect(answer.status).toBe(200);
    expect(s.accepted.map((entry) => (entry.payload as { id: number }).id)).toEqual([1, 2]);
  });
});

describe("Chatwoot 4.13 signatures", () => {
  it("accepts a delivery signed with the inbox secret over the raw bytes", async () => {
    const s = await setup();
    const answer = await s.handle(delivery(message(1)));
    expect(answer).toMatchObject({ status: 200, body: { received: true } });
    expect(s.accepted).toHaveLength(1);
    expect(s.inboxReads()).toBe(0);
  });

  it("refuses, when the inbox has a secret, a delivery without signature, with a bad one, or with a stale timestamp", async () => {
    const s = await setup();
    const stale = String(Math.floor(now / 1000) - 5 * 60 - 1);
    const future = String(Math.floor(now / 1000) + 5 * 60 + 1);
    const unsigned = delivery(message(1), { secret: null });
    const noTimestamp = delivery(message(1));
    delete (noTimestamp.headers as Record<string, string>)["x-chatwoot-timestamp"];
    for (const [what, request] of [
      ["no signature", unsigned],
      ["no timestamp", noTimestamp],
      ["another secret", delivery(message(1), { secret: "not-the-inbox-secret" })],
      ["stale timestamp", delivery(message(1), { timestamp: stale })],
      ["timestamp in the future", delivery(message(1), { timestamp: future })],
      [
        "not hex",
        {
          ...unsigned,
          headers: {
            ...unsigned.headers,
            "x-chatwoot-timestamp": seconds(),
            "x-chatwoot-signature": "sha256=zz",
          },
        },
      ],
    ] as const) {
      const answer = await s.handle(request);
      expect(answer.status, what).toBe(401);
      expect(answer.body).toEqual(INVALID);
    }
    expect(s.accepted).toEqual([]);
    // A stale or unsigned delivery never made us call Chatwoot; a bad signature re-read the inbox once.
    expect(s.inboxReads()).toBe(1);
  });

  it("re-reads a rotated secret once, stores it sealed and accepts; the old secret is refused from then on", async () => {
    const s = await setup();
    s.setInboxSecret(ROTATED);
    const answer = await s.handle(delivery(message(1), { secret: ROTATED }));
    expect(answer.status).toBe(200);
    expect(s.inboxReads()).toBe(1);
    expect((await s.stored())?.signingSecret).toBe(ROTATED);
    const raw = s.rawRow()!;
    expect(raw["signingSecret"]).toMatch(/^cw1:k1:/);
    expect(JSON.stringify(raw)).not.toContain(ROTATED);
    expect((await s.handle(delivery(message(2), { secret: ROTATED }))).status).toBe(200);
    expect(s.inboxReads()).toBe(1);
    expect((await s.handle(delivery(message(3), { secret: INBOX_SECRET }))).status).toBe(401);
  });

  it("re-reads at most once per interval: a flood of bad signatures costs Chatwoot one call", async () => {
    const s = await setup({}, { secretRereadIntervalMs: 60_000 });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.handle(delivery(message(i), { secret: `wrong-${i}` }))),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(401));
    expect(s.inboxReads()).toBe(1);
    s.advance(30_000);
    expect((await s.handle(delivery(message(99), { secret: "wrong" }))).status).toBe(401);
    expect(s.inboxReads()).toBe(1);
    s.advance(30_001);
    s.setInboxSecret(ROTATED);
    expect((await s.handle(delivery(message(100), { secret: ROTATED }))).status).toBe(200);
    expect(s.inboxReads()).toBe(2);
  });

  it("fails closed when the secret cannot be read: a failed re-read refuses", async () => {
    const s = await setup();
    s.setInboxSecret(
      new ChatwootRequestError({
        kind: "transport",
        method: "GET",
        url: "https://chatwoot.example.test",
        cause: "ECONNREFUSED",
      }),
    );
    expect((await s.handle(delivery(message(1), { secret: ROTATED }))).status).toBe(401);
    expect((await s.stored())?.signingSecret).toBe(INBOX_SECRET);
    expect(s.accepted).toEqual([]);
  });

  it("Chatwoot 4.13 without a stored secret (not readable at activation): unsigned is refused, a signed delivery is verified after a read", async () => {
    const s = await setup({ signingSecret: null, chatwootVersion: "4.13.0" });
    s.setInboxSecret(new Error("timeout"));
    expect((await s.handle(delivery(message(1), { secret: null }))).status).toBe(401);
    expect((await s.handle(delivery(message(2)))).status).toBe(401);
    s.advance(60_001);
    s.setInboxSecret(INBOX_SECRET);
    expect((await s.handle(delivery(message(3)))).status).toBe(200);
    expect((await s.stored())?.signingSecret).toBe(INBOX_SECRET);
    expect((await s.handle(delivery(message(4), { secret: null }))).status).toBe(401);
    expect(s.accepted.map((entry) => (entry.payload as { id: number }).id)).toEqual([3]);
  });

  it("Chatwoot before 4.13 sends no signature: the URL secret authenticates; a first signed delivery (an upgrade) makes the secret required", async () => {
    const s = await setup({ signingSecret: null, chatwootVersion: "4.10.0" });
    expect((await s.handle(delivery(message(1), { secret: null }))).status).toBe(200);
    expect(s.inboxReads()).toBe(0);
    // Chatwoot was upgraded to 4.13: the inbox has a secret now.
    expect((await s.handle(delivery(message(2)))).status).toBe(200);
    expect(s.inboxReads()).toBe(1);
    expect((await s.stored())?.signingSecret).toBe(INBOX_SECRET);
    expect((await s.handle(delivery(message(3), { secret: null }))).status).toBe(401);
  });

  it("an unknown version without a stored secret accepts unsigned deliveries (as before 4.13)", async () => {
    const s = await setup({ signingSecret: null, chatwootVersion: null });
    expect((await s.handle(delivery(message(1), { secret: null }))).status).toBe(200);
    expect(s.inboxReads()).toBe(0);
  });
});

describe("X-Chatwoot-Delivery (4.12+)", () => {
  it("answers a redelivery 200 without processing it twice; another delivery id is processed", async () => {
    const s = await setup();
    const id = "0b5c7f0e-3f0e-4c8e-9d55-6f1d8c1f2a10";
    const first = await s.handle(delivery(message(1), { deliveryId: id }));
    s.advance(3_000);
    // A retried job keeps the delivery id; its timestamp and signature are computed again.
    const again = await s.handle(delivery(message(1), { deliveryId: id }));
    const other = await s.handle(
      delivery(message(1), { deliveryId: "7d1c6e1a-0000-4000-8000-000000000001" }),
    );
    expect([first.status, again.status, other.status]).toEqual([200, 200, 200]);
    expect(again.body).toEqual({ received: true });
    expect(s.accepted).toHaveLength(2);
  });

  it("concurrent copies are processed once", async () => {
    const s = await setup({ signingSecret: null, chatwootVersion: "4.12.1" });
    const id = "11111111-2222-4333-8444-555555555555";
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => s.handle(delivery(message(1), { secret: null, deliveryId: id }))),
    );
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
    expect(s.accepted).toHaveLength(1);
  });

  it("keeps a bounded number of delivery ids", async () => {
    const s = await setup({}, { deliveries: { max: 3, ttlMs: 600_000 } });
    for (const n of [1, 2, 3, 4]) await s.handle(delivery(message(n), { deliveryId: `d-${n}` }));
    // d-1 was forgotten (the oldest of four); d-4 is still known.
    await s.handle(delivery(message(1), { deliveryId: "d-1" }));
    await s.handle(delivery(message(4), { deliveryId: "d-4" }));
    expect(s.accepted.map((entry) => (entry.payload as { id: number }).id)).toEqual([1, 2, 3, 4, 1]);
  });
});

describe("the per-integration limit", () => {
  it("never answers 429 to a message event; other events are limited", async () => {
    const s = await setup({}, { perMinute: 5 });
    const messages = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        s.handle(delivery(i % 2 ? message(i) : { ...message(i), event: "message_updated" })),
      ),
    );
    expect(messages.map((answer) => answer.status)).toEqual(Array(50).fill(200));
    const others = [];
    for (let i = 0; i < 8; i++) others.push((await s.handle(delivery(typing))).status);
    expect(others).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const limited = await s.handle(delivery({ event: "conversation_updated" }));
    expect(limited.body).toEqual(LIMITED);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    s.advance(60_001);
    expect((await s.handle(delivery(typing))).status).toBe(200);
  });
});
