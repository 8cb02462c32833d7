/**
 * Scale of one process: the same routing (ingest → outbox → dispatcher → ChatwootApi → simulator, SQLite WAL) with
 * 1, 100 and 1,000 active integrations sharing one dispatcher (its fair share between integrations is always on:
 * a claim leaves out the integrations already holding their share of `concurrency`), and the memory of 10,000 idle
 * integrations (the realtime host of `realtime.ts`, one shared token user).
 */
import { activationBody, benchBridge, messageId, openStore, textEvent } from "./fixtures.js";
import type { Child } from "./rpc.js";
import type { SimHostMethods } from "./sim-host.js";
import { type Figure, figure, now, percentile, pool, sleep, waitUntil } from "./stats.js";

export interface ScaleConfig {
  runs: number;
  /** Active integrations per scenario (the 1, 100 and 1,000). */
  integrations: number[];
  /** Messages per burst, spread round-robin over every chat of every integration. */
  messages: number;
  /** Chats in all (at least one per integration). */
  chats: number;
  /** Paced run: messages and rate, for the p99 of a steady load. */
  pacedMessages: number;
  pacedRate: number;
  concurrency: number;
  pollIntervalMs: number;
  ingestConcurrency: number;
  activationConcurrency: number;
}

export interface ScaleResult {
  integrations: number;
  chats: number;
  messages: number;
  routing: Figure;
  burstP99: Figure;
  pacedDelivered: Figure;
  pacedP99: Figure;
  activationMs: Figure;
}

type Sim = Child<SimHostMethods>;

async function stored(sim: Sim, count: number, what: string) {
  await waitUntil(
    async () => (await sim.call("storedCount")) >= count,
    what,
    Number(process.env.BENCH_WAIT_MS ?? 300_000),
    20,
  );
}

function latencies(sim: Sim, ids: string[], ingestAt: Float64Array, times: Map<string, number>) {
  const values = new Float64Array(ids.length);
  let last = 0;
  for (let i = 0; i < ids.length; i++) {
    const at = times.get(ids[i]!);
    if (at === undefined) throw new Error(`message ${ids[i]} was not stored`);
    const parentAt = sim.toParentTime(at);
    values[i] = parentAt - ingestAt[i]!;
    if (parentAt > last) last = parentAt;
  }
  return { values, last };
}

async function runOnce(sim: Sim, integrations: number, config: ScaleConfig) {
  const opened = await openStore("sqlite-wal");
  if ("unreachable" in opened) throw new Error(opened.unreachable);
  const instances = Array.from({ length: integrations }, (_, i) => `scale${i}`);
  const { handle, url } = await sim.call("start", {});
  const bridge = benchBridge(opened.store, instances, {
    dispatcher: { concurrency: config.concurrency, pollIntervalMs: config.pollIntervalMs },
  });
  try {
    const admin = await sim.call("createAccountWithAdmin", handle, "Scale");
    await bridge.start();
    const activationStart = now();
    await pool(integrations, config.activationConcurrency, async (i) => {
      const result = await bridge.activate(instances[i]!, activationBody(url, admin, `Scale ${i}`));
      if (result.status !== "active")
        throw new Error(`activation of ${instances[i]} failed: ${result.error}`);
    });
    const activationMs = now() - activationStart;
    const perIntegration = Math.max(1, Math.ceil(config.chats / integrations));
    const chats = Array.from({ length: integrations * perIntegration }, (_, k) => ({
      instance: instances[k % integrations]!,
      customer: k,
    }));
    // Pre-warm: one message per chat, so that the measured messages all go to known chats.
    await sim.call("resetStored");
    await pool(chats.length, 16, async (k) => {
      await bridge.ingest(chats[k]!.instance, textEvent(messageId(), chats[k]!.customer, "hello"));
    });
    await stored(sim, chats.length, "the pre-warm messages");

    const burst = async (count: number, rate: number | null) => {
      await sim.call("resetStored");
      const ids = Array.from({ length: count }, () => messageId());
      const ingestAt = new Float64Array(count);
      const started = now();
      if (rate === null) {
        await pool(count, config.ingestConcurrency, async (i) => {
          const chat = chats[i % chats.length]!;
          ingestAt[i] = now();
          await bridge.ingest(chat.instance, textEvent(ids[i]!, chat.customer, `scale message ${i}`));
        });
      } else {
        const inFlight: Promise<unknown>[] = [];
        for (let i = 0; i < count; i++) {
          const wait = started + (i * 1000) / rate - now();
          if (wait >= 1) await sleep(Math.floor(wait));
          const chat = chats[i % chats.length]!;
          ingestAt[i] = now();
          inFlight.push(bridge.ingest(chat.instance, textEvent(ids[i]!, chat.customer, `paced ${i}`)));
        }
        await Promise.all(inFlight);
      }
      await stored(sim, count, `${count} messages over ${integrations} integrations`);
      const { values, last } = latencies(sim, ids, ingestAt, await sim.call("storedTimes"));
      return { rate: count / ((last - started) / 1000), p99: percentile(values, 99) };
    };
    const measured = await burst(config.messages, null);
    const paced = await burst(config.pacedMessages, config.pacedRate);
    return { activationMs, chats: chats.length, measured, paced };
  } finally {
    await bridge.stop();
    await opened.close();
    await sim.call("stop", handle);
  }
}

export async function benchScale(
  sim: Sim,
  config: ScaleConfig,
  log: (line: string) => void,
): Promise<ScaleResult[]> {
  const results: ScaleResult[] = [];
  for (const integrations of config.integrations) {
    const values = { routing: [] as number[], burstP99: [] as number[], delivered: [] as number[] };
    const pacedP99: number[] = [];
    const activation: number[] = [];
    let chats = 0;
    for (let run = 1; run <= config.runs; run++) {
      const once = await runOnce(sim, integrations, config);
      chats = once.chats;
      values.routing.push(once.measured.rate);
      values.burstP99.push(once.measured.p99);
      values.delivered.push(once.paced.rate);
      pacedP99.push(once.paced.p99);
      activation.push(once.activationMs);
      log(
        `  ${integrations} active integrations (${once.chats} chats) run ${run}/${config.runs}: ` +
          `${once.measured.rate.toFixed(0)} msg/s, burst p99 ${once.measured.p99.toFixed(0)} ms; ` +
          `paced ${config.pacedRate}/s: delivered ${once.paced.rate.toFixed(0)} msg/s, p99 ${once.paced.p99.toFixed(1)} ms`,
      );
    }
    results.push({
      integrations,
      chats,
      messages: config.messages,
      routing: figure(values.routing, "msg/s"),
      burstP99: figure(values.burstP99, "ms"),
      pacedDelivered: figure(values.delivered, "msg/s"),
      pacedP99: figure(pacedP99, "ms"),
      activationMs: figure(activation, "ms"),
    });
  }
  return results;
}
