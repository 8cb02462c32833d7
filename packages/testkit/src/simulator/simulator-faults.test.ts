import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, type SimulatedUser, startChatwootSimulator } from "./index.js";

let sim: ChatwootSimulator;
let admin: SimulatedUser;
let accountId: number;

const profile = (init: RequestInit = {}) =>
  fetch(`${sim.url}/api/v1/profile`, { ...init, headers: { api_access_token: admin.accessToken } });

/** The error code under undici's "fetch failed". */
async function failureCode(request: Promise<Response>): Promise<string | undefined> {
  const error = await request.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return ((error as Error).cause as { code?: string } | undefined)?.code;
}

beforeEach(async () => {
  sim = await startChatwootSimulator();
  accountId = sim.createAccount({ name: "Acme" }).id;
  admin = sim.createUser({ name: "Jane Doe", accounts: [{ accountId, role: "administrator" }] });
});

afterEach(async () => {
  await sim.close();
});

describe("faults", () => {
  it("answers status + JSON body instead of the route, before authentication", async () => {
    sim.faults.inject({ path: "/api/v1/profile", status: 503, body: { error: "maintenance" } });
    const res = await fetch(`${sim.url}/api/v1/profile`);
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await res.json()).toEqual({ error: "maintenance" });
  });

  it("sends string bodies as text and adds custom headers (e.g. Rack::Attack's 429)", async () => {
    sim.faults.inject({ status: 429, body: "Retry later\n", headers: { "X-Extra": "1" } });
    const res = await profile();
    expect(res.status).toBe(429);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(res.headers.get("x-extra")).toBe("1");
    expect(await res.text()).toBe("Retry later\n");
  });

  it("counts down `times`, then requests are handled normally", async () => {
    const fault = sim.faults.inject({ method: "get", path: /\/profile$/, times: 2, status: 502 });
    expect([(await profile()).status, (await profile()).status, (await profile()).status]).toEqual([
      502, 502, 200,
    ]);
    expect(fault.hits).toBe(2);
    expect(fault.remaining).toBe(0);
  });

  it("matches by method and path only", async () => {
    sim.faults.inject({ method: "POST", status: 500 });
    sim.faults.inject({ path: "/api/v1/elsewhere", status: 500 });
    expect((await profile()).status).toBe(200);
  });

  it("applies the first matching fault; remove() and clear() stop faults", async () => {
    const first = sim.faults.inject({ status: 502 });
    sim.faults.inject({ status: 504 });
    expect((await profile()).status).toBe(502);
    first.remove();
    expect((await profile()).status).toBe(504);
    sim.faults.clear();
    expect((await profile()).status).toBe(200);
  });

  it("delays, then answers normally", async () => {
    sim.faults.inject({ delayMs: 120, times: 1 });
    const started = performance.now();
    const res = await profile();
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });

  it("delays, then answers the fault's status", async () => {
    sim.faults.inject({ delayMs: 60, status: 504, body: "gateway timeout" });
    const started = performance.now();
    const res = await profile();
    expect(res.status).toBe(504);
    expect(await res.text()).toBe("gateway timeout");
    expect(performance.now() - started).toBeGreaterThanOrEqual(50);
  });

  it("resets the connection", async () => {
    sim.faults.inject({ reset: true, times: 1 });
    expect(await failureCode(profile())).toBe("ECONNRESET");
    expect(sim.requests.at(-1)).toMatchObject({ path: "/api/v1/profile", status: null, faulted: true });
    expect((await profile()).status).toBe(200);
  });

  it("afterHandling: handles the request (its changes stay), then answers the fault instead", async () => {
    // Chatwoot's messages#create rescues any StandardError into 422 {"error": …}, also one raised by an
    // `after_create_commit` callback once the message is committed (app/controllers/api/v1/accounts/conversations/
    // messages_controller.rb, app/models/message.rb): the caller is told it failed although it was saved.
    const body = { error: "Error connecting to Redis on 127.0.0.1:6379 (Errno::ECONNREFUSED)" };
    const fault = sim.faults.inject({
      method: "POST",
      path: /\/inboxes$/,
      afterHandling: true,
      status: 422,
      body,
    });
    const create = () =>
      fetch(`${sim.url}/api/v1/accounts/${accountId}/inboxes`, {
        method: "POST",
        headers: { api_access_token: admin.accessToken, "content-type": "application/json" },
        body: JSON.stringify({ name: "Saved anyway", channel: { type: "api" } }),
      });
    const res = await create();
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual(body);
    expect(sim.inboxes(accountId).map((inbox) => inbox["name"])).toEqual(["Saved anyway"]);
    expect(sim.requests.at(-1)).toMatchObject({ status: 422, faulted: true });
    expect(fault.hits).toBe(1);
    // A lost answer: the work is done, the connection is reset before the reply.
    fault.remove();
    sim.faults.inject({ method: "POST", path: /\/inboxes$/, afterHandling: true, reset: true, times: 1 });
    expect(await failureCode(create())).toBe("ECONNRESET");
    expect(sim.inboxes(accountId)).toHaveLength(2);
    // A fault that does not apply after handling still answers before it: nothing is created.
    sim.faults.inject({ method: "POST", path: /\/inboxes$/, status: 503, times: 1 });
    expect((await create()).status).toBe(503);
    expect(sim.inboxes(accountId)).toHaveLength(2);
  });

  it("refuses faults that do nothing or have invalid values", () => {
    expect(() => sim.faults.inject({ path: "/x" })).toThrow(TypeError);
    expect(() => sim.faults.inject({ status: 42 })).toThrow(TypeError);
    expect(() => sim.faults.inject({ status: 500, times: 0 })).toThrow(TypeError);
    expect(() => sim.faults.inject({ delayMs: -1 })).toThrow(TypeError);
    expect(() => sim.faults.inject({ afterHandling: true })).toThrow(TypeError);
  });
});

describe("port control", () => {
  it("closePort refuses connections but keeps state; reopenPort serves the same URL again", async () => {
    const inbox = sim.createInbox(accountId, { name: "Kept", channel: { type: "api" } });
    const url = sim.url;
    expect((await profile()).status).toBe(200); // leaves a keep-alive connection open

    await sim.closePort();
    expect(await failureCode(profile())).toBe("ECONNREFUSED");

    await sim.reopenPort();
    expect(sim.url).toBe(url);
    const res = await fetch(`${url}/api/v1/accounts/${accountId}/inboxes/${inbox["id"]}`, {
      headers: { api_access_token: admin.accessToken },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(inbox);
  });

  it("closePort drops requests held by a delay fault without waiting for it", async () => {
    sim.faults.inject({ delayMs: 60_000 });
    const pending = failureCode(profile());
    await sim.waitForRequests({ path: "/api/v1/profile" });
    const started = performance.now();
    await sim.closePort();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await pending).toMatch(/^(ECONNRESET|UND_ERR_SOCKET)$/);
  });

  it("close() is final", async () => {
    await sim.close();
    await expect(sim.reopenPort()).rejects.toThrow(/closed/);
  });
});

describe("request log", () => {
  it("records method, path, query, status and body, never the token", async () => {
    await fetch(`${sim.url}/api/v1/accounts/${accountId}/inboxes?page=2`, {
      method: "POST",
      headers: { api_access_token: admin.accessToken, "content-type": "application/json" },
      body: JSON.stringify({ name: "Logged", channel: { type: "api" } }),
    });
    const [entry] = sim.requests;
    expect(entry).toMatchObject({
      method: "POST",
      path: `/api/v1/accounts/${accountId}/inboxes`,
      query: { page: "2" },
      status: 200,
      body: { name: "Logged", channel: { type: "api" } },
      faulted: false,
    });
    expect(entry?.at).toBeInstanceOf(Date);
    expect(JSON.stringify(sim.requests)).not.toContain(admin.accessToken);
  });

  it("counts and clears requests by filter", async () => {
    await profile();
    await profile();
    await fetch(`${sim.url}/api/v1/profile`);
    expect(sim.countRequests()).toBe(3);
    expect(sim.countRequests({ method: "get", path: "/api/v1/profile", status: 200 })).toBe(2);
    expect(sim.countRequests({ path: /profile/, status: 401 })).toBe(1);
    expect(sim.countRequests({ method: "POST" })).toBe(0);
    sim.clearRequests();
    expect(sim.countRequests()).toBe(0);
  });

  it("waitForRequests resolves once enough requests match, and times out otherwise", async () => {
    const waiting = sim.waitForRequests({ path: "/api/v1/profile", status: 200 }, { count: 2 });
    await profile();
    await profile();
    expect(await waiting).toHaveLength(2);
    await expect(sim.waitForRequests({ method: "DELETE" }, { timeoutMs: 20 })).rejects.toThrow(
      /fewer than 1/,
    );
  });
});
