import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ChatwootApi } from "../chatwoot/index.js";
import { createHttpHandler } from "../http/handler.js";
import type { HttpRequest } from "../http/types.js";
import type { Integration, IntegrationRepository } from "../integrations/index.js";
import type { Logger } from "../observability/index.js";
import { createWebhookRoute, railsJson, type WebhookRouteOptions } from "./webhook.js";

// Edges of the webhook route (docs/http-api.md, "POST /api/chatwoot/webhook/:bridgeIntegrationId") found by mutation
// testing (docs/testing.md, "Mutation report"), through the HTTP handler with a hand-driven clock, a map-backed
// integration store (compare-and-set on `version`, as the real repository), a stub Chatwoot inbox and a logger that
// keeps its lines:
// - the URL secret: a missing secret never reads the store; the per-address failure window (its exact end, the
//   `Retry-After` seconds, the 10,000 addresses kept, oldest window dropped first); the verified-secret cache (kept
//   24 h, revoked when the secret stops working, never revoked by someone else's wrong guesses, bounded);
// - Chatwoot 4.13 signatures (`lib/webhooks/trigger.rb`): the timestamp's format, an inbox showing an empty
//   `secret`, the logs and store writes when a rotated secret is read and kept (one retry on a write conflict);
// - `X-Chatwoot-Delivery`: trimmed, forgotten after its time, and forgotten when queueing failed (a redelivery is
//   then processed);
// - the dotted message event names (`message.created`, `message.updated`) are never limited either.
// Cases through the memory store: webhook-route.test.ts; the route alone: webhook-receipt.test.ts.

const START = Date.UTC(2030, 0, 1, 12);
const URL_SECRET = "url-secret-0123456789abcdefghijklmnopqrstuv";
const INBOX_SECRET = "inboxSecret4p13aaaaaaaaaa";
const ROTATED = "rotatedSecret4p13bbbbbbbb";
const INVALID = { success: false, error: { message: "invalid webhook secret" } };
const LIMITED = { success: false, error: { message: "Rate limit exceeded. Try again later." } };

function integration(patch: Partial<Integration> = {}): Integration {
  return {
    id: "int_w",
    instance: "suporte",
    status: "active",
    version: 1,
    baseUrl: "https://chatwoot.example.test",
    accountId: 1,
    apiToken: "admin-token",
    webhookSecret: URL_SECRET,
    signingSecret: null,
    chatwootVersion: null,
    inboxId: 7,
    inboxName: "WhatsApp",
    chatwootUserId: 1,
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

interface Post {
  id?: string;
  /** The URL secret; null: no `?secret`. */
  secret?: string | null;
  /** Signs the body with this inbox secret (Chatwoot 4.13+); none: unsigned. */
  signWith?: string;
  timestamp?: string;
  headers?: Record<string, string>;
  deliveryId?: string;
  remoteAddress?: string;
}

function setup(rows: Integration[] = [integration()], options: Partial<WebhookRouteOptions> = {}) {
  let now = START;
  const store = new Map(rows.map((row) => [row.id, row]));
  const counts = { reads: 0, updates: 0, inboxReads: 0 };
  const hooks: {
    storeDown: boolean;
    /** Runs before each compare-and-set write (another process writing the row meanwhile). */
    beforeUpdate: ((row: Integration) => void) | null;
    updateFails: Error | null;
    inboxSecret: string | null | Error;
    accept: (event: string, payload: unknown) => Promise<void>;
  } = {
    storeDown: false,
    beforeUpdate: null,
    updateFails: null,
    inboxSecret: INBOX_SECRET,
    accept: async () => {},
  };
  const logs: Array<{ level: string; obj: Record<string, unknown>; msg: string | undefined }> = [];
  const logger: Logger = {
    debug: (obj, msg) => logs.push({ level: "debug", obj: obj as Record<string, unknown>, msg }),
    info: (obj, msg) => logs.push({ level: "info", obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => logs.push({ level: "warn", obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => logs.push({ level: "error", obj: obj as Record<string, unknown>, msg }),
  };
  const accepted: Array<{ id: string; event: string; payload: unknown }> = [];
  const integrations = {
    getById: async (id: string) => {
      counts.reads++;
      if (hooks.storeDown) throw new Error("store unavailable");
      return store.get(id) ?? null;
    },
    update: async (current: Integration, patch: Partial<Integration>) => {
      counts.updates++;
      if (hooks.updateFails) throw hooks.updateFails;
      const before = store.get(current.id);
      if (before && hooks.beforeUpdate) hooks.beforeUpdate(before);
      const row = store.get(current.id);
      if (!row || row.version !== current.version) return null;
      const next = { ...row, ...patch, version: row.version + 1 };
      store.set(row.id, next);
      return next;
    },
  } as unknown as IntegrationRepository;
  const chatwoot = {
    getInbox: async (_target: unknown, inboxId: number) => {
      counts.inboxReads++;
      const secret = hooks.inboxSecret;
      if (secret instanceof Error) throw secret;
      return { id: inboxId, name: "WhatsApp", ...(secret === null ? {} : { secret }) };
    },
  } as unknown as ChatwootApi;
  const route = createWebhookRoute({
    integrations,
    chatwoot,
    clock: { now: () => new Date(now) },
    logger,
    accept: async (target, event, payload) => {
      await hooks.accept(event, payload);
      accepted.push({ id: target.id, event, payload });
    },
    ...options,
  });
  const http = createHttpHandler({ enabled: true, prefix: "/api/chatwoot", routes: [route], logger });

  async function post(payload: unknown, o: Post = {}) {
    const body = JSON.stringify(payload);
    const headers: Record<string, string> = { "content-type": "application/json", ...o.headers };
    if (o.signWith !== undefined) {
      const timestamp = o.timestamp ?? String(Math.floor(now / 1000));
      headers["x-chatwoot-timestamp"] ??= timestamp;
      headers["x-chatwoot-signature"] = `sha256=${createHmac("sha256", o.signWith)
        .update(`${timestamp}.${body}`)
        .digest("hex")}`;
    }
    if (o.deliveryId !== undefined) headers["x-chatwoot-delivery"] = o.deliveryId;
    const secret = o.secret === undefined ? URL_SECRET : o.secret;
    const request: HttpRequest = {
      method: "POST",
      path: `/api/chatwoot/webhook/${o.id ?? "int_w"}${secret === null ? "" : `?secret=${encodeURIComponent(secret)}`}`,
      headers,
      rawBody: body,
      ...(o.remoteAddress === undefined ? {} : { remoteAddress: o.remoteAddress }),
    };
    const answer = await http.handle(request);
    return { status: answer!.status, body: JSON.parse(answer!.body!) as unknown, headers: answer!.headers };
  }

  return {
    post,
    store,
    counts,
    hooks,
    logs,
    accepted,
    advance(ms: number) {
      now += ms;
    },
  };
}

const typing = { event: "conversation_typing_on" };
const message = (id: number, event = "message_created") => ({
  event,
  id,
  content: `m${id}`,
  message_type: "incoming",
});
const ids = (accepted: Array<{ payload: unknown }>) =>
  accepted.map((entry) => (entry.payload as { id: number }).id);

describe("the URL secret", () => {
  it("a request without ?secret is refused without reading the store: 401 even while the store is down", async () => {
    const s = setup();
    s.hooks.storeDown = true;
    const missing = await s.post(message(1), { secret: null });
    const empty = await s.post(message(1), { secret: "" });
    expect([missing, empty].map((answer) => [answer.status, answer.body])).toEqual([
      [401, INVALID],
      [401, INVALID],
    ]);
    expect(s.counts.reads).toBe(0);
    // A secret to check needs the store: a local failure (500), as on every route.
    expect((await s.post(message(1), { secret: "a-guess" })).status).toBe(500);
    expect(s.counts.reads).toBe(1);
  });

  it("Retry-After counts down the seconds left, and the window ends exactly windowMs after the first failure", async () => {
    const s = setup([integration()], { failedAttempts: { limit: 2, windowMs: 60_000 } });
    const attacker = { secret: "guess", remoteAddress: "203.0.113.9" };
    expect((await s.post(typing, attacker)).status).toBe(401);
    expect((await s.post(typing, attacker)).status).toBe(401);
    const first = await s.post(typing, attacker);
    expect([first.status, first.body, first.headers["retry-after"]]).toEqual([429, LIMITED, "60"]);
    s.advance(30_500);
    expect((await s.post(typing, attacker)).headers["retry-after"]).toBe("30");
    s.advance(28_501); // 59,001 ms after the first failure: less than a second left
    expect((await s.post(typing, attacker)).headers["retry-after"]).toBe("1");
    s.advance(999); // exactly 60 s: a new window
    expect((await s.post(typing, attacker)).status).toBe(401);
    expect((await s.post(typing, attacker)).status).toBe(401);
    expect((await s.post(typing, attacker)).status).toBe(429);
  });

  it("another address failing does not lift an address's block", async () => {
    const s = setup([integration()], { failedAttempts: { limit: 2, windowMs: 60_000 } });
    for (let i = 0; i < 2; i++) await s.post(typing, { secret: "guess", remoteAddress: "203.0.113.9" });
    expect((await s.post(typing, { secret: "guess", remoteAddress: "198.51.100.1" })).status).toBe(401);
    expect((await s.post(typing, { secret: "guess", remoteAddress: "198.51.100.2" })).status).toBe(401);
    expect((await s.post(message(1), { remoteAddress: "203.0.113.9" })).status).toBe(429);
  });

  it("keeps the windows of 10,000 addresses: the 10,001st address pushes out the oldest window", async () => {
    const s = setup([integration()], { failedAttempts: { limit: 1, windowMs: 600_000 } });
    expect((await s.post(typing, { secret: null, remoteAddress: "first" })).status).toBe(401);
    for (let i = 1; i < 10_000; i++) await s.post(typing, { secret: null, remoteAddress: `a${i}` });
    // 10,000 addresses known: the first one is still blocked.
    expect((await s.post(typing, { secret: null, remoteAddress: "first" })).status).toBe(429);
    await s.post(typing, { secret: null, remoteAddress: "a10000" });
    expect((await s.post(typing, { secret: null, remoteAddress: "first" })).status).toBe(401);
  });

  it("an address whose window ended starts a new one, kept as the newest of the 10,000", async () => {
    const s = setup([integration()], { failedAttempts: { limit: 1, windowMs: 60_000 } });
    await s.post(typing, { secret: null, remoteAddress: "again" });
    s.advance(30_000);
    await s.post(typing, { secret: null, remoteAddress: "other" });
    s.advance(30_000); // the first window of "again" ends; "other" still has 30 s
    expect((await s.post(typing, { secret: null, remoteAddress: "again" })).status).toBe(401);
    for (let i = 0; i < 9_999; i++) await s.post(typing, { secret: null, remoteAddress: `a${i}` });
    // The 10,001st window pushed out the oldest one, "other"'s, not the newer window of "again".
    expect((await s.post(typing, { secret: null, remoteAddress: "again" })).status).toBe(429);
    expect((await s.post(typing, { secret: null, remoteAddress: "other" })).status).toBe(401);
  });
});

describe("a verified URL secret passes a blocked address", () => {
  const chatwoot = "192.0.2.10";
  /** `n` failed attempts from Chatwoot's address: an old URL (a deactivated integration's), or a wrong secret. */
  async function failures(s: ReturnType<typeof setup>, n: number, id = "int_gone") {
    for (let i = 0; i < n; i++) {
      await s.post(message(100 + i), { id, secret: "old", remoteAddress: chatwoot });
    }
  }

  it("for a day: an hour after the last verified delivery yes, 24 hours after it no", async () => {
    const s = setup([integration()], { failedAttempts: { limit: 3, windowMs: 60_000 } });
    expect((await s.post(message(1), { remoteAddress: chatwoot })).status).toBe(200);
    s.advance(60 * 60_000);
    await failures(s, 3);
    expect((await s.post(message(2), { remoteAddress: chatwoot })).status).toBe(200);

    const later = setup([integration()], { failedAttempts: { limit: 3, windowMs: 60_000 } });
    expect((await later.post(message(1), { remoteAddress: chatwoot })).status).toBe(200);
    later.advance(24 * 60 * 60_000);
    await failures(later, 3);
    const answer = await later.post(message(2), { remoteAddress: chatwoot });
    expect(answer.status).toBe(429);
    expect(ids(later.accepted)).toEqual([1]);
  });

  it("wrong secrets sent for the same integration id do not revoke it", async () => {
    const s = setup([integration()], { failedAttempts: { limit: 3, windowMs: 60_000 } });
    expect((await s.post(message(1), { remoteAddress: chatwoot })).status).toBe(200);
    await failures(s, 5, "int_w");
    expect((await s.post(message(2), { secret: "old", remoteAddress: chatwoot })).status).toBe(429);
    expect((await s.post(message(3), { remoteAddress: chatwoot })).status).toBe(200);
    expect(ids(s.accepted)).toEqual([1, 3]);
  });

  it("until it stops working (the URL secret changed): then the blocked address gets 429 without a store read", async () => {
    const s = setup([integration()], { failedAttempts: { limit: 3, windowMs: 60_000 } });
    expect((await s.post(message(1), { remoteAddress: chatwoot })).status).toBe(200);
    await failures(s, 3);
    s.store.set("int_w", { ...s.store.get("int_w")!, webhookSecret: "a-new-url-secret", version: 2 });
    const reads = s.counts.reads;
    expect((await s.post(message(2), { remoteAddress: chatwoot })).status).toBe(401);
    expect(s.counts.reads).toBe(reads + 1);
    const again = await s.post(message(3), { remoteAddress: chatwoot });
    expect([again.status, again.body]).toEqual([429, LIMITED]);
    expect(s.counts.reads).toBe(reads + 1);
    expect(ids(s.accepted)).toEqual([1]);
  });

  it("verifying an integration again, with 10,000 kept, pushes none of the others out", async () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => integration({ id: `int_${i}` }));
    const s = setup(rows, { failedAttempts: { limit: 1, windowMs: 60_000 } });
    for (let i = 0; i < 10_000; i++) await s.post(message(i), { id: `int_${i}`, remoteAddress: chatwoot });
    expect((await s.post(message(10_001), { id: "int_1", remoteAddress: chatwoot })).status).toBe(200);
    await failures(s, 1);
    expect((await s.post(message(10_002), { id: "int_0", remoteAddress: chatwoot })).status).toBe(200);
    expect((await s.post(message(10_003), { id: "int_9999", remoteAddress: chatwoot })).status).toBe(200);
  }, 30_000);
});

describe("Chatwoot 4.13 signatures", () => {
  const signedRow = integration({ signingSecret: INBOX_SECRET, chatwootVersion: "4.13.0" });

  it("the timestamp is plain digits: a signature over `+<seconds>`, `<seconds>.0` or hex is refused", async () => {
    const s = setup([signedRow]);
    const seconds = Math.floor(START / 1000);
    for (const timestamp of [`+${seconds}`, `${seconds}.0`, `${seconds}e0`, `0x${seconds.toString(16)}`]) {
      const answer = await s.post(message(1), { signWith: INBOX_SECRET, timestamp });
      expect(answer.status, timestamp).toBe(401);
    }
    expect(s.accepted).toEqual([]);
    expect((await s.post(message(2), { signWith: INBOX_SECRET })).status).toBe(200);
  });

  it("spaces around X-Chatwoot-Timestamp are ignored (the signature covers the digits)", async () => {
    const s = setup([signedRow]);
    const timestamp = String(Math.floor(START / 1000));
    const answer = await s.post(message(1), {
      signWith: INBOX_SECRET,
      timestamp,
      headers: { "x-chatwoot-timestamp": ` ${timestamp} ` },
    });
    expect(answer.status).toBe(200);
  });

  it("an inbox showing an empty secret has none: a delivery signed with an empty key is refused and nothing kept", async () => {
    const s = setup([integration({ chatwootVersion: "4.13.0" })]);
    s.hooks.inboxSecret = "";
    expect((await s.post(message(1), { signWith: "" })).status).toBe(401);
    expect(s.counts.inboxReads).toBe(1);
    expect(s.counts.updates).toBe(0);
    expect(s.store.get("int_w")?.signingSecret).toBeNull();
    expect(s.accepted).toEqual([]);
  });

  it("an inbox that shows no secret at all (Chatwoot before 4.13) refuses a signed delivery: 401, not a failure", async () => {
    const s = setup([integration({ chatwootVersion: "4.13.0" })]);
    s.hooks.inboxSecret = null;
    const answer = await s.post(message(1), { signWith: INBOX_SECRET });
    expect([answer.status, answer.body]).toEqual([401, INVALID]);
    expect(s.counts.inboxReads).toBe(1);
    expect(s.accepted).toEqual([]);
  });

  it("a timestamp without a signature is refused like no signature: 401", async () => {
    const s = setup([signedRow]);
    const answer = await s.post(message(1), {
      headers: { "x-chatwoot-timestamp": String(Math.floor(START / 1000)) },
    });
    expect([answer.status, answer.body]).toEqual([401, INVALID]);
    expect(s.accepted).toEqual([]);
  });

  it("a failed inbox read is logged with the instance and the cause", async () => {
    const s = setup([signedRow]);
    s.hooks.inboxSecret = new Error("connect ECONNREFUSED");
    expect((await s.post(message(1), { signWith: ROTATED })).status).toBe(401);
    expect(s.logs.filter((line) => line.level === "warn")).toEqual([
      {
        level: "warn",
        obj: { instance: "suporte", err: "connect ECONNREFUSED" },
        msg: "chatwoot: could not read the inbox's webhook signing secret",
      },
    ]);
  });

  it("a rotated secret is written once and logged with the instance", async () => {
    const s = setup([signedRow]);
    s.hooks.inboxSecret = ROTATED;
    expect((await s.post(message(1), { signWith: ROTATED })).status).toBe(200);
    expect(s.counts.updates).toBe(1);
    expect(s.store.get("int_w")).toMatchObject({ signingSecret: ROTATED, version: 2 });
    expect(s.logs).toEqual([
      {
        level: "info",
        obj: { instance: "suporte" },
        msg: "chatwoot: stored the inbox's new webhook signing secret",
      },
    ]);
  });

  it("a store that cannot keep the rotated secret still accepts the delivery, and logs why", async () => {
    const s = setup([signedRow]);
    s.hooks.inboxSecret = ROTATED;
    s.hooks.updateFails = new Error("database is read-only");
    expect((await s.post(message(1), { signWith: ROTATED })).status).toBe(200);
    expect(ids(s.accepted)).toEqual([1]);
    expect(s.logs).toEqual([
      {
        level: "warn",
        obj: { instance: "suporte", err: "database is read-only" },
        msg: "chatwoot: could not store the inbox's webhook signing secret",
      },
    ]);
  });

  it("a write conflict is retried once from a fresh read, then given up (the delivery is still accepted)", async () => {
    const s = setup([signedRow]);
    s.hooks.inboxSecret = ROTATED;
    // Another process keeps writing the row (a few times), so each compare-and-set conflicts.
    let concurrent = 0;
    s.hooks.beforeUpdate = (row) => {
      if (concurrent++ < 6)
        s.store.set(row.id, { ...row, lastError: `busy ${concurrent}`, version: row.version + 1 });
    };
    expect((await s.post(message(1), { signWith: ROTATED })).status).toBe(200);
    expect(s.counts.updates).toBe(2);
    expect(s.store.get("int_w")?.signingSecret).toBe(INBOX_SECRET);
    expect(ids(s.accepted)).toEqual([1]);
  });

  it("a conflict with a process that stored the same secret is not written again", async () => {
    const s = setup([signedRow]);
    s.hooks.inboxSecret = ROTATED;
    let concurrent = 0;
    s.hooks.beforeUpdate = (row) => {
      if (concurrent++ === 0)
        s.store.set(row.id, { ...row, signingSecret: ROTATED, version: row.version + 1 });
    };
    expect((await s.post(message(1), { signWith: ROTATED })).status).toBe(200);
    expect(s.counts.updates).toBe(1);
    expect(s.store.get("int_w")).toMatchObject({ signingSecret: ROTATED, version: 2 });
    expect(s.logs).toEqual([]);
  });
});

describe("X-Chatwoot-Delivery", () => {
  it("spaces around the delivery id do not make another delivery", async () => {
    const s = setup();
    await s.post(message(1), { deliveryId: "0b5c7f0e-3f0e-4c8e-9d55-6f1d8c1f2a10" });
    const again = await s.post(message(1), { deliveryId: " 0b5c7f0e-3f0e-4c8e-9d55-6f1d8c1f2a10 " });
    expect([again.status, again.body]).toEqual([200, { received: true }]);
    expect(ids(s.accepted)).toEqual([1]);
  });

  it("a delivery id is forgotten exactly ttlMs after it was processed", async () => {
    const s = setup([integration()], { deliveries: { max: 10, ttlMs: 1_000 } });
    await s.post(message(1), { deliveryId: "d-1" });
    s.advance(999);
    await s.post(message(1), { deliveryId: "d-1" });
    expect(ids(s.accepted)).toEqual([1]);
    s.advance(1);
    await s.post(message(1), { deliveryId: "d-1" });
    expect(ids(s.accepted)).toEqual([1, 1]);
  });

  it("a delivery that could not be queued is answered 500, and processed when Chatwoot delivers it again", async () => {
    const s = setup();
    let failures = 1;
    s.hooks.accept = async () => {
      if (failures-- > 0) throw new Error("queue unavailable");
    };
    const first = await s.post(message(1), { deliveryId: "d-1" });
    expect(first.status).toBe(500);
    expect(s.accepted).toEqual([]);
    expect(s.logs.map((line) => line.level)).toEqual(["error"]);
    const again = await s.post(message(1), { deliveryId: "d-1" });
    expect(again.status).toBe(200);
    expect(ids(s.accepted)).toEqual([1]);
  });
});

describe("the per-integration limit", () => {
  it("never limits the dotted message event names (message.created, message.updated) either", async () => {
    const s = setup([integration()], { perMinute: 1 });
    const answers = [];
    for (let i = 0; i < 4; i++) {
      answers.push((await s.post(message(i, "message.created"))).status);
      answers.push((await s.post(message(10 + i, "message.updated"))).status);
    }
    expect(answers).toEqual(Array(8).fill(200));
    expect(s.accepted.map((entry) => entry.event)).toEqual([
      ...Array.from({ length: 4 }, () => ["message.created", "message.updated"]).flat(),
    ]);
    expect((await s.post(typing)).status).toBe(200);
    expect((await s.post(typing)).status).toBe(429);
  });
});

describe("railsJson", () => {
  it("encodes a missing value as null, as Rails encodes nil", () => {
    expect(railsJson(undefined)).toBe("null");
  });
});
