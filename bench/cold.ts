/**
 * 2. Cold path: every message comes from a new contact, so routing creates the contact and the conversation
 * before the message. Measures Chatwoot requests per message and throughput. Each run has a fresh simulator
 * and store.
 */
import { BACKEND_LABEL, type Backend, messageId, openStore, startActivated, textEvent } from "./fixtures.js";
import type { Child } from "./rpc.js";
import type { SimHostMethods } from "./sim-host.js";
import { cpuMs, type Figure, figure, now, percentile, pool, waitUntil } from "./stats.js";

export interface ColdConfig {
  runs: number;
  backend: Backend;
  /** New contacts per run, one message each (the size is 1,000). */
  contacts: number;
  concurrency: number;
  pollIntervalMs: number;
  ingestConcurrency: number;
}

export interface ColdResult {
  backend: Backend;
  label: string;
  contacts: number;
  skipped?: string;
  requestsPerMessage?: Figure;
  rate?: Figure;
  p50?: Figure;
  p99?: Figure;
  /** CPU time per message of the benchmark process (the bridge and its store) and of the simulator. */
  hostCpuPerMessage?: Figure;
  simCpuPerMessage?: Figure;
  breakdown?: Record<string, number>;
}

const INSTANCE = "bench-cold";

export async function benchCold(
  sim: Child<SimHostMethods>,
  config: ColdConfig,
  log: (line: string) => void,
): Promise<ColdResult> {
  const label = BACKEND_LABEL[config.backend];
  const base = { backend: config.backend, label, contacts: config.contacts };
  const requestsPerMessage: number[] = [];
  const rates: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  const hostCpu: number[] = [];
  const simCpu: number[] = [];
  let breakdown: Record<string, number> = {};
  for (let run = 1; run <= config.runs; run++) {
    const opened = await openStore(config.backend);
    if ("unreachable" in opened) return { ...base, skipped: opened.unreachable };
    const { handle, bridge, integrationId, close } = await startActivated(sim, opened, INSTANCE, "Cold", {
      concurrency: config.concurrency,
      pollIntervalMs: config.pollIntervalMs,
    });
    try {
      await sim.call("clearRequests", handle);
      await sim.call("resetStored");
      const count = config.contacts;
      const ids = Array.from({ length: count }, () => messageId());
      const events = ids.map((id, i) => textEvent(id, 100_000 + run * count + i, `first message ${i}`));
      const ingestAt = new Float64Array(count);
      const cpuStart = [cpuMs(), await sim.call("cpuMs")] as const;
      const started = now();
      await pool(count, config.ingestConcurrency, async (i) => {
        ingestAt[i] = now();
        await bridge.ingest(INSTANCE, events[i]!);
      });
      await waitUntil(async () => (await sim.call("storedCount")) >= count, "the cold messages", 300_000, 20);
      const stored = await sim.call("storedTimes");
      const latencies = new Float64Array(count);
      let last = 0;
      for (let i = 0; i < count; i++) {
        const at = sim.toParentTime(stored.get(ids[i]!)!);
        latencies[i] = at - ingestAt[i]!;
        if (at > last) last = at;
      }
      await waitUntil(async () => {
        const counts = await opened.store.outbox.count(integrationId);
        return counts.pending + counts.claimed === 0;
      }, "the outbox to drain");
      const cpu = [(cpuMs() - cpuStart[0]) / count, ((await sim.call("cpuMs")) - cpuStart[1]) / count];
      hostCpu.push(cpu[0]!);
      simCpu.push(cpu[1]!);
      const requests = await sim.call("countRequests", handle);
      breakdown = await sim.call("requestBreakdown", handle);
      requestsPerMessage.push(requests / count);
      rates.push(count / ((last - started) / 1000));
      p50.push(percentile(latencies, 50));
      p99.push(percentile(latencies, 99));
      log(
        `  cold run ${run}/${config.runs}: ${(requests / count).toFixed(3)} req/msg, ` +
          `${rates.at(-1)!.toFixed(0)} msg/s, p50 ${p50.at(-1)!.toFixed(0)} ms, p99 ${p99.at(-1)!.toFixed(0)} ms; ` +
          `CPU per message: bridge ${cpu[0]!.toFixed(2)} ms, simulator ${cpu[1]!.toFixed(2)} ms`,
      );
    } finally {
      await close();
    }
  }
  return {
    ...base,
    requestsPerMessage: figure(requestsPerMessage, "req/msg"),
    rate: figure(rates, "msg/s"),
    p50: figure(p50, "ms"),
    p99: figure(p99, "ms"),
    hostCpuPerMessage: figure(hostCpu, "ms"),
    simCpuPerMessage: figure(simCpu, "ms"),
    breakdown,
  };
}
