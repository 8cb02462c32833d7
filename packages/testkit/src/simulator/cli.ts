#!/usr/bin/env node
/**
 * `chatwoot-simulator`, the bin of @ryze/chatwoot-testkit: runs a Chatwoot simulator until SIGINT/SIGTERM, seeded
 * with one account and one administrator.
 *
 *   PORT=3000 npx chatwoot-simulator                   # from a project that installed @ryze/chatwoot-testkit
 *   PORT=3000 npm run simulator                        # in this repository (runs this file from source)
 *
 * PORT defaults to 0 (a free port). ACCOUNT_NAME and ADMIN_NAME / ADMIN_EMAIL are optional. CHATWOOT_VERSION picks the
 * Chatwoot version played (4.10, 4.11, 4.12 or 4.13; default the newest, see docs/chatwoot-versions.md).
 */
import { type ChatwootVersion, startChatwootSimulator } from "./index.js";

const port = Number.parseInt(process.env["PORT"] ?? "0", 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, got ${process.env["PORT"]}`);
  process.exit(1);
}

const version = process.env["CHATWOOT_VERSION"] as ChatwootVersion | undefined;
const sim = await startChatwootSimulator({ port, host: "127.0.0.1", ...(version ? { version } : {}) });
const account = sim.createAccount({ name: process.env["ACCOUNT_NAME"] ?? "Acme" });
const admin = sim.createUser({
  name: process.env["ADMIN_NAME"] ?? "Admin",
  email: process.env["ADMIN_EMAIL"] ?? "admin@chatwoot-simulator.test",
  accounts: [{ accountId: account.id, role: "administrator" }],
});

console.log(`Chatwoot simulator listening on ${sim.url}`);
console.log(`CHATWOOT_URL=${sim.url}`);
console.log(`CHATWOOT_ACCOUNT_ID=${account.id}`);
console.log(`CHATWOOT_ADMIN_TOKEN=${admin.accessToken}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await sim.close();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
