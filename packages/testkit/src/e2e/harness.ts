import { randomBytes } from "node:crypto";
import {
  type ChatwootBridge,
  type ChatwootBridgeOptions,
  createChatwootBridge,
  createStaticDirectory,
  type StoragePort,
  type WhatsAppEvent,
} from "@ryze/chatwoot-core";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";

export { eventually } from "../eventually.js";

import { registerSecret, secretCheckingLogger } from "../secrets.js";
import { type ChatwootSimulator, type ChatwootVersion, startChatwootSimulator } from "../simulator/index.js";
import { createSimulatedWhatsAppGateway, type SimulatedWhatsAppGateway } from "../whatsapp/index.js";

export interface RoutingHarness {
  sim: ChatwootSimulator;
  bridge: ChatwootBridge;
  gateway: SimulatedWhatsAppGateway;
  store: StoragePort;
  accountId: number;
  agent: { id: number; accessToken: string; name: string };
  inboxId: number;
  /** Hands an event to `ingest` for the harness's instance; any value, as a host may (it is validated). */
  ingest(event: unknown): ReturnType<ChatwootBridge["ingest"]>;
  close(): Promise<void>;
}

export interface RoutingHarnessOptions {
  instance?: string;
  flags?: Partial<Record<"signMessages" | "ignoreGroups" | "startAsPending" | "reopenResolved", boolean>> & {
    importHistoryDays?: number;
  };
  bridge?: Partial<ChatwootBridgeOptions>;
  store?: StoragePort;
  sim?: ChatwootSimulator;
  /** The Chatwoot version the harness's own simulator plays (default the newest); ignored with `sim`. */
  version?: ChatwootVersion;
}

/** Simulator + bridge + gateway double, activated for one instance, with short timings for tests. */
export async function startRoutingHarness(options: RoutingHarnessOptions = {}): Promise<RoutingHarness> {
  const instance = options.instance ?? "suporte";
  const ownSim = !options.sim;
  const sim =
    options.sim ??
    (await startChatwootSimulator({
      cablePingIntervalMs: 200,
      ...(options.version === undefined ? {} : { version: options.version }),
    }));
  const accountId = sim.createAccount({ name: "Acme" }).id;
  const admin = sim.createUser({
    name: "Jane Doe",
    availableName: "Jane",
    accounts: [{ accountId, role: "administrator" }],
  });
  const store = options.store ?? createMemoryStore();
  const gateway = createSimulatedWhatsAppGateway();
  const key = randomBytes(32).toString("base64");
  registerSecret(key, "an encryption key");
  const bridge = createChatwootBridge({
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
    encryption: { current: { id: "k1", key } },
    realtime: { pingIntervalMs: 200, subscribeTimeoutMs: 2_000 },
    dispatcher: { pollIntervalMs: 20 },
    retry: { inbound: { baseDelayMs: 20, maxDelayMs: 200 }, outbound: { baseDelayMs: 20, maxDelayMs: 100 } },
    echoWaitMs: 100,
    ...options.bridge,
    // Every line is checked for the secrets the tests use (secrets.ts), then passed to the test's own logger.
    logger: secretCheckingLogger(options.bridge?.logger),
  });
  await bridge.start();
  const result = await bridge.activate(instance, {
    chatwootBaseUrl: sim.url,
    chatwootAccountId: accountId,
    chatwootApiToken: admin.accessToken,
    ...options.flags,
  });
  if (result.status !== "active") throw new Error(`activation failed: ${result.error}`);
  return {
    sim,
    bridge,
    gateway,
    store,
    accountId,
    agent: { id: admin.id, accessToken: admin.accessToken, name: "Jane" },
    inboxId: result.inboxId,
    ingest: (event) => bridge.ingest(instance, event as WhatsAppEvent),
    async close() {
      await bridge.stop();
      if (ownSim) await sim.close();
    },
  };
}

export { textEvent } from "../whatsapp/events.js";
