import type { RateLimiterMemory } from "rate-limiter-flexible";
import { describe, expect, it } from "vitest";
import { createStaticDirectory } from "../directory/index.js";
import type { Logger } from "../observability/index.js";
import { readJsonBody } from "./body.js";
import { createCallerChecks } from "./caller.js";
import { createHttpHandler } from "./handler.js";
import { clientKey, createFailedAuthLimiter, createRateLimiter } from "./rate-limit.js";
import { json } from "./response.js";
import { anyone, defineRoute } from "./routes.js";
import type { HttpRequest } from "./types.js";

// The edges of the HTTP contract (docs/http-api.md) that only the framework suites reached before: how the caller
// token is read, the rate-limit headers, instance ownership, the body cap on every way a body arrives, the content
// type, and the route prefix. Found by mutation testing (docs/testing.md, "Mutation report"): each test here fails
// with one of the surviving mutants of `packages/core/src/http` put back.

const ACCOUNT = "acct-token-edges-0001";
const OTHER_ACCOUNT = "acct-token-edges-0002";
const INSTANCE = "inst-token-edges-0001";

function callers(points = 100) {
  const directory = createStaticDirectory({
    accounts: [
      {
        id: "acme",
        token: ACCOUNT,
        instances: [
          { name: "suporte", token: INSTANCE },
          { name: "vendas", token: "inst-token-edges-0002" },
        ],
      },
      { id: "other", token: OTHER_ACCOUNT, instances: [{ name: "alheio", token: "inst-token-edges-0003" }] },
    ],
  });
  const now = 1_900_000_000_000;
  const caller = createCallerChecks({
    directory,
    rateLimiter: createRateLimiter({ points, durationSeconds: 60, onStoreError: "open", now: () => now }),
  });
  /** The guard's answer: status and headers (200 when the caller may act on the instance). */
  const authorize = async (headers: HttpRequest["headers"], instance = "suporte", quota?: boolean) => {
    const answer = await caller.authorize(
      { method: "GET", path: `/api/chatwoot/list/${instance}`, headers },
      instance,
      quota === undefined ? undefined : { quota },
    );
    return "status" in answer
      ? { status: answer.status, headers: answer.headers ?? {}, body: answer.body }
      : { status: 200, headers: answer.headers, body: null };
  };
  return { caller, authorize, now };
}

describe("the caller token", () => {
  it("is read from `token` or `Authorization: Bearer`, around spaces, in any case of `Bearer`", async () => {
    const { authorize } = callers();
    expect((await authorize({ token: `  ${ACCOUNT}  ` })).status).toBe(200);
    expect((await authorize({ authorization: `Bearer ${ACCOUNT}` })).status).toBe(200);
    expect((await authorize({ Authorization: `  bearer   ${ACCOUNT} ` })).status).toBe(200);
    // `token` wins over Authorization
    expect((await authorize({ token: ACCOUNT, authorization: "Bearer nope" })).status).toBe(200);
  });

  it("is missing (401 Missing token) when Authorization is not a Bearer credential", async () => {
    const { authorize } = callers();
    for (const authorization of [
      `Basic ${ACCOUNT}`,
      `Token Bearer ${ACCOUNT}`,
      `Bearer${ACCOUNT}`,
      "Bearer   ",
    ]) {
      const answer = await authorize({ authorization });
      expect({ authorization, status: answer.status, body: JSON.parse(String(answer.body)) }).toEqual({
        authorization,
        status: 401,
        body: { success: false, error: { message: "Missing token" } },
      });
    }
  });
});

describe("the rate limit as the caller sees it", () => {
  it("answers every counted call with the x-ratelimit headers, and 429 with Retry-After past the quota", async () => {
    const { authorize, now } = callers(2);
    const reset = String(Math.ceil((now + 60_000) / 1000));
    const first = await authorize({ token: ACCOUNT });
    expect(first).toMatchObject({ status: 200 });
    expect(first.headers).toEqual({
      "x-ratelimit-limit": "2",
      "x-ratelimit-remaining": "1",
      "x-ratelimit-reset": reset,
    });
    expect((await authorize({ token: ACCOUNT })).headers["x-ratelimit-remaining"]).toBe("0");
    const refused = await authorize({ token: ACCOUNT });
    expect(refused.status).toBe(429);
    expect(refused.headers).toMatchObject({
      "x-ratelimit-limit": "2",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": reset,
      "retry-after": "60",
    });
  });

  it("counts the guard's calls unless it is told `quota: false`, which neither counts nor refuses", async () => {
    const { authorize } = callers(1);
    expect((await authorize({ token: ACCOUNT }, "suporte", false)).headers).toEqual({});
    expect((await authorize({ token: ACCOUNT })).status).toBe(200);
    expect((await authorize({ token: ACCOUNT })).status).toBe(429);
    expect((await authorize({ token: ACCOUNT }, "suporte", false)).status).toBe(200);
  });

  it("route access counts the quota too", async () => {
    const { caller } = callers(5);
    const headers: Record<string, string> = {};
    await caller.access({
      request: { method: "GET", path: "/api/chatwoot/list/suporte", headers: { token: ACCOUNT } },
      params: { instance: "suporte" },
      headers,
      query: () => undefined,
    });
    expect(headers["x-ratelimit-remaining"]).toBe("4");
  });
});

describe("instance ownership", () => {
  it("an instance token acts on its own instance only, an account token on its account's instances only (403)", async () => {
    const { authorize } = callers();
    expect((await authorize({ token: INSTANCE }, "suporte")).status).toBe(200);
    expect((await authorize({ token: INSTANCE }, "vendas")).status).toBe(403);
    expect((await authorize({ token: ACCOUNT }, "vendas")).status).toBe(200);
    expect((await authorize({ token: ACCOUNT }, "alheio")).status).toBe(403);
    expect((await authorize({ token: OTHER_ACCOUNT }, "alheio")).status).toBe(200);
    expect((await authorize({ token: ACCOUNT }, "nenhuma")).status).toBe(404);
  });
});

describe("the rate-limit store's failures", () => {
  const failing = (reason: unknown) =>
    ({ consume: () => Promise.reject(reason) }) as unknown as RateLimiterMemory;

  it("a rejection that is no refusal (null, a plain object, an Error shaped like one) is a store failure", async () => {
    const now = 1_900_000_000_500;
    const shaped = Object.assign(new Error("ECONNRESET"), { msBeforeNext: 5_000, remainingPoints: 0 });
    for (const reason of [
      null,
      undefined,
      { code: "ECONNREFUSED" },
      { msBeforeNext: 5_000 },
      { remainingPoints: 0 },
      shaped,
    ]) {
      const errors: unknown[] = [];
      const open = createRateLimiter({
        points: 10,
        durationSeconds: 60,
        limiter: failing(reason),
        onStoreError: "open",
        onError: (error) => errors.push(error),
        now: () => now,
      });
      expect(await open.consume("t")).toEqual({
        allowed: true,
        limit: 10,
        remaining: 0,
        resetAt: Math.ceil(now / 1000) + 60,
        retryAfter: 0,
      });
      expect(errors).toEqual([reason]);
      const closed = createRateLimiter({
        points: 10,
        durationSeconds: 60,
        limiter: failing(reason),
        onStoreError: "closed",
        now: () => now,
      });
      expect(await closed.consume("t")).toMatchObject({ allowed: false, retryAfter: 60 });
    }
  });

  it("a refusal from another copy of rate-limiter-flexible (its shape, not our class) is a refusal", async () => {
    const limiter = createRateLimiter({
      points: 10,
      durationSeconds: 60,
      limiter: failing({
        msBeforeNext: 2_500,
        remainingPoints: 0,
        consumedPoints: 11,
        isFirstInDuration: false,
      }),
      onStoreError: "open",
      onError: () => {
        throw new Error("a refusal is no store failure");
      },
    });
    expect(await limiter.consume("t")).toMatchObject({ allowed: false, retryAfter: 3 });
  });
});

describe("failed attempts per client address", () => {
  it("an address past its limit waits the rest of the window (Retry-After), not one second", async () => {
    const failed = createFailedAuthLimiter({ points: 1, durationSeconds: 120 });
    await failed.fail("198.51.100.7");
    const wait = await failed.blocked("198.51.100.7");
    expect(wait).toBeGreaterThanOrEqual(119);
    expect(wait).toBeLessThanOrEqual(120);
  });

  it("IPv6 addresses count per /64, and two different /64s never share a count", async () => {
    // 1:23:4:5::/64 and 12:3:4:5::/64 would be one key if the groups were not kept apart
    const failed = createFailedAuthLimiter({ points: 1, durationSeconds: 60 });
    await failed.fail("1:23:4:5::1");
    expect(await failed.blocked("1:23:4:5::ffff")).not.toBeNull();
    expect(await failed.blocked("12:3:4:5::1")).toBeNull();
  });

  it("an address that is no IP counts by its first 100 characters", () => {
    expect(clientKey(`${"h".repeat(100)}-tail`)).toBe("h".repeat(100));
  });
});

/** A body as a stream of chunks; `read` tells whether it was read at all. */
function streamed(chunks: string[]) {
  const state = { read: false };
  const stream = (async function* () {
    state.read = true;
    for (const chunk of chunks) yield Buffer.from(chunk);
  })();
  return { stream, state };
}

const post = (headers: HttpRequest["headers"], extra: Partial<HttpRequest>): HttpRequest => ({
  method: "POST",
  path: "/api/chatwoot/webhook/x",
  headers,
  ...extra,
});
const TOO_LARGE = { code: "BODY_TOO_LARGE", message: "request body too large" };

describe("the body cap, however the body arrives", () => {
  it("a streamed body is read up to the cap: at the cap it is parsed, one byte over it is refused", async () => {
    const body = JSON.stringify({ text: "x".repeat(40) });
    const at = streamed([body.slice(0, 10), body.slice(10)]);
    expect(
      await readJsonBody(post({ "content-type": "application/json" }, { stream: at.stream }), body.length),
    ).toMatchObject({ value: { text: "x".repeat(40) } });
    const over = streamed([body.slice(0, 10), body.slice(10)]);
    await expect(
      readJsonBody(post({ "content-type": "application/json" }, { stream: over.stream }), body.length - 1),
    ).rejects.toMatchObject(TOO_LARGE);
  });

  it("a streamed body stops being read at the first chunk past the cap (the rest is never buffered)", async () => {
    const pulled: number[] = [];
    const stream = (async function* () {
      for (let chunk = 1; chunk <= 3; chunk++) {
        pulled.push(chunk);
        yield Buffer.alloc(60, 32);
      }
    })();
    await expect(
      readJsonBody(post({ "content-type": "application/json" }, { stream }), 100),
    ).rejects.toMatchObject(TOO_LARGE);
    expect(pulled).toEqual([1, 2]);
  });

  it("a declared Content-Length over the cap is refused before the body is read; at the cap it is read", async () => {
    const over = streamed(["{}"]);
    await expect(
      readJsonBody(
        post({ "content-length": "101", "content-type": "application/json" }, { stream: over.stream }),
        100,
      ),
    ).rejects.toMatchObject(TOO_LARGE);
    expect(over.state.read).toBe(false);
    const at = streamed(["{}"]);
    expect(
      await readJsonBody(
        post({ "content-length": "100", "content-type": "application/json" }, { stream: at.stream }),
        100,
      ),
    ).toMatchObject({ value: {} });
  });

  it("a body the host parsed is judged by its bytes when kept, else by its JSON form when its length is unknown", async () => {
    const value = { text: "y".repeat(50) };
    const size = JSON.stringify(value).length;
    // kept bytes: at the cap accepted, over it refused
    expect(await readJsonBody(post({}, { body: value, rawBody: JSON.stringify(value) }), size)).toMatchObject(
      {
        value,
      },
    );
    await expect(
      readJsonBody(post({}, { body: value, rawBody: JSON.stringify(value) }), size - 1),
    ).rejects.toMatchObject(TOO_LARGE);
    // no bytes, no Content-Length: the JSON form counts
    expect(await readJsonBody(post({}, { body: value }), size)).toMatchObject({ value, raw: null });
    await expect(readJsonBody(post({}, { body: value }), size - 1)).rejects.toMatchObject(TOO_LARGE);
    // no bytes, a Content-Length within the cap: the host's parser already kept to it
    expect(
      await readJsonBody(post({ "content-length": String(size - 1) }, { body: value }), size - 1),
    ).toMatchObject({ value });
    // a string body counts by its UTF-8 bytes
    await expect(readJsonBody(post({}, { body: "é".repeat(10) }), 15)).rejects.toMatchObject(TOO_LARGE);
  });

  it("raw bytes over the cap are refused; an empty body is no value", async () => {
    await expect(
      readJsonBody(post({ "content-type": "application/json" }, { rawBody: '{"a":1}' }), 6),
    ).rejects.toMatchObject(TOO_LARGE);
    expect(
      await readJsonBody(post({ "content-type": "application/json" }, { rawBody: '{"a":1}' }), 7),
    ).toMatchObject({
      value: { a: 1 },
    });
    expect(await readJsonBody(post({}, { rawBody: "" }), 10)).toMatchObject({ value: undefined });
  });
});

describe("the content type of a body the bridge parses", () => {
  const parse = (type: string | undefined) =>
    readJsonBody(post(type === undefined ? {} : { "Content-Type": type }, { rawBody: '{"ok":true}' }), 100);

  it("accepts application/json in any case, with parameters and spaces, and any +json type", async () => {
    for (const type of ["application/json", " Application/JSON ; charset=utf-8", "application/vnd.api+json"])
      expect(await parse(type)).toMatchObject({ value: { ok: true } });
  });

  it("refuses any other type, naming it, and a missing one", async () => {
    await expect(parse("text/plain; charset=utf-8")).rejects.toMatchObject({
      code: "INVALID_BODY",
      message: 'invalid body: Content-Type must be application/json, got "text/plain"',
    });
    await expect(parse("application/json-patch")).rejects.toMatchObject({ code: "INVALID_BODY" });
    await expect(parse(undefined)).rejects.toMatchObject({
      message: "invalid body: Content-Type must be application/json, got none",
    });
  });
});

describe("the route prefix", () => {
  const logger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
  const routes = [
    defineRoute({
      path: "ping",
      methods: ["GET"],
      access: anyone,
      handle: async ({ query }) => json(200, { pong: query("n") ?? null }),
    }),
  ];

  it("ignores trailing slashes of the prefix, and serves nothing outside it", async () => {
    const handler = createHttpHandler({ enabled: true, prefix: "/api/chatwoot//", routes, logger });
    expect(await handler.handle({ method: "GET", path: "/api/chatwoot/ping", headers: {} })).toMatchObject({
      status: 200,
    });
    // same length as the prefix, another path: not ours
    expect(await handler.handle({ method: "GET", path: "/api/chatwooX/ping", headers: {} })).toBeNull();
  });

  it("reads a repeated query parameter's first value from the host's parsed query", async () => {
    const handler = createHttpHandler({ enabled: true, prefix: "/api/chatwoot", routes, logger });
    const answer = await handler.handle({
      method: "GET",
      path: "/api/chatwoot/ping?n=3",
      headers: {},
      query: { n: ["1", "2"] },
    });
    expect(JSON.parse(String(answer?.body))).toEqual({ pong: "1" });
  });

  it("HEAD of a route that answers no body says Content-Length 0", async () => {
    const empty = defineRoute({
      path: "empty",
      methods: ["GET", "HEAD"],
      access: anyone,
      handle: async () => ({ status: 204, headers: {}, body: null }),
    });
    const handler = createHttpHandler({ enabled: true, prefix: "/api/chatwoot", routes: [empty], logger });
    const answer = await handler.handle({ method: "HEAD", path: "/api/chatwoot/empty", headers: {} });
    expect(answer).toEqual({ status: 204, headers: { "content-length": "0" }, body: null });
  });

  it("a parsed query value that is no string (a nested object from the host's parser) is no value", async () => {
    const handler = createHttpHandler({ enabled: true, prefix: "/api/chatwoot", routes, logger });
    const answer = await handler.handle({
      method: "GET",
      path: "/api/chatwoot/ping",
      headers: {},
      query: { n: [{ x: "1" }] },
    });
    expect(JSON.parse(String(answer?.body))).toEqual({ pong: null });
  });
});
