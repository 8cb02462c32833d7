import { randomBytes } from "node:crypto";
import { type ChatwootBridge, createChatwootBridge, createStaticDirectory } from "@ryze/chatwoot-core";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import {
  CHATWOOT_VERSIONS,
  type ChatwootSimulator,
  type ChatwootVersion,
  startChatwootSimulator,
} from "../simulator/index.js";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { conversationsOf, totalMessages } from "./inspect.js";

let sim: ChatwootSimulator | undefined;
let bridge: ChatwootBridge | undefined;
let h: RoutingHarness | undefined;
afterEach(async () => {
  await bridge?.stop();
  await sim?.close();
  await h?.close();
  bridge = undefined;
  sim = undefined;
  h = undefined;
});

const list = (target: ChatwootBridge) =>
  target.http
    .handle({ method: "GET", path: "/api/chatwoot/list/suporte", headers: { token: "t" } })
    .then((answer) => JSON.parse(answer!.body!) as { status: string; last_error: string });

/** A simulator of `version` with one administrator and a started bridge whose realtime link uses short timings. */
async function start(version: ChatwootVersion, realtime: { leaseTtlMs?: number } = {}) {
  const started = await startChatwootSimulator({ cablePingIntervalMs: 200, version });
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

// The realtime link (ActionCable RoomChannel) is the same in every supported version (room_channel.rb, connection.rb,
// action_cable_broadcast_job.rb are byte-identical in 4.10.0 and 4.13.0): the suite runs on each.
describe.each(CHATWOOT_VERSIONS)("the realtime link during activation (Chatwoot %s)", (version) => {
  it("answers 502 when the subscription is not confirmed, then recovers by itself once Chatwoot's cable works", async () => {
    const { sim, bridge, accountId, admin } = await start(version, { leaseTtlMs: 900 });
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

describe.each(CHATWOOT_VERSIONS)("the realtime link after activation (Chatwoot %s)", (version) => {
  it("list reports the link's state: error with last_error while the socket is down, active once it is back", async () => {
    const { sim, bridge, accountId, admin } = await start(version);
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

describe.each(CHATWOOT_VERSIONS)("agent replies over the realtime link (Chatwoot %s)", (version) => {
  it("reaches WhatsApp; typing is ignored; list shows the version read at activation and keeps no signing secret", async () => {
    h = await startRoutingHarness({ version });
    await h.ingest(textEvent({ phone: "5511900007777", text: "hello" }));
    await eventually(() => totalMessages(h!) === 1);
    const conversationId = conversationsOf(h)[0]!.id;
    const agent = h.sim.createUser({ name: "Sam", accounts: [{ accountId: h.accountId, role: "agent" }] });
    h.sim.addInboxMember(h.inboxId, agent.id);
    h.sim.toggleTyping({ accountId: h.accountId, conversationId, userId: agent.id, status: "on" });
    h.sim.postAgentMessage({ accountId: h.accountId, conversationId, userId: agent.id, content: "hi there" });
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    expect(h.gateway.sent("suporte").map((sent) => sent.text)).toEqual(["hi there"]);
    await h.sim.waitForBroadcasts({ event: "conversation.typing_on" });
    const info = await h.bridge.http.handle({
      method: "GET",
      path: "/api/chatwoot/list/suporte",
      headers: { token: "t" },
    });
    expect(JSON.parse(info!.body!)).toMatchObject({
      status: "active",
      chatwoot_version: { "4.10": "4.10.0", "4.11": "4.11.2", "4.12": "4.12.1", "4.13": "4.13.0" }[version],
    });
    // Realtime mode has no webhook: nothing to verify, so the inbox's secret is not kept.
    expect((await h.store.integrations.get("suporte"))?.signingSecret).toBeNull();
  });
});
