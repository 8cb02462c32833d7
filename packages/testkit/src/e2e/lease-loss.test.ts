import { randomBytes } from "node:crypto";
import {
  type ChatwootBridge,
  createChatwootBridge,
  createStaticDirectory,
  type Logger,
} from "@ryze/chatwoot-core";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "../simulator/index.js";
import { eventually } from "./harness.js";

// Issue 19, bug 3: a process that lost the realtime lease of an integration (another process took it over, at a
// higher fencing epoch) must leave its subscription on its next ownership round, not keep listening next to the
// new owner.

let sim: ChatwootSimulator | undefined;
let bridge: ChatwootBridge | undefined;
afterEach(async () => {
  await bridge?.stop();
  await sim?.close();
  bridge = undefined;
  sim = undefined;
});

const LEASE_TTL_MS = 900; // an ownership round every 300 ms

describe("realtime ownership: a lost lease (issue 19, bug 3)", () => {
  it("drops its subscription within a round when another process takes the lease over at a higher epoch", async () => {
    sim = await startChatwootSimulator({ cablePingIntervalMs: 200 });
    const accountId = sim.createAccount({ name: "Acme" }).id;
    const admin = sim.createUser({ name: "Jane", accounts: [{ accountId, role: "administrator" }] });
    const store = createMemoryStore();
    const dropped: Array<Record<string, unknown>> = [];
    const logger: Logger = {
      debug() {},
      info(obj, msg) {
        if (msg === "chatwoot: realtime subscription dropped") dropped.push({ ...obj });
      },
      warn() {},
      error() {},
    };
    // This process's clock stands still: the watchdog (a subscription not renewed for two thirds of the TTL is
    // dropped) never fires, so only the round's renewal can notice the loss.
    const frozen = new Date();
    bridge = createChatwootBridge({
      store,
      directory: createStaticDirectory({
        accounts: [{ id: "a", token: "t", instances: [{ name: "suporte", token: "i" }] }],
      }),
      encryption: { current: { id: "k1", key: randomBytes(32).toString("base64") } },
      realtime: { pingIntervalMs: 200, subscribeTimeoutMs: 2_000, leaseTtlMs: LEASE_TTL_MS },
      clock: { now: () => new Date(frozen.getTime()) },
      processId: "process-a",
      logger,
    });
    await bridge.start();
    const result = await bridge.activate("suporte", {
      chatwootBaseUrl: sim.url,
      chatwootAccountId: accountId,
      chatwootApiToken: admin.accessToken,
    });
    expect(result.status).toBe("active");
    const integrationId = (await store.integrations.get("suporte"))!.id;
    const leaseName = `realtime:${integrationId}`;
    expect(await store.leases.get(leaseName)).toMatchObject({ owner: "process-a", epoch: 1 });
    await eventually(() => sim!.cable.subscriptions().filter((s) => s.confirmed).length === 1, {
      what: "the subscription confirmed",
    });
    // Our rounds keep renewing the lease meanwhile; the subscription stays.
    await eventually(async () => (await store.leases.get(leaseName))?.owner === "process-a");

    // Another process, whose clock is past our lease's expiry, takes the lease over (epoch 2).
    const later = new Date(frozen.getTime() + 10 * LEASE_TTL_MS);
    const stolen = await store.leases.acquire(leaseName, "process-b", 60 * LEASE_TTL_MS, later);
    expect(stolen).toMatchObject({ owner: "process-b", epoch: 2 });

    // Within a round (300 ms; the generous wait only absorbs a loaded machine), the subscription is gone.
    await eventually(() => sim!.cable.subscriptions().length === 0, {
      timeoutMs: 5_000,
      what: "our subscription to be dropped after the lease was lost",
    });
    expect(dropped).toContainEqual(expect.objectContaining({ integrationId, why: "lease lost" }));
    // And it stays away: the lease is the other process's, nothing is taken back.
    expect(await store.leases.get(leaseName)).toMatchObject({ owner: "process-b", epoch: 2 });
    expect(sim.cable.connections()).toBe(0);
  });
});
