// One process of the cluster test: the Express example app on its own port, configured from the environment like
// `npm start` (DATABASE_URL, RATE_LIMIT_STORE, ...). CLUSTER_FAST_TIMINGS=1 shortens leases, claims, pings and
// retries so that a crash is taken over in seconds; CLUSTER_PROCESS_ID names the process in leases and claims.
// Prints `READY <port>` on stdout once it listens.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { type RuntimeOptions, readConfig } from "@ryze/example-shared";
import { buildApp } from "../../express/src/app.js";

type BridgeOptions = NonNullable<RuntimeOptions["bridge"]>;

/** Lease 3 s (renewed every second), claims 10 s, pings every 500 ms: a crash costs about 3-4 s. */
const fastTimings: BridgeOptions = {
  realtime: { leaseTtlMs: 3_000, pingIntervalMs: 500, subscribeTimeoutMs: 10_000 },
  dispatcher: { claimTtlMs: 10_000, pollIntervalMs: 50 },
  retry: { inbound: { baseDelayMs: 50, maxDelayMs: 500 }, outbound: { baseDelayMs: 50, maxDelayMs: 200 } },
  echoWaitMs: 100,
};

const config = readConfig();
const processId = process.env.CLUSTER_PROCESS_ID;
const example = await buildApp(config, {
  bridge: {
    ...(process.env.CLUSTER_FAST_TIMINGS === "1" ? fastTimings : {}),
    ...(processId ? { processId } : {}),
  },
});
const server = example.app.listen(config.port, config.host);
await once(server, "listening");
process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    server.closeAllConnections();
    server.close();
    void example.close().then(() => process.exit(0));
  });
}
