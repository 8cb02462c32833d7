// A server process for the crash test: routes through a knex SQLite store that survives a SIGKILL.
// MODE=burst activates and ingests 200 events (20 chats × 10); MODE=drain only dispatches what is stored.
import { createChatwootBridge, createStaticDirectory } from "@ryze/chatwoot-core";
import { createKnexStore, migrate } from "@ryze/chatwoot-knex";
import knexFactory from "knex";
import { createSimulatedWhatsAppGateway } from "../whatsapp/index.js";
import { textEvent } from "./harness.js";

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const knex = knexFactory({
  client: "better-sqlite3",
  connection: { filename: env("DB_FILE") },
  useNullAsDefault: true,
});
await migrate(knex);
const bridge = createChatwootBridge({
  store: createKnexStore(knex),
  gateway: createSimulatedWhatsAppGateway(),
  directory: createStaticDirectory({
    accounts: [{ id: "a", token: "t", instances: [{ name: "suporte", token: "i" }] }],
  }),
  encryption: { current: { id: "k1", key: env("KEY") } },
  dispatcher: { pollIntervalMs: 20, claimTtlMs: 3_000, concurrency: 8 },
  retry: { inbound: { baseDelayMs: 20, maxDelayMs: 200 } },
  realtime: { pingIntervalMs: 500, subscribeTimeoutMs: 2_000 },
});
await bridge.start();

if (env("MODE") === "burst") {
  const result = await bridge.activate("suporte", {
    chatwootBaseUrl: env("SIM_URL"),
    chatwootAccountId: Number(env("ACCOUNT_ID")),
    chatwootApiToken: env("CHATWOOT_TOKEN"),
  });
  if (result.status !== "active") throw new Error(result.error);
  const phones = Array.from({ length: 20 }, (_, i) => `55118${String(20_000_000 + i)}`);
  for (let n = 0; n < 10; n++) {
    await Promise.all(
      phones.map((phone) => bridge.ingest("suporte", textEvent({ phone, text: `${phone} #${n}` }))),
    );
  }
}
process.stdout.write("READY\n");
process.on("SIGTERM", () => {
  void bridge.stop().then(() => knex.destroy().then(() => process.exit(0)));
});
