import { afterEach, describe, expect, it, vi } from "vitest";
import { createStaticDirectory, type InstanceDirectory } from "../directory/index.js";
import { BridgeError } from "../errors/index.js";
import { createCallerChecks } from "./caller.js";
import { clientKey, createFailedAuthLimiter, createRateLimiter } from "./rate-limit.js";
import type { HttpRequest, HttpResponse } from "./types.js";

// Issue 15, row 7: failed logins are limited per client address, before the host's token directory is asked again.

const GOOD = "acct-token-failed-auth-0001";

function setup(points = 3) {
  const inner = createStaticDirectory({
    accounts: [{ id: "acme", token: GOOD, instances: [{ name: "suporte", token: "inst-token-0001" }] }],
  });
  const lookups: string[] = [];
  const directory: InstanceDirectory = {
    resolveToken: (token) => {
      lookups.push(token);
      return inner.resolveToken(token);
    },
    getInstance: (name) => inner.getInstance(name),
  };
  const caller = createCallerChecks({
    directory,
    rateLimiter: createRateLimiter({ points: 1_000, durationSeconds: 60, onStoreError: "open" }),
    failedAuth: createFailedAuthLimiter({ points, durationSeconds: 60 }),
  });
  const request = (remoteAddress: string | undefined, token?: string): HttpRequest => ({
    method: "GET",
    path: "/api/chatwoot/list/suporte",
    headers: token === undefined ? {} : { token },
    ...(remoteAddress === undefined ? {} : { remoteAddress }),
  });
  /** The guard's answer as a status: 200 when the caller may act on `suporte`. */
  const status = async (remoteAddress: string | undefined, token?: string) => {
    const answer = await caller.authorize(request(remoteAddress, token), "suporte");
    return "status" in answer ? answer.status : 200;
  };
  return { caller, lookups, request, status };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("failed caller authentication per client address", () => {
  it("answers 429 with Retry-After past the limit, without asking the directory, even for a valid token", async () => {
    const t = setup(3);
    for (const guess of ["guess-1", "guess-2", "guess-3"])
      expect(await t.status("203.0.113.9", guess)).toBe(401);
    expect(t.lookups).toEqual(["guess-1", "guess-2", "guess-3"]);
    const headers: Record<string, string> = {};
    const refused = await t.caller
      .access({
        request: t.request("203.0.113.9", "guess-4"),
        params: { instance: "suporte" },
        headers,
        query: () => undefined,
      })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BridgeError);
    expect(refused).toMatchObject({ code: "RATE_LIMITED", status: 429 });
    expect(Number(headers["retry-after"])).toBeGreaterThan(0);
    expect(Number(headers["retry-after"])).toBeLessThanOrEqual(60);
    const answer = (await t.caller.authorize(t.request("203.0.113.9", GOOD), "suporte")) as HttpResponse;
    expect(answer.status).toBe(429);
    expect(JSON.parse(answer.body!)).toEqual({
      success: false,
      error: { message: "Rate limit exceeded. Try again later." },
    });
    expect(answer.headers["retry-after"]).toMatch(/^\d+$/);
    // The directory was not asked for the guess nor for the valid token once the address was limited.
    expect(t.lookups).toEqual(["guess-1", "guess-2", "guess-3"]);
  });

  it("does not block a valid caller from another address", async () => {
    const t = setup(2);
    for (let i = 0; i < 5; i++) await t.status("203.0.113.9", `guess-${i}`);
    expect(await t.status("203.0.113.9", GOOD)).toBe(429);
    expect(await t.status("198.51.100.4", GOOD)).toBe(200);
    expect(await t.status("198.51.100.4", "one-typo")).toBe(401);
    expect(await t.status("198.51.100.4", GOOD)).toBe(200);
  });

  it("counts missing tokens too, and the Bearer form like the token header", async () => {
    const t = setup(2);
    expect(await t.status("203.0.113.9")).toBe(401);
    const bearer = await t.caller.authorize(
      { method: "GET", path: "/x", headers: { authorization: "Bearer nope" }, remoteAddress: "203.0.113.9" },
      "suporte",
    );
    expect("status" in bearer && bearer.status).toBe(401);
    expect(await t.status("203.0.113.9", GOOD)).toBe(429);
  });

  it("lets the address try again once its window has ended", async () => {
    vi.useFakeTimers({ now: new Date("2026-04-28T10:00:00Z") });
    const t = setup(1);
    expect(await t.status("203.0.113.9", "guess")).toBe(401);
    expect(await t.status("203.0.113.9", GOOD)).toBe(429);
    vi.advanceTimersByTime(61_000);
    expect(await t.status("203.0.113.9", GOOD)).toBe(200);
  });

  it("counts an IPv4 address and its IPv4-mapped IPv6 spelling as one, and IPv6 by its /64", async () => {
    expect(clientKey("::ffff:203.0.113.9")).toBe(clientKey("203.0.113.9"));
    expect(clientKey("2001:db8:1:2:aaaa::1")).toBe(clientKey("2001:db8:1:2:bbbb::2"));
    expect(clientKey("2001:db8:1:2::1")).not.toBe(clientKey("2001:db8:1:3::1"));
    expect(clientKey(undefined)).toBe("unknown");
    const t = setup(2);
    await t.status("2001:db8:1:2::a", "guess-1");
    await t.status("2001:db8:1:2::b", "guess-2");
    expect(await t.status("2001:db8:1:2::c", GOOD)).toBe(429);
    expect(await t.status("2001:db8:1:3::c", GOOD)).toBe(200);
    await t.status("::ffff:203.0.113.9", "guess-1");
    await t.status("203.0.113.9", "guess-2");
    expect(await t.status("203.0.113.9", GOOD)).toBe(429);
  });

  it("lets requests through when its shared store fails, and reports the failure", async () => {
    const errors: unknown[] = [];
    const broken = {
      get: () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6379")),
      penalty: () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6379")),
    };
    const limiter = createFailedAuthLimiter({
      points: 1,
      durationSeconds: 60,
      limiter: broken as never,
      onError: (error) => errors.push(error),
    });
    await limiter.fail("203.0.113.9");
    expect(await limiter.blocked("203.0.113.9")).toBeNull();
    expect(errors).toHaveLength(2);
  });
});
