/**
 * 4. Realtime scale: one integration (one realtime hub) activates 1,000 instances, each with its own inbox,
 * either all under one Chatwoot token user (one account) or under 1,000 distinct token users (one account
 * each, as 1,000 tenants would be). Reports the sockets opened, the RSS growth of the integration's process,
 * and the time from an agent's reply in Chatwoot to the WhatsApp send. Each run starts a fresh process and
 * a fresh simulator.
 */
import type { RealtimeHostMethods } from "./realtime-host.js";
import { type Child, spawnChild } from "./rpc.js";
import type { SimHostMethods } from "./sim-host.js";
import { type Figure, figure, percentile, sleep, waitUntil } from "./stats.js";

export type RealtimeScenario = "shared" | "distinct";

export interface RealtimeConfig {
  runs: number;
  integrations: number;
  /** Agent replies per run for the latency figures, one every `replyIntervalMs`. */
  replies: number;
  replyIntervalMs: number;
  activationConcurrency: number;
  scenarios: RealtimeScenario[];
}

export interface RealtimeResult {
  scenario: RealtimeScenario;
  integrations: number;
  replies: number;
  sockets: Figure;
  rssGrowthMb: Figure;
  rssPerIntegrationKb: Figure;
  heapGrowthMb: Figure;
  activationMs: Figure;
  replyP50: Figure;
  replyP99: Figure;
  /** The realtime leg: reply created in Chatwoot → queued in the outbox. */
  queueP50: Figure;
  queueP99: Figure;
  /** The dispatch leg: queued → WhatsApp send. */
  sendP50: Figure;
  sendP99: Figure;
  /** Longest event-loop stall during the replies, in the integration's process and in the simulator's. */
  hostLoopMax: Figure;
  simLoopMax: Figure;
}

const MB = 1024 * 1024;

async function runOnce(
  sim: Child<SimHostMethods>,
  scenario: RealtimeScenario,
  config: RealtimeConfig,
  run: number,
) {
  const { handle, url } = await sim.call("start", {});
  const host = await spawnChild<RealtimeHostMethods>("realtime-host.ts");
  try {
    const warm = await sim.call("createAccountWithAdmin", handle, "Warm-up");
    const shared = scenario === "shared" ? await sim.call("createAccountWithAdmin", handle, "Shared") : null;
    const resolved = shared
      ? Array.from({ length: config.integrations }, () => shared)
      : await sim.call("createAccountsWithAdmins", handle, "Tenant", config.integrations);
    await host.call("setup", { url, count: config.integrations, warm });
    const socketsBefore = await sim.call("cableConnections", handle);
    const before = await host.call("memory");
    const activation = await host.call("activateAll", resolved, config.activationConcurrency);
    if (activation.failed > 0)
      throw new Error(`${activation.failed} activations failed, e.g. ${activation.failures.join("; ")}`);
    await sleep(200);
    const after = await host.call("memory");
    const sockets = (await sim.call("cableConnections", handle)) - socketsBefore;

    // Agent replies: first a customer message in `replies` of the instances opens their conversations.
    const step = config.integrations / config.replies;
    const chosen = Array.from({ length: config.replies }, (_, k) => Math.floor(k * step));
    await sim.call("resetStored");
    await host.call("ingestOne", chosen);
    await waitUntil(async () => (await sim.call("storedCount")) >= chosen.length, "the customer messages");
    const accounts = [...new Set(chosen.map((index) => resolved[index]!.accountId))];
    const conversations = await sim.call("conversationsOf", handle, accounts);
    const userOf = new Map(resolved.map((target) => [target.accountId, target.userId]));
    const replies = conversations.map((conversation, k) => ({
      accountId: conversation.accountId,
      conversationId: conversation.id,
      userId: userOf.get(conversation.accountId)!,
      content: `agent reply ${run}-${k}`,
    }));
    if (replies.length !== config.replies)
      throw new Error(`expected ${config.replies} conversations, found ${replies.length}`);
    await host.call("loopDelay", true);
    await sim.call("loopDelay", true);
    await sim.call("clearRequests", handle);
    const posted = await sim.call("postAgentReplies", handle, replies, config.replyIntervalMs);
    const texts = posted.map((entry) => entry.content);
    let sent: Array<number | undefined> = [];
    await waitUntil(
      async () => {
        sent = await host.call("sendTimes", texts);
        return sent.every((at) => at !== undefined);
      },
      "the agent replies to reach the gateway",
      60_000,
      50,
    );
    const hostLoop = await host.call("loopDelay", false);
    const simLoop = await sim.call("loopDelay", false);
    const latencies = posted.map((entry, k) => host.toParentTime(sent[k]!) - sim.toParentTime(entry.at));
    const queued = await host.call(
      "queuedTimes",
      posted.map((entry) => entry.messageId),
    );
    const toQueue = posted.map(
      (entry, k) => host.toParentTime(queued[k] ?? Number.NaN) - sim.toParentTime(entry.at),
    );
    const toSend = posted.map((_, k) => sent[k]! - (queued[k] ?? Number.NaN));
    return {
      sockets,
      rssGrowth: after.rss - before.rss,
      heapGrowth: after.heapUsed - before.heapUsed,
      activationMs: activation.ms,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      queueP50: percentile(toQueue, 50),
      queueP99: percentile(toQueue, 99),
      sendP50: percentile(toSend, 50),
      sendP99: percentile(toSend, 99),
      hostLoopMax: hostLoop.max,
      simLoopMax: simLoop.max,
    };
  } finally {
    await host.close();
    await sim.call("stop", handle);
  }
}

export async function benchRealtime(
  sim: Child<SimHostMethods>,
  config: RealtimeConfig,
  log: (line: string) => void,
): Promise<RealtimeResult[]> {
  const results: RealtimeResult[] = [];
  for (const scenario of config.scenarios) {
    const runs: Array<Awaited<ReturnType<typeof runOnce>>> = [];
    for (let run = 1; run <= config.runs; run++) {
      const result = await runOnce(sim, scenario, config, run);
      runs.push(result);
      log(
        `  ${scenario} token user${scenario === "shared" ? "" : "s"} run ${run}/${config.runs}: ` +
          `${result.sockets} socket(s), RSS +${(result.rssGrowth / MB).toFixed(1)} MB, ` +
          `activation ${(result.activationMs / 1000).toFixed(1)} s, reply→send p50 ${result.p50.toFixed(1)} ms, ` +
          `p99 ${result.p99.toFixed(1)} ms (reply → outbox p50/p99 ${result.queueP50.toFixed(1)}/${result.queueP99.toFixed(1)} ms, ` +
          `outbox → send ${result.sendP50.toFixed(1)}/${result.sendP99.toFixed(1)} ms; longest event-loop stall: ` +
          `integration ${result.hostLoopMax.toFixed(0)} ms, simulator ${result.simLoopMax.toFixed(0)} ms)`,
      );
    }
    results.push({
      scenario,
      integrations: config.integrations,
      replies: config.replies,
      sockets: figure(
        runs.map((r) => r.sockets),
        "",
      ),
      rssGrowthMb: figure(
        runs.map((r) => r.rssGrowth / MB),
        "MB",
      ),
      rssPerIntegrationKb: figure(
        runs.map((r) => r.rssGrowth / 1024 / config.integrations),
        "KB",
      ),
      heapGrowthMb: figure(
        runs.map((r) => r.heapGrowth / MB),
        "MB",
      ),
      activationMs: figure(
        runs.map((r) => r.activationMs),
        "ms",
      ),
      replyP50: figure(
        runs.map((r) => r.p50),
        "ms",
      ),
      replyP99: figure(
        runs.map((r) => r.p99),
        "ms",
      ),
      queueP50: figure(
        runs.map((r) => r.queueP50),
        "ms",
      ),
      queueP99: figure(
        runs.map((r) => r.queueP99),
        "ms",
      ),
      sendP50: figure(
        runs.map((r) => r.sendP50),
        "ms",
      ),
      sendP99: figure(
        runs.map((r) => r.sendP99),
        "ms",
      ),
      hostLoopMax: figure(
        runs.map((r) => r.hostLoopMax),
        "ms",
      ),
      simLoopMax: figure(
        runs.map((r) => r.simLoopMax),
        "ms",
      ),
    });
  }
  return results;
}
