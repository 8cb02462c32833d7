import { randomBytes } from "node:crypto";
import {
  type ChatwootIntegration,
  type ChatwootIntegrationOptions,
  createChatwootIntegration,
  createMemoryStore,
  createStaticDirectory,
  type StoragePort,
} from "@ryze/chatwoot-core";

export { eventually } from "../eventually.js";

import { type ChatwootSimulator, startChatwootSimulator } from "../simulator/index.js";
import { createSimulatedWhatsAppGateway, type SimulatedWhatsAppGateway } from "../whatsapp/index.js";

export interface RoutingHarness {
  sim: ChatwootSimulator;
  integration: ChatwootIntegration;
  gateway: SimulatedWhatsAppGateway;
  store: StoragePort;
  accountId: number;
  agent: { id: number; accessToken: string; name: string };
  inboxId: number;
  /** Posts a `message.exchange` event through `ingest`. */
  ingest(event: unknown): ReturnType<ChatwootIntegration["ingest"]>;
  close(): Promise<void>;
}

export interface RoutingHarnessOptions {
  instance?: string;
  flags?: Partial<Record<"signMessages" | "ignoreGroups" | "startAsPending" | "reopenResolved", boolean>>;
  integration?: Partial<ChatwootIntegrationOptions>;
  store?: StoragePort;
  sim?: ChatwootSimulator;
}

/** Simulator + integration + gateway double, activated for one instance, with short timings for tests. */
export async function startRoutingHarness(options: RoutingHarnessOptions = {}): Promise<RoutingHarness> {
  const instance = options.instance ?? "suporte";
  const ownSim = !options.sim;
  const sim = options.sim ?? (await startChatwootSimulator({ cablePingIntervalMs: 200 }));
  const accountId = sim.createAccount({ name: "Acme" }).id;
  const admin = sim.createUser({
    name: "Jane Doe",
    availableName: "Jane",
    accounts: [{ accountId, role: "administrator" }],
  });
  const store = options.store ?? createMemoryStore();
  const gateway = createSimulatedWhatsAppGateway();
  const integration = createChatwootIntegration({
    store,
    gateway,
    directory: createStaticDirectory({
      accounts: [
        {
          id: "a",
          token: "t",
          instances: [
            { name: instance, token: "i" },
            { name: "vendas", token: "v" },
          ],
        },
      ],
    }),
    encryption: { current: { id: "k1", key: randomBytes(32).toString("base64") } },
    realtime: { pingIntervalMs: 200, subscribeTimeoutMs: 2_000 },
    dispatcher: { pollIntervalMs: 20 },
    retry: { inbound: { baseDelayMs: 20, maxDelayMs: 200 }, outbound: { baseDelayMs: 20, maxDelayMs: 100 } },
    echoWaitMs: 100,
    ...options.integration,
  });
  await integration.start();
  const result = await integration.activate(instance, {
    chatwootBaseUrl: sim.url,
    chatwootAccountId: accountId,
    chatwootApiToken: admin.accessToken,
    ...options.flags,
  });
  if (result.status !== "active") throw new Error(`activation failed: ${result.error}`);
  return {
    sim,
    integration,
    gateway,
    store,
    accountId,
    agent: { id: admin.id, accessToken: admin.accessToken, name: "Jane" },
    inboxId: result.inboxId,
    ingest: (event) => integration.ingest(instance, event),
    async close() {
      await integration.stop();
      if (ownSim) await sim.close();
    },
  };
}

export { textEvent } from "../whatsapp/events.js";
