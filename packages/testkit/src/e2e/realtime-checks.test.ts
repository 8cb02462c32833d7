// The realtime link's periodic checks with many Chatwoot users in one process: each ownership round re-reads every
// user's profile (`GET /api/v1/profile`: a rotated pubsub token, a lost role or inbox), one read per socket. With a
// thousand token users they went out in one turn of the event loop every round, and the benchmark's agent replies
// (docs/benchmarks.md, "Realtime scale") waited behind that burst: the process checks at most 16 sockets at once
// (`VERIFY_CONCURRENCY`, packages/core/src/realtime/hub.ts) and still reads every user's profile.
import { randomBytes } from "node:crypto";
import { createChatwootBridge, createStaticDirectory } from "@ryze/chatwoot-core";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../eventually.js";
import { registerSecret, secretCheckingLogger } from "../secrets.js";
import { type ChatwootSimulator, startChatwootSimulator } from "../simulator/index.js";
import { createSimulatedWhatsAppGateway } from "../whatsapp/index.js";

const USERS = 24;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function startMany(sim: ChatwootSimulator) {
  const accountId = sim.createAccount({ name: "Acme" }).id;
  const users = Array.from({ length: USERS }, (_, i) =>
    sim.createUser({ name: `Admin ${i}`, accounts: [{ accountId, role: "administrator" }] }),
  );
  const key = randomBytes(32).toString("base64");
  registerSecret(key, "an encryption key");
  const bridge = createChatwootBridge({
    store: createMemoryStore(),
    gateway: createSimulatedWhatsAppGateway(),
    directory: createStaticDirectory({
      accounts: [
        {
          id: "a",
          token: "t",
          instances: users.map((_, i) => ({ name: `inst${i}`, token: `i${i}` })),
        },
      ],
    }),
    encryption: { current: { id: "k1", key } },
    // Ownership rounds (and so the profile checks) every 500 ms.
    realtime: { pingIntervalMs: 200, subscribeTimeoutMs: 2_000, leaseTtlMs: 1_500 },
    logger: secretCheckingLogger(),
  });
  await bridge.start();
  closers.push(() => bridge.stop());
  for (const [i, user] of users.entries()) {
    const result = await bridge.activate(`inst${i}`, {
      chatwootBaseUrl: sim.url,
      chatwootAccountId: accountId,
      chatwootApiToken: user.accessToken,
    });
    expect(result.status).toBe("active");
  }
  return bridge;
}

describe("realtime checks with many token users", () => {
  it("read every user's profile each round, at most 16 at once", async () => {
    const sim = await startChatwootSimulator({ cablePingIntervalMs: 200 });
    closers.push(() => sim.close());
    await startMany(sim);
    const profiles = () =>
      sim.requests.filter((entry) => entry.method === "GET" && entry.path === "/api/v1/profile");
    // Every socket connected: one per user.
    await eventually(() => sim.countRequests({ path: "/cable", status: 101 }) >= USERS, {
      what: "a socket per user",
    });
    // Slow profile answers keep each round's reads in flight long enough to count them.
    sim.faults.inject({ method: "GET", path: "/api/v1/profile", delayMs: 150 });
    const from = profiles().length;
    let most = 0;
    while (profiles().length - from < 3 * USERS) {
      most = Math.max(most, profiles().filter((entry) => entry.status === null).length);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(16);
  });
});
