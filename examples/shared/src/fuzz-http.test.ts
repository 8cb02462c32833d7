import { createHmac, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  type ChatwootBridge,
  createChatwootBridge,
  createStaticDirectory,
  type StoragePort,
} from "@ryze/chatwoot-core";
import type { HttpRequest, HttpResponse } from "@ryze/chatwoot-core/adapter";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import {
  type ChatwootSimulator,
  checkHttpAnswer,
  fuzzSettings,
  registerSecret,
  secretCheckingLogger,
  startChatwootSimulator,
} from "@ryze/chatwoot-testkit";
import type { StartedServer } from "@ryze/chatwoot-testkit/conformance";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expressMount, fastifyMount, koaMount } from "./mounts.js";

// Issue 15, item 6: every route's body, headers, path and query, and webhook payloads, fuzzed on the core's handler
// and over real sockets on Express, Koa and Fastify (one server each). Properties: no 5xx except a 502 naming an
// unreachable Chatwoot and the 500 of an injected store failure; every 4xx is the contract's error body with a
// message that names what was wrong; a rejected request changes no stored row; the process stays up.

const { seed, numRuns } = fuzzSettings("http routes and webhook");
const PREFIX = "/api/chatwoot";
const ACCOUNT_TOKEN = `fuzz-acct-${randomBytes(6).toString("hex")}`;
const INSTANCE_TOKEN = `fuzz-inst-${randomBytes(6).toString("hex")}`;
const OTHER_TOKEN = `fuzz-vendas-${randomBytes(6).toString("hex")}`;
const FOREIGN_TOKEN = `fuzz-foreign-${randomBytes(6).toString("hex")}`;
for (const token of [ACCOUNT_TOKEN, INSTANCE_TOKEN, OTHER_TOKEN, FOREIGN_TOKEN]) {
  registerSecret(token, "a caller token");
}
/** Every IPv4 network but loopback, and all of IPv6: a fuzzed base URL may name any address, none is connected to. */
const NOT_LOOPBACK = [
  "0.0.0.0/2",
  "64.0.0.0/3",
  "96.0.0.0/4",
  "112.0.0.0/5",
  "120.0.0.0/6",
  "124.0.0.0/7",
  "126.0.0.0/8",
  "128.0.0.0/1",
  "::/0",
];

let sim: ChatwootSimulator;
let bridge: ChatwootBridge;
let memory: ReturnType<typeof createMemoryStore>;
let accountId: number;
let adminToken: string;
/** While true, every integration-store call fails (an injected store failure: 500 is then the right answer). */
let storeFails = false;
const servers: Record<string, StartedServer> = {};

function failing(store: StoragePort): StoragePort {
  const integrations = new Proxy(store.integrations, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (storeFails) return Promise.reject(new Error("disk I/O error (injected)"));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { ...store, integrations };
}

beforeAll(async () => {
  sim = await startChatwootSimulator();
  accountId = sim.createAccount({ name: "Acme" }).id;
  adminToken = sim.createUser({ name: "Jane", accounts: [{ accountId, role: "administrator" }] }).accessToken;
  memory = createMemoryStore();
  const key = randomBytes(32).toString("base64");
  registerSecret(key, "an encryption key");
  bridge = createChatwootBridge({
    store: failing(memory),
    directory: createStaticDirectory({
      accounts: [
        {
          id: "acme",
          token: ACCOUNT_TOKEN,
          instances: [
            { name: "suporte", token: INSTANCE_TOKEN },
            { name: "vendas", token: OTHER_TOKEN },
          ],
        },
        { id: "foreign", token: FOREIGN_TOKEN, instances: [] },
      ],
    }),
    encryption: { current: { id: "k1", key } },
    // Webhook mode, so that the webhook route serves; the dispatcher is never started (nothing is delivered).
    delivery: "webhook",
    publicUrl: "http://127.0.0.1:9",
    rateLimit: { points: 1_000_000 },
    failedAuth: { points: 1_000_000 },
    network: { deny: NOT_LOOPBACK },
    activationTimeoutMs: 10_000,
    logger: secretCheckingLogger(),
  });
  for (const mount of [expressMount, koaMount, fastifyMount]) {
    servers[mount.name] = await mount.start({ handlers: [bridge], hostBodyParser: false });
  }
  expect(
    await bridge.activate("suporte", {
      chatwootBaseUrl: sim.url,
      chatwootAccountId: accountId,
      chatwootApiToken: adminToken,
    }),
  ).toMatchObject({ status: "active" });
});

afterAll(async () => {
  console.log(`fuzz http routes and webhook: answers seen ${JSON.stringify(Object.fromEntries(seen))}`);
  for (const server of Object.values(servers)) await server.close();
  await bridge?.stop();
  await sim?.close();
});

interface Snapshot {
  /** The integrations as a user sees them, without what a released claim leaves behind (version, timestamps). */
  integrations: string;
  /** Every other row, by reference: the memory store replaces or adds rows (the dispatcher is not running). */
  rows: unknown[];
}

function snapshot(): Snapshot {
  const { integrations, chats, messages, outbox, leases, identities } = memory.raw;
  const visible = [...integrations.values()].map(
    ({ version: _v, updatedAt: _u, provisioningUntil: _p, ...row }) => row,
  );
  return {
    integrations: JSON.stringify(visible),
    rows: [
      ...chats.values(),
      ...messages.values(),
      ...outbox.values(),
      ...leases.values(),
      ...identities.values(),
    ],
  };
}

function unchanged(before: Snapshot): boolean {
  const after = snapshot();
  return (
    after.integrations === before.integrations &&
    after.rows.length === before.rows.length &&
    after.rows.every((row, index) => row === before.rows[index])
  );
}

/** The current integration of `suporte`, its inbox, its webhook URL secret and its inbox's signing secret, if any. */
function current(): { id: string; inboxId: number; secret: string; signing: string | null } | null {
  const row = [...memory.raw.integrations.values()].find(
    (r) => r.instance === "suporte" && r.inboxId !== null,
  );
  if (!row) return null;
  const inbox = sim.getInbox(accountId, row.inboxId!) as
    | { webhook_url?: string; secret?: string }
    | undefined;
  if (!inbox?.webhook_url) return null;
  const secret = new URL(inbox.webhook_url).searchParams.get("secret") ?? "";
  return { id: row.id, inboxId: row.inboxId!, secret, signing: inbox.secret ?? null };
}

// ---- generators -------------------------------------------------------------------------------------------------

const junk = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.constantFrom(
    "",
    " ",
    "%",
    "%E0%A4%A",
    "..",
    "%2e%2e",
    "%2F",
    "\u0000",
    "__proto__",
    "constructor",
    "a".repeat(300),
  ),
);
const segment = fc.oneof(
  { weight: 8, arbitrary: fc.constant("suporte") },
  { weight: 2, arbitrary: fc.constantFrom("vendas", "nobody", "s%C3%A3o") },
  { weight: 2, arbitrary: junk.map((text) => encodeURIComponent(text)) },
  { weight: 1, arbitrary: junk },
);
/** A route and method of ours most of the time (so that the checks behind them are reached), else anything. */
const routeCall = fc.oneof(
  // Activation, where most of the work is.
  { weight: 2, arbitrary: fc.constant({ method: "POST", path: "set/suporte" }) },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.constantFrom(
          ["POST", "set"],
          ["GET", "list"],
          ["HEAD", "list"],
          ["DELETE", "delete"],
          ["POST", "set"],
          ["GET", "dead-letters"],
        ),
        segment,
      )
      .map(([[m, route], name]) => ({ method: m!, path: `${route}/${name}` })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.oneof(
          fc.constantFrom("GET", "POST", "DELETE"),
          fc.constantFrom("HEAD", "PUT", "PATCH", "OPTIONS", "get", "Post"),
        ),
        fc.oneof(
          fc
            .tuple(fc.constantFrom("set", "list", "delete"), segment)
            .map(([route, name]) => `${route}/${name}`),
          fc
            .tuple(fc.constantFrom("dead-letters", "webhook", "set", "list", "status"), segment, segment)
            .map(([route, a, b]) => `${route}/${a}/${b}`),
          fc.array(segment, { maxLength: 4 }).map((parts) => parts.join("/")),
          fc.constantFrom(
            "",
            "list",
            "set/",
            "list//suporte",
            "status",
            "ui",
            "dead-letters/suporte/ob_1/retry",
          ),
        ),
      )
      .map(([m, path]) => ({ method: m, path })),
  },
);
const query = fc.oneof(
  fc.constant(""),
  fc.constantFrom(
    "?deleteInbox=true",
    "?deleteInbox=false",
    "?deleteInbox",
    "?deleteInbox=true&deleteInbox=false",
  ),
  fc
    .dictionary(fc.constantFrom("deleteInbox", "secret", "after", "limit", "x"), junk, { maxKeys: 3 })
    .map((entries) => `?${new URLSearchParams(entries).toString()}`),
);
const token = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(ACCOUNT_TOKEN, ACCOUNT_TOKEN, INSTANCE_TOKEN, OTHER_TOKEN, FOREIGN_TOKEN),
  },
  fc.constantFrom(
    ` ${ACCOUNT_TOKEN} `,
    ACCOUNT_TOKEN.toUpperCase(),
    ACCOUNT_TOKEN.slice(0, -1),
    "Bearer",
    "null",
  ),
  fc.string({ minLength: 1, maxLength: 30 }).filter((t) => /^[\x21-\x7e]+$/.test(t)),
);
const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8") },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "application/JSON",
      "text/plain",
      "application/x-www-form-urlencoded",
      "application/json; charset=latin1",
      "multipart/form-data; boundary=x",
      ";;",
    ),
  },
);
/** Mostly a caller token the directory knows (so that the checks behind it are reached), as either header. */
const auth = fc.oneof(
  { weight: 6, arbitrary: token.map((t): Record<string, string> => ({ token: t })) },
  { weight: 1, arbitrary: token.map((t): Record<string, string> => ({ authorization: `Bearer ${t}` })) },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        token: fc.oneof(token, fc.constantFrom("", " ")),
        authorization: fc.oneof(token, fc.constant("Basic Zm9vOmJhcg=="), fc.constant("Bearer ")),
      },
      { requiredKeys: [] },
    ),
  },
);
const headers = fc
  .tuple(
    auth,
    fc.option(contentType, { freq: 8 }),
    fc.record(
      {
        "x-chatwoot-delivery": fc.uuid(),
        "x-other": fc.string({ maxLength: 20 }).filter((t) => /^[\x20-\x7e]*$/.test(t)),
      },
      { requiredKeys: [] },
    ),
  )
  .map(([a, type, extra]) => ({ ...a, ...(type === null ? {} : { "content-type": type }), ...extra }));
/** A base URL that is never a name needing DNS: the simulator, loopback spellings, refused addresses, or junk. */
const baseUrl = fc.oneof(
  { weight: 8, arbitrary: fc.constant("<sim>") },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "<sim>/",
      "<sim>//",
      "<sim>/sub/path",
      "<sim>?x=1",
      "<sim>#frag",
      "http://localhost:<port>",
      "http://2130706433:<port>",
      "http://[::ffff:127.0.0.1]:<port>",
      "http://127.0.0.1:1",
      "http://user:pass@127.0.0.1:<port>",
      "ftp://127.0.0.1:<port>",
      "http://169.254.169.254",
      "http://10.0.0.1",
      "http://[fd00:ec2::254]",
      "http://0.0.0.0:<port>",
      `http://127.0.0.1:<port>/${"a".repeat(2100)}`,
    ),
  },
  {
    weight: 2,
    arbitrary: fc.string({ maxLength: 50 }).filter((text) => !/^\s*[a-z][a-z0-9+.-]*:/i.test(text)),
  },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.boolean(), fc.array(fc.string())) },
);
/** Mostly `valid`, sometimes `invalid`: each field of a body is right often enough to reach the next check. */
const mostly = <T, U>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<U>) =>
  fc.oneof({ weight: 8, arbitrary: valid }, { weight: 1, arbitrary: invalid });
const activateBody = fc
  .record(
    {
      chatwootBaseUrl: baseUrl,
      chatwootAccountId: mostly(
        fc.constant("<account>"),
        fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.constant("1")),
      ),
      chatwootApiToken: mostly(
        fc.constant("<admin>"),
        fc.oneof(fc.string({ maxLength: 300 }), fc.constant("   "), fc.integer()),
      ),
      inboxName: mostly(
        fc.string({ minLength: 1, maxLength: 40 }).filter((name) => name.trim() !== ""),
        fc.oneof(fc.constant("a".repeat(300)), fc.constant(" "), fc.integer()),
      ),
      signMessages: mostly(fc.boolean(), fc.constantFrom("true", 1, null)),
      ignoreGroups: fc.boolean(),
      startAsPending: fc.boolean(),
      reopenResolved: mostly(fc.boolean(), fc.constant(null)),
      extra: fc.anything(),
      ["__proto__"]: fc.constant({ polluted: true }),
    },
    { requiredKeys: ["chatwootBaseUrl", "chatwootAccountId", "chatwootApiToken"] },
  )
  .map((value) => {
    // Unknown keys are rejected: keep one in about one body of ten, `__proto__` (as an own key of the JSON) too.
    const { extra, ["__proto__"]: proto, ...rest } = value as Record<string, unknown>;
    const out: Record<string, unknown> = { ...rest };
    if (JSON.stringify(extra ?? null).length % 10 === 0) out["extra"] = extra;
    if (Object.hasOwn(value, "__proto__") && JSON.stringify(extra ?? null).length % 5 === 1)
      Object.defineProperty(out, "__proto__", { value: proto, enumerable: true });
    return out;
  });
const body = fc.oneof(
  { weight: 8, arbitrary: activateBody.map((value) => ({ kind: "json" as const, value })) },
  { weight: 2, arbitrary: fc.jsonValue().map((value) => ({ kind: "json" as const, value })) },
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }).map((text) => ({ kind: "raw" as const, text })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        "",
        "{",
        '{"a":1}{"b":2}',
        "\ufeff{}",
        '{"__proto__":{"polluted":true}}',
        "null",
        "[]",
        `{"x":"${"a".repeat(70 * 1024)}"}`,
      )
      .map((text) => ({ kind: "raw" as const, text })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "none" as const }) },
);
/** A webhook delivery: a Chatwoot-like event, mutated; the URL secret and the signature valid or not. */
const webhook = fc.record({
  id: fc.oneof({ weight: 4, arbitrary: fc.constant("<id>") }, { weight: 1, arbitrary: segment }),
  secret: fc.oneof(
    { weight: 4, arbitrary: fc.constant("<secret>") },
    { weight: 1, arbitrary: fc.oneof(fc.constant(""), fc.constant("<secret>x"), junk) },
  ),
  signature: fc.constantFrom("valid", "valid", "valid", "none", "wrong", "stale"),
  payload: fc.record(
    {
      event: fc.oneof(
        fc.constantFrom(
          "message_created",
          "message_updated",
          "conversation_status_changed",
          "conversation_typing_on",
          "conversation_updated",
          "webwidget_triggered",
        ),
        fc.string({ maxLength: 20 }),
        fc.anything(),
      ),
      id: fc.oneof(fc.integer({ min: 1, max: 1_000_000 }), fc.anything()),
      content: fc.oneof(fc.string({ maxLength: 200 }), fc.constant(null), fc.anything()),
      message_type: fc.oneof(fc.constantFrom("outgoing", "incoming", "activity", "template"), fc.anything()),
      private: fc.oneof(fc.boolean(), fc.anything()),
      source_id: fc.oneof(fc.constant(null), fc.string({ maxLength: 30 })),
      content_attributes: fc.oneof(fc.constant({}), fc.object()),
      conversation: fc.oneof(
        fc.record({
          id: fc.integer({ min: 1, max: 1000 }),
          status: fc.constantFrom("open", "resolved", "x"),
        }),
        fc.anything(),
      ),
      inbox: fc.oneof(fc.record({ id: fc.oneof(fc.constant("<inbox>"), fc.integer()) }), fc.anything()),
      sender: fc.oneof(
        fc.record({ id: fc.integer(), type: fc.constantFrom("user", "agent_bot", "contact") }),
        fc.anything(),
      ),
      attachments: fc.oneof(
        fc.array(
          fc.record({
            file_type: fc.constantFrom("image", "audio", "video", "file", "location", "x"),
            data_url: fc.constantFrom("http://127.0.0.1:1/a.png", "http://169.254.169.254/", "not a url"),
          }),
          { maxLength: 3 },
        ),
        fc.anything(),
      ),
    },
    { requiredKeys: [] },
  ),
  raw: fc.oneof(
    { weight: 8, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.string({ maxLength: 100 }) },
  ),
});

// ---- the request, and what may be answered ---------------------------------------------------------------------

interface Fuzzed {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | null;
}

function fill(value: unknown): unknown {
  const port = new URL(sim.url).port;
  if (typeof value === "string") {
    return value
      .replaceAll("<sim>", sim.url)
      .replaceAll("<port>", port)
      .replace(/^<account>$/, "")
      .replace(/^<admin>$/, adminToken);
  }
  return value;
}

function activateJson(value: unknown): string {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return JSON.stringify(value);
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value as Record<string, unknown>)) {
    // `__proto__` as an own key, so that it reaches the JSON.
    Object.defineProperty(out, name, {
      value: field === "<account>" ? accountId : fill(field),
      enumerable: true,
      writable: true,
    });
  }
  return JSON.stringify(out);
}

function toRequest(
  m: string,
  path: string,
  q: string,
  h: Record<string, string>,
  b: { kind: "json"; value: unknown } | { kind: "raw"; text: string } | { kind: "none" },
): Fuzzed {
  const text = b.kind === "json" ? activateJson(b.value) : b.kind === "raw" ? b.text : null;
  return { method: m, path: `${PREFIX}/${path}${q}`, headers: h, body: text };
}

function toWebhook(w: typeof webhook extends fc.Arbitrary<infer T> ? T : never): Fuzzed {
  const now = current();
  const id = w.id === "<id>" ? (now?.id ?? "int_none") : String(w.id);
  const secret = String(w.secret).replace("<secret>", now?.secret ?? "");
  const payload = JSON.parse(
    JSON.stringify(w.payload, (_key, value: unknown) =>
      value === "<inbox>" ? (now?.inboxId ?? 0) : value,
    ) ?? "{}",
  ) as unknown;
  const text = w.raw ?? JSON.stringify(payload) ?? "{}";
  const timestamp = String(Math.floor(Date.now() / 1000) - (w.signature === "stale" ? 3_600 : 0));
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (w.signature !== "none") {
    const key = w.signature === "wrong" ? "not-the-secret" : (now?.signing ?? "none");
    headers["x-chatwoot-timestamp"] = timestamp;
    headers["x-chatwoot-signature"] =
      `sha256=${createHmac("sha256", key).update(`${timestamp}.${text}`).digest("hex")}`;
  }
  return {
    method: "POST",
    path: `${PREFIX}/webhook/${encodeURIComponent(id)}${secret === "" ? "" : `?secret=${encodeURIComponent(secret)}`}`,
    headers,
    body: text,
  };
}

/** The messages each 4xx may carry: each names what was wrong (the token header, the instance, a body field...). */
const CLIENT_ERRORS: Record<number, RegExp> = {
  400: /^invalid (body|query): \S.*|^Chatwoot (account or endpoint not found - verify chatwootBaseUrl .+ and chatwootAccountId .+|rejected the request as invalid - verify inboxName .+|\S+ is not supported - upgrade Chatwoot at .+)/s,
  401: /^(Missing token|Invalid token|invalid webhook secret|Chatwoot rejected the API token - verify chatwootApiToken\. Detail: .+)$/s,
  403: /^(Instance token does not match the instance|Instance does not belong to this account|Chatwoot denied the request - verify the API token has admin scope on account \d+\. Detail: .+)$/s,
  404: /^(instance not found|no chatwoot integration for this instance|no chatwoot integration to delete|dead letter not found|unknown integration)$/,
  409: /^(chatwoot activation already in progress for this instance|not a dead letter: .+)$/,
  413: /^request body too large$/,
  429: /^Rate limit exceeded\. Try again later\.$/,
};

/** How often each answer was seen, per property: the generators must reach past the checks they fuzz. */
const seen = new Map<string, number>();
const tally = (key: string): void => {
  seen.set(key, (seen.get(key) ?? 0) + 1);
};

function check(request: Fuzzed, answer: HttpResponse | null, before: Snapshot, injected: boolean): void {
  tally(answer === null ? "host" : `${request.path.includes("/webhook/") ? "webhook " : ""}${answer.status}`);
  if (answer === null) return; // not ours: the host answers it
  checkHttpAnswer(answer, `the answer to ${request.method} ${request.path}`);
  const { status } = answer;
  const isHead = request.method.toUpperCase() === "HEAD";
  const message = (): string => {
    const parsed = JSON.parse(answer.body ?? "") as { success?: unknown; error?: { message?: unknown } };
    expect(Object.keys(parsed).sort()).toEqual(["error", "success"]);
    expect(parsed.success).toBe(false);
    expect(typeof parsed.error?.message).toBe("string");
    return parsed.error!.message as string;
  };
  if (status >= 400) {
    expect(answer.headers["content-type"]).toBe("application/json; charset=utf-8");
    // A rejected request changes nothing that is stored.
    expect(unchanged(before), "a rejected request changed a stored row").toBe(true);
  }
  if (status >= 500) {
    const text = isHead ? null : message();
    if (status === 500) {
      expect(injected, `500 without an injected store failure: ${text}`).toBe(true);
      if (text !== null)
        expect(text).toMatch(
          /^(internal error|chatwoot integration failed: .*storage error) \(ref [0-9a-f]{12}\)$/,
        );
    } else {
      expect(status, `${request.method} ${request.path}: ${text}`).toBe(502);
      if (text !== null) expect(text).toMatch(/^Chatwoot is unreachable at .+ - verify chatwootBaseUrl/s);
    }
    return;
  }
  if (status >= 400) {
    const pattern = CLIENT_ERRORS[status];
    expect(pattern, `unexpected status ${status}`).toBeDefined();
    if (!isHead) expect(message()).toMatch(pattern!);
    return;
  }
  expect([200, 201]).toContain(status);
}

/** Over a real socket, with undici (Node's fetch): what a client of the framework sees. */
async function overSocket(where: string, request: Fuzzed): Promise<HttpResponse | null> {
  const server = servers[where]!;
  const m = request.method.toUpperCase();
  const hasBody = request.body !== null && !["GET", "HEAD"].includes(m);
  const response = await fetch(`${server.url}${request.path}`, {
    method: m,
    headers: request.headers,
    ...(hasBody ? { body: request.body } : {}),
  });
  const text = await response.text();
  // The host's answers, not ours: its 404, and Fastify's own refusal of a path it cannot decode (`FST_ERR_BAD_URL`,
  // before any route runs; Express and Koa hand such a path to the adapter, which lets it fall through). A HEAD
  // answer has no body to name that code: there the path itself tells.
  if (response.status === 404 && text === '{"host":"not found"}') return null;
  const badUrl =
    m === "HEAD" ? !decodable(request.path.split("?")[0]!) : text.includes('"code":"FST_ERR_BAD_URL"');
  if (where === "fastify" && response.status === 400 && badUrl) return null;
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  return { status: response.status, headers, body: m === "HEAD" ? null : text };
}

/** Whether a path's percent-escapes decode (Fastify refuses one whose escapes do not). */
function decodable(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}

function inProcess(request: Fuzzed, from = "127.0.0.1"): Promise<HttpResponse | null> {
  const http: HttpRequest = {
    method: request.method,
    path: request.path,
    headers: request.headers,
    remoteAddress: from,
    ...(request.body === null ? {} : { stream: Readable.from([Buffer.from(request.body)]) }),
  };
  return bridge.http.handle(http);
}

/** fetch refuses what no HTTP client would send (bad header bytes, a body on GET): those go in-process only. */
const socketSafe = (request: Fuzzed) =>
  Object.entries(request.headers).every(
    ([, value]) => /^[\x20-\x7e]*$/.test(value) && value.trim() === value,
  ) && !/[^\x21-\x7e]/.test(request.path);

/** The client's address in-process (failed attempts are counted per address); a socket's is 127.0.0.1. */
const client = fc.integer({ min: 1, max: 254 }).map((n) => `198.51.100.${n}`);
const via = fc.oneof(
  { weight: 8, arbitrary: fc.constant("in-process") },
  { weight: 1, arbitrary: fc.constantFrom("express", "koa", "fastify") },
);

/** An integration for `suporte` again when a fuzzed `delete` removed it, so that the next run has one to work on. */
async function ensureIntegration(): Promise<void> {
  if (current()) return;
  const result = await bridge.activate("suporte", {
    chatwootBaseUrl: sim.url,
    chatwootAccountId: accountId,
    chatwootApiToken: adminToken,
  });
  expect(result).toMatchObject({ status: "active" });
}

async function exercise(request: Fuzzed, where: string, from: string, injectFailure: boolean): Promise<void> {
  await ensureIntegration();
  const before = snapshot();
  storeFails = injectFailure;
  let answer: HttpResponse | null;
  try {
    answer =
      where === "in-process" || !socketSafe(request)
        ? await inProcess(request, from)
        : await overSocket(where, request);
  } finally {
    storeFails = false;
  }
  check(request, answer, before, injectFailure);
}

const options = { seed, numRuns, interruptAfterTimeLimit: 120_000, endOnFailure: true } as const;

describe("fuzzing the HTTP routes (issue 15)", () => {
  it("every route: body, headers, path and query, in-process and on Express, Koa and Fastify", async () => {
    await fc.assert(
      fc.asyncProperty(
        routeCall,
        query,
        headers,
        body,
        via,
        client,
        fc.integer({ min: 0, max: 15 }),
        async (call, q, h, b, where, from, dice) => {
          // A store failure is injected in one run in sixteen.
          await exercise(toRequest(call.method, call.path, q, h, b), where, from, dice === 0);
        },
      ),
      options,
    );
    // The generators got past every check: activations, refusals of each kind, paths that are not ours.
    const expected = ["200", "400", "401", "403", "404", "host", ...(numRuns >= 1_000 ? ["201", "500"] : [])];
    for (const status of expected) expect(seen.get(status) ?? 0, status).toBeGreaterThan(0);
    // The bridge still serves: the account lists its instance (or tells it has no integration).
    expect([200, 404]).toContain(
      (await inProcess(toRequest("GET", "list/suporte", "", { token: ACCOUNT_TOKEN }, { kind: "none" })))
        ?.status,
    );
  }, 300_000);

  it("the webhook route: payloads, URL secrets and signatures", async () => {
    await fc.assert(
      fc.asyncProperty(
        webhook,
        via,
        client,
        fc.integer({ min: 0, max: 15 }),
        async (w, where, from, dice) => {
          await exercise(toWebhook(w), where, from, dice === 0);
        },
      ),
      options,
    );
    for (const status of ["webhook 200", "webhook 401"])
      expect(seen.get(status) ?? 0, status).toBeGreaterThan(0);
  }, 300_000);
});
