/**
 * 1. Routing throughput against the physical limit. Text messages from known chats go the full path (ingest,
 * outbox, dispatcher, ChatwootApi, simulator); the direct baseline sends the same message creates straight to
 * the same simulator with a plain undici loop at the dispatcher's concurrency. Both batches of a run hit the
 * same simulator one after the other, so every ratio compares figures of the same run.
 */
import type { ChatwootBridge } from "@ryze/chatwoot-core";
import { Agent, request } from "undici";
import {
  BACKEND_LABEL,
  type Backend,
  messageId,
  type OpenedStore,
  openStore,
  startActivated,
  textEvent,
} from "./fixtures.js";
import { QUEUE_LABEL, type QueueKind, queueRun } from "./queues.js";
import type { Child } from "./rpc.js";
import type { SimHostMethods } from "./sim-host.js";
import {
  cpuMs,
  type Figure,
  figure,
  machineCpuMs,
  now,
  percentile,
  pool,
  sleep,
  waitUntil,
} from "./stats.js";

export interface RoutingConfig {
  runs: number;
  /** Known chats the messages are spread over (pre-warmed). */
  chats: number;
  backends: Backend[];
  /** Messages per burst run, routed and direct alike (the size: 10,000). */
  messages: number;
  /** Paced run: messages per run at `pacedRate`. */
  pacedMessages: number;
  pacedRate: number;
  /** Dispatcher tuning (the direct baseline uses the same concurrency). */
  concurrency: number;
  pollIntervalMs: number;
  /** How many `ingest` calls the host has in flight at once. */
  ingestConcurrency: number;
  /** The job-queue pipelines raced in the same runs (`bench/queues.ts`). */
  queues?: QueueKind[];
}

export interface PacedResult {
  rate: number;
  messages: number;
  /** Rate at which ingest was actually called (the pacer's accuracy). */
  offered: Figure;
  p50: Figure;
  p99: Figure;
  /** Messages per second stored over the paced run (below `rate` when routing cannot keep up). */
  delivered: Figure;
  requestsPerMessage: Figure;
  /** The realtime link's periodic requests during the paced run (see `PERIODIC_REQUESTS`). */
  periodicRequests?: Figure;
}

export interface RoutingResult {
  /** A store of the routing, or a job queue of the race. */
  backend: Backend | QueueKind;
  label: string;
  skipped?: string;
  messages: number;
  chats: number;
  /** Time to pre-warm the chats (100 cold messages). */
  warmup?: Figure;
  routing?: Figure;
  direct?: Figure;
  ratio?: Figure;
  /** Ingest-to-stored latency of the burst (queueing included). */
  burstP50?: Figure;
  burstP99?: Figure;
  /** How long the burst's `ingest` calls took (the outbox write side alone). */
  ingestRate?: Figure;
  requestsPerMessage?: Figure;
  /** The realtime link's periodic requests during the burst (see `PERIODIC_REQUESTS`), not per message. */
  periodicRequests?: Figure;
  /** CPU time per routed message of the benchmark process (bridge and store) and of the simulator. */
  hostCpuPerMessage?: Figure;
  simCpuPerMessage?: Figure;
  /** CPU time per message of the whole machine (every process: bridge, simulator, database), routed and direct. */
  machineCpuPerMessage?: Figure;
  directMachineCpuPerMessage?: Figure;
  breakdown?: Record<string, number>;
  paced?: PacedResult;
}

type Sim = Child<SimHostMethods>;

/**
 * Requests the bridge makes on a clock, not per message: the realtime link's check of its Chatwoot user (`GET
 * /api/v1/profile`, one per token user in each ownership round of 5 s, `hub.verify`, docs/operations.md). Counted
 * apart, so that "requests per message" says what a message costs; the report shows both.
 */
export const PERIODIC_REQUESTS = new Set(["GET /api/v1/profile"]);

/** A run's requests (the simulator's breakdown by route) split into the messages' own and the periodic ones. */
export function splitRequests(breakdown: Record<string, number>): { routed: number; periodic: number } {
  let routed = 0;
  let periodic = 0;
  for (const [route, count] of Object.entries(breakdown)) {
    if (PERIODIC_REQUESTS.has(route)) periodic += count;
    else routed += count;
  }
  return { routed, periodic };
}

interface Session {
  sim: Sim;
  handle: number;
  url: string;
  accountId: number;
  accessToken: string;
  bridge: ChatwootBridge;
  opened: OpenedStore;
  integrationId: string;
  /** Conversation display id of each chat, in chat order. */
  conversations: number[];
  config: RoutingConfig;
  warmupMs: number;
  close(): Promise<void>;
}

const INSTANCE = "bench";

const perMessage = (start: number | null, end: number | null, count: number) =>
  start === null || end === null ? null : (end - start) / count;

async function waitStored(
  sim: Sim,
  count: number,
  what: string,
  timeoutMs = Number(process.env.BENCH_WAIT_MS ?? 300_000),
): Promise<void> {
  await waitUntil(async () => (await sim.call("storedCount")) >= count, what, timeoutMs, 20);
}

async function waitOutboxIdle(session: Session): Promise<void> {
  await waitUntil(
    async () => {
      const counts = await session.opened.store.outbox.count(session.integrationId);
      return counts.pending + counts.claimed === 0;
    },
    "the outbox to drain",
    60_000,
    20,
  );
}

/** Latency of each message: stored (simulator clock, corrected) minus the moment `ingest` was called. */
function latencies(sim: Sim, ids: string[], ingestAt: Float64Array, stored: Map<string, number>) {
  const values = new Float64Array(ids.length);
  let last = 0;
  for (let i = 0; i < ids.length; i++) {
    const at = stored.get(ids[i]!);
    if (at === undefined) throw new Error(`message ${ids[i]} was not stored`);
    const parentAt = sim.toParentTime(at);
    values[i] = parentAt - ingestAt[i]!;
    if (parentAt > last) last = parentAt;
  }
  return { values, last };
}

/**
 * The direct baseline on a fresh simulator seeded like a pre-warmed one (the chats' conversations, one message
 * each): `count` message creates from a plain undici loop, `concurrency` at a time.
 */
async function directRun(
  sim: Sim,
  config: RoutingConfig,
  count: number,
): Promise<{ rate: number; machineCpu: number | null }> {
  const { handle, url } = await sim.call("start", {});
  const agent = new Agent({ connections: config.concurrency, keepAliveTimeout: 30_000 });
  try {
    const seeded = await sim.call("seedConversations", handle, config.chats);
    const post = async (conversation: number, body: string) => {
      const response = await request(
        `${url}/api/v1/accounts/${seeded.accountId}/conversations/${conversation}/messages`,
        {
          method: "POST",
          dispatcher: agent,
          headers: {
            api_access_token: seeded.accessToken,
            accept: "application/json",
            "content-type": "application/json",
          },
          body,
        },
      );
      const text = await response.body.text();
      if (response.statusCode !== 200)
        throw new Error(`direct create answered ${response.statusCode}: ${text}`);
      JSON.parse(text);
    };
    const body = (text: string) =>
      JSON.stringify({
        content: text,
        message_type: "incoming",
        private: false,
        source_id: `WAID:${messageId()}`,
      });
    // The same state as after a routing pre-warm: one message in each conversation.
    await pool(seeded.conversations.length, 8, (i) => post(seeded.conversations[i]!, body("hello")));
    const bodies = Array.from({ length: count }, (_, i) => body(`direct message ${i}`));
    const machineStart = machineCpuMs();
    const started = now();
    await pool(count, config.concurrency, (i) =>
      post(seeded.conversations[i % seeded.conversations.length]!, bodies[i]!),
    );
    const rate = count / ((now() - started) / 1000);
    return { rate, machineCpu: perMessage(machineStart, machineCpuMs(), count) };
  } finally {
    await agent.close();
    await sim.call("stop", handle);
  }
}

/**
 * Diagnosis only (BENCH_COUNT_QUERIES=1): counts the SQL statements the store sends while `body` runs, by
 * statement shape (values stripped), so the log shows statements and transactions per routed message.
 */
async function countingQueries<T>(session: Session, count: number, body: () => Promise<T>): Promise<T> {
  if (!process.env.BENCH_COUNT_QUERIES) return body();
  const shapes = new Map<string, number>();
  const spent = new Map<string, number>();
  const started = new Map<string, { shape: string; at: number }>();
  const listener = (query: { sql?: string; __knexQueryUid?: string }) => {
    const shape = String(query.sql ?? "")
      .replace(/\$\d+|\?/g, "?")
      .replace(/(\?, )+\?/g, "?…")
      .slice(0, 150);
    shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
    if (query.__knexQueryUid) started.set(query.__knexQueryUid, { shape, at: now() });
  };
  const answered = (_response: unknown, query: { __knexQueryUid?: string }) => {
    const start = query.__knexQueryUid ? started.get(query.__knexQueryUid) : undefined;
    if (!start) return;
    started.delete(query.__knexQueryUid!);
    spent.set(start.shape, (spent.get(start.shape) ?? 0) + now() - start.at);
  };
  session.opened.knex.on("query", listener);
  session.opened.knex.on("query-response", answered);
  session.opened.knex.on("query-error", answered);
  try {
    return await body();
  } finally {
    session.opened.knex.off("query", listener);
    session.opened.knex.off("query-response", answered);
    session.opened.knex.off("query-error", answered);
    const total = [...shapes.values()].reduce((a, b) => a + b, 0);
    const begins = [...shapes.entries()]
      .filter(([shape]) => /^begin/i.test(shape))
      .reduce((a, [, n]) => a + n, 0);
    console.log(
      `  [queries] ${session.opened.backend}: ${(total / count).toFixed(2)} statements/msg, ` +
        `${(begins / count).toFixed(2)} transactions/msg`,
    );
    for (const [shape, n] of [...shapes.entries()].sort((a, b) => b[1] - a[1]))
      console.log(
        `    ${(n / count).toFixed(3)}/msg ${(((spent.get(shape) ?? 0) / n) * 1000).toFixed(0).padStart(5)} µs  ${shape}`,
      );
  }
}

async function routingBatch(session: Session, count: number) {
  return countingQueries(session, count, () => routingBatchBody(session, count));
}

async function routingBatchBody(session: Session, count: number) {
  const { sim, handle, bridge, config } = session;
  await sim.call("clearRequests", handle);
  await sim.call("resetStored");
  const ids = Array.from({ length: count }, () => messageId());
  const events = ids.map((id, i) => textEvent(id, i % config.chats, `routed message ${i}`));
  const ingestAt = new Float64Array(count);
  const cpuStart = [cpuMs(), await sim.call("cpuMs")] as const;
  const machineStart = machineCpuMs();
  const started = now();
  await pool(count, config.ingestConcurrency, async (i) => {
    ingestAt[i] = now();
    await bridge.ingest(INSTANCE, events[i]!);
  });
  const ingested = now();
  await waitStored(sim, count, `${count} routed messages`);
  const machineCpu = perMessage(machineStart, machineCpuMs(), count);
  const stored = await sim.call("storedTimes");
  const { values, last } = latencies(sim, ids, ingestAt, stored);
  await waitOutboxIdle(session);
  const hostCpu = (cpuMs() - cpuStart[0]) / count;
  const simCpu = ((await sim.call("cpuMs")) - cpuStart[1]) / count;
  const breakdown = await sim.call("requestBreakdown", handle);
  const requests = splitRequests(breakdown);
  return {
    rate: count / ((last - started) / 1000),
    ingestRate: count / ((ingested - started) / 1000),
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    requestsPerMessage: requests.routed / count,
    periodicRequests: requests.periodic,
    hostCpu,
    simCpu,
    machineCpu,
    breakdown,
  };
}

async function pacedBatch(session: Session, count: number, rate: number) {
  const { sim, handle, bridge, config } = session;
  await sim.call("clearRequests", handle);
  await sim.call("resetStored");
  const ids = Array.from({ length: count }, () => messageId());
  const events = ids.map((id, i) => textEvent(id, i % config.chats, `paced message ${i}`));
  const ingestAt = new Float64Array(count);
  const interval = 1000 / rate;
  const failures: unknown[] = [];
  const inFlight: Promise<unknown>[] = [];
  const started = now();
  for (let i = 0; i < count; i++) {
    const wait = started + i * interval - now();
    if (wait >= 1) await sleep(Math.floor(wait));
    ingestAt[i] = now();
    inFlight.push(bridge.ingest(INSTANCE, events[i]!).catch((error: unknown) => failures.push(error)));
  }
  await Promise.all(inFlight);
  if (failures.length > 0) throw new Error(`paced ingest failed: ${String(failures[0])}`);
  const offered = count / ((ingestAt[count - 1]! - ingestAt[0]!) / 1000);
  await waitStored(sim, count, `${count} paced messages`);
  const stored = await sim.call("storedTimes");
  const { values, last } = latencies(sim, ids, ingestAt, stored);
  await waitOutboxIdle(session);
  const requests = splitRequests(await sim.call("requestBreakdown", handle));
  return {
    offered,
    delivered: count / ((last - ingestAt[0]!) / 1000),
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    requestsPerMessage: requests.routed / count,
    periodicRequests: requests.periodic,
  };
}

/** A fresh simulator and store, the bridge activated, and every chat pre-warmed. */
async function openSession(
  sim: Sim,
  backend: Backend,
  config: RoutingConfig,
): Promise<Session | { unreachable: string }> {
  const opened = await openStore(backend);
  if ("unreachable" in opened) return opened;
  const { handle, url, admin, bridge, integrationId, close } = await startActivated(
    sim,
    opened,
    INSTANCE,
    "Routing",
    {
      concurrency: config.concurrency,
      pollIntervalMs: config.pollIntervalMs,
    },
  );
  try {
    // Pre-warm: one message per chat creates its contact and conversation, so the runs see known chats only.
    const warmStart = now();
    await sim.call("resetStored");
    await pool(config.chats, 8, async (chat) => {
      await bridge.ingest(INSTANCE, textEvent(messageId(), chat, "hello"));
    });
    await waitStored(sim, config.chats, "the pre-warm messages");
    const warmupMs = now() - warmStart;
    const conversations = await sim.call("conversationIds", handle, admin.accountId);
    if (conversations.length !== config.chats)
      throw new Error(`expected ${config.chats} conversations, found ${conversations.length}`);
    const session: Session = {
      sim,
      handle,
      url,
      accountId: admin.accountId,
      accessToken: admin.accessToken,
      bridge,
      opened,
      integrationId,
      conversations,
      config,
      warmupMs,
      close,
    };
    await waitOutboxIdle(session);
    return session;
  } catch (error) {
    await close();
    throw error;
  }
}

/** What one store's runs collected, figure by figure. */
class BackendRuns {
  readonly values = new Map<string, number[]>();
  breakdown: Record<string, number> = {};
  skipped: string | undefined;

  constructor(
    readonly backend: Backend | QueueKind,
    readonly config: RoutingConfig,
  ) {}

  push(name: string, value: number | null): void {
    if (value === null) return;
    this.values.set(name, [...(this.values.get(name) ?? []), value]);
  }

  figure(name: string, unit: string): Figure | undefined {
    const values = this.values.get(name);
    return values && values.length > 0 ? figure(values, unit) : undefined;
  }

  result(): RoutingResult {
    const base = {
      backend: this.backend,
      label:
        this.backend in QUEUE_LABEL
          ? QUEUE_LABEL[this.backend as QueueKind]
          : BACKEND_LABEL[this.backend as Backend],
      messages: this.config.messages,
      chats: this.config.chats,
    };
    if (this.skipped !== undefined) return { ...base, skipped: this.skipped };
    const f = (name: string, unit: string) => this.figure(name, unit)!;
    return {
      ...base,
      warmup: f("warmup", "ms"),
      routing: f("routing", "msg/s"),
      direct: f("direct", "msg/s"),
      ratio: f("ratio", "×"),
      burstP50: f("burstP50", "ms"),
      burstP99: f("burstP99", "ms"),
      ingestRate: f("ingestRate", "msg/s"),
      requestsPerMessage: f("requestsPerMessage", "req/msg"),
      periodicRequests: this.figure("periodicRequests", "requests"),
      hostCpuPerMessage: f("hostCpu", "ms"),
      simCpuPerMessage: f("simCpu", "ms"),
      machineCpuPerMessage: this.figure("machineCpu", "ms"),
      directMachineCpuPerMessage: this.figure("directMachineCpu", "ms"),
      breakdown: this.breakdown,
      paced: !this.values.has("pacedOffered")
        ? undefined
        : {
            rate: this.config.pacedRate,
            messages: this.config.pacedMessages,
            offered: f("pacedOffered", "msg/s"),
            delivered: f("pacedDelivered", "msg/s"),
            p50: f("pacedP50", "ms"),
            p99: f("pacedP99", "ms"),
            requestsPerMessage: f("pacedRequests", "req/msg"),
            periodicRequests: this.figure("pacedPeriodic", "requests"),
          },
    };
  }
}

/** One run of one store: a fresh simulator, store and pre-warm, the burst, then the paced run. */
async function runOnce(
  sim: Sim,
  runs: BackendRuns,
  run: number,
  direct: { rate: number; machineCpu: number | null },
  log: (line: string) => void,
): Promise<void> {
  const { config } = runs;
  const backend = runs.backend as Backend;
  const label = BACKEND_LABEL[backend];
  const session = await openSession(sim, backend, config);
  if ("unreachable" in session) {
    log(`  SKIPPED ${label}: ${session.unreachable}`);
    runs.skipped = session.unreachable;
    return;
  }
  try {
    runs.push("warmup", session.warmupMs);
    const burst = await routingBatch(session, config.messages);
    runs.push("direct", direct.rate);
    runs.push("directMachineCpu", direct.machineCpu);
    runs.push("routing", burst.rate);
    runs.push("ratio", burst.rate / direct.rate);
    runs.push("burstP50", burst.p50);
    runs.push("burstP99", burst.p99);
    runs.push("ingestRate", burst.ingestRate);
    runs.push("requestsPerMessage", burst.requestsPerMessage);
    runs.push("periodicRequests", burst.periodicRequests);
    runs.push("hostCpu", burst.hostCpu);
    runs.push("simCpu", burst.simCpu);
    runs.push("machineCpu", burst.machineCpu);
    runs.breakdown = burst.breakdown;
    const pace = await pacedBatch(session, config.pacedMessages, config.pacedRate);
    runs.push("pacedOffered", pace.offered);
    runs.push("pacedDelivered", pace.delivered);
    runs.push("pacedP50", pace.p50);
    runs.push("pacedP99", pace.p99);
    runs.push("pacedRequests", pace.requestsPerMessage);
    runs.push("pacedPeriodic", pace.periodicRequests);
    const machine =
      burst.machineCpu !== null && direct.machineCpu !== null
        ? `; machine CPU/msg ${burst.machineCpu.toFixed(2)} ms routed, ${direct.machineCpu.toFixed(2)} ms direct`
        : "";
    log(
      `  ${label} run ${run}/${config.runs}: routing ${burst.rate.toFixed(0)} msg/s, ` +
        `direct ${direct.rate.toFixed(0)} msg/s, ratio ${(burst.rate / direct.rate).toFixed(3)}, ` +
        `${burst.requestsPerMessage.toFixed(3)} req/msg, burst p50/p99 ${burst.p50.toFixed(0)}/${burst.p99.toFixed(0)} ms; ` +
        `CPU/msg ${burst.hostCpu.toFixed(2)} ms (bridge) ${burst.simCpu.toFixed(2)} ms (simulator)${machine}; ` +
        `paced ${config.pacedRate}/s: delivered ${pace.delivered.toFixed(0)} msg/s, ` +
        `p50 ${pace.p50.toFixed(1)} ms, p99 ${pace.p99.toFixed(1)} ms`,
    );
  } finally {
    await session.close();
  }
}

/** JIT warm-up of both processes and every code path (one direct run, one routed batch); nothing is recorded. */
export async function warmUpRouting(
  sim: Sim,
  config: RoutingConfig,
  count: number,
  log: (line: string) => void,
): Promise<void> {
  const started = now();
  await directRun(sim, config, count);
  // On SQLite WAL, or on the only store selected (so that a profile of one store shows that store alone).
  const backend = config.backends.includes("sqlite-wal")
    ? "sqlite-wal"
    : (config.backends[0] ?? "sqlite-wal");
  const session = await openSession(sim, backend, config);
  if ("unreachable" in session) return;
  try {
    await routingBatch(session, count);
  } finally {
    await session.close();
  }
  log(
    `  warm-up (not recorded): ${count} direct and ${count} routed messages in ${((now() - started) / 1000).toFixed(1)} s`,
  );
}

/**
 * Each run measures the direct baseline once, then routes the same number of messages through every store, each
 * on a fresh simulator, store and pre-warm: every store's ratio of a run is to that run's baseline.
 */
export async function benchRouting(
  sim: Sim,
  config: RoutingConfig,
  log: (line: string) => void,
): Promise<{ stores: RoutingResult[]; queues: RoutingResult[] }> {
  const all = config.backends.map((backend) => new BackendRuns(backend, config));
  const queues = (config.queues ?? []).map((kind) => new BackendRuns(kind, config));
  for (let run = 1; run <= config.runs; run++) {
    const direct = await directRun(sim, config, config.messages);
    for (const runs of all) if (runs.skipped === undefined) await runOnce(sim, runs, run, direct, log);
    for (const runs of queues) if (runs.skipped === undefined) await queueOnce(sim, runs, run, direct, log);
  }
  return { stores: all.map((runs) => runs.result()), queues: queues.map((runs) => runs.result()) };
}

/** One run of a job-queue pipeline of the race, on a fresh simulator, against the same run's direct baseline. */
async function queueOnce(
  sim: Sim,
  runs: BackendRuns,
  run: number,
  direct: { rate: number; machineCpu: number | null },
  log: (line: string) => void,
): Promise<void> {
  const kind = runs.backend as QueueKind;
  const { config } = runs;
  const result = await queueRun(sim, kind, config, config.messages);
  if ("unreachable" in result) {
    log(`  SKIPPED ${QUEUE_LABEL[kind]}: ${result.unreachable}`);
    runs.skipped = result.unreachable;
    return;
  }
  runs.push("warmup", 0);
  runs.push("direct", direct.rate);
  runs.push("directMachineCpu", direct.machineCpu);
  runs.push("routing", result.rate);
  runs.push("ratio", result.rate / direct.rate);
  runs.push("burstP50", result.p50);
  runs.push("burstP99", result.p99);
  runs.push("ingestRate", result.rate);
  runs.push("requestsPerMessage", result.requestsPerMessage);
  runs.push("hostCpu", result.hostCpu);
  runs.push("simCpu", result.simCpu);
  runs.push("machineCpu", result.machineCpu);
  log(
    `  ${QUEUE_LABEL[kind]} run ${run}/${config.runs}: ${result.rate.toFixed(0)} msg/s, ` +
      `direct ${direct.rate.toFixed(0)} msg/s, ratio ${(result.rate / direct.rate).toFixed(3)}, ` +
      `p50/p99 ${result.p50.toFixed(0)}/${result.p99.toFixed(0)} ms; CPU/msg ${result.hostCpu.toFixed(2)} ms (host) ` +
      `${result.simCpu.toFixed(2)} ms (simulator)` +
      (result.machineCpu === null ? "" : `; machine CPU/msg ${result.machineCpu.toFixed(2)} ms`),
  );
}
