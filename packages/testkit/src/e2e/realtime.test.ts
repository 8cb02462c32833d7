import { randomBytes } from "node:crypto";
import { type ChatwootBridge, createChatwootBridge, createStaticDirectory } from "@ryze/chatwoot-core";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "../simulator/index.js";
import { eventually } from "./harness.js";

let sim: ChatwootSimulator | undefined;
let bridge: ChatwootBridge | undefined;
afterEach(async () => {
  await bridge?.stop();
  await sim?.close();
});

const list = (target: ChatwootBridge) =>
  target.http
    .handle({ method: "GET", path: "/api/chatwoot/list/suporte", headers: { token: "t" } })
    .then((answer) => JSON.parse(answer!.body!) as { status: string; last_error: string });

/** A simulator with one administrator and a started bridge whose realtime link uses short timings. */
async function start(realtime: { leaseTtlMs?: number } = {}) {
  const started = await startChatwootSimulator({ cablePingIntervalMs: 200 });
  sim = started;
  const accountId = started.createAccount({ name: "Acme" }).id;
  const admin = started.createUser({ name: "Jane", accounts: [{ accountId, role: "administrator" }] });
  const created = createChatwootBridge({
    store: createMemoryStore(),
    directory: createStaticDirectory({
      accounts: [{ id: "a", token: "t", instances: [{ name: "suporte", token: "i" }] }],
    }),
    encryption: { current: { id: "k1", key: randomBytes(32).toString("base64") } },
    realtime: { pingIntervalMs: 200, subscribeTimeoutMs: 1_000, ...realtime },
  });
  bridge = created;
  await created.start();
  return { sim: started, bridge: created, accountId, admin };
}

describe("the realtime link during activation", () => {
  it("answers 502 when the subscription is not confirmed, then recovers by itself once Chatwoot's cable works", async () => {
    const { sim, bridge, accountId, admin } = await start({ leaseTtlMs: 900 });
    const cable = sim.faults.inject({ path: "/cable", status: 503, body: "cable down" });
    const result = await bridge.activate("suporte", {
      chatwootBaseUrl: sim.url,
      chatwootAccountId: accountId,
      chatwootApiToken: admin.accessToken,
    });
    expect(result).toEqual({
      status: "error",
      error: `Chatwoot is unreachable at ${sim.url} - verify chatwootBaseUrl and that the host is reachable from the server. Detail: SUBSCRIBE "${sim.url.replace("http", "ws")}/cable": realtime subscription not confirmed within 1s`,
    });
    // The bridge and its inbox are kept, in `error`, and `list` says why.
    expect(sim.inboxes(accountId)).toHaveLength(1);
    expect(await list(bridge)).toMatchObject({
      status: "error",
      last_error: expect.stringContaining("realtime subscription not confirmed"),
    });

    cable.remove();
    await eventually(async () => (await list(bridge)).status === "active", {
      timeoutMs: 15_000,
      what: "recovery",
    });
    expect(await list(bridge)).toMatchObject({ status: "active", last_error: "" });
    // One socket (a reconnect after missed 200 ms pings may leave the old one open for a moment, never for good).
    await eventually(() => sim.cable.connections() === 1, { what: "a single socket" });
  });
});

describe("the realtime link after activation", () => {
  it("list reports the link's state: error with last_error while the socket is down, active once it is back", async () => {
    const { sim, bridge, accountId, admin } = await start();
    const result = await bridge.activate("suporte", {
      chatwootBaseUrl: sim.url,
      chatwootAccountId: accountId,
      chatwootApiToken: admin.accessToken,
    });
    expect(result.status).toBe("active");
    expect(await list(bridge)).toMatchObject({ status: "active", last_error: "" });

    // The socket drops and Chatwoot's cable refuses upgrades for a while; its REST API keeps working.
    const cable = sim.faults.inject({ path: "/cable", status: 503, body: "cable down" });
    sim.cable.dropAll();
    const down = await eventually(
      async () => {
        const answer = await list(bridge);
        return answer.status === "error" ? answer : null;
      },
      { what: "list to report the link down" },
    );
    expect(down.last_error).toMatch(/realtime/);

    cable.remove();
    await eventually(async () => (await list(bridge)).status === "active", {
      timeoutMs: 15_000,
      what: "list to report the link back",
    });
    expect(await list(bridge)).toMatchObject({ status: "active", last_error: "" });
    // One socket (a reconnect after missed 200 ms pings may leave the old one open for a moment, never for good).
    await eventually(() => sim.cable.connections() === 1, { what: "a single socket" });
  });
});
