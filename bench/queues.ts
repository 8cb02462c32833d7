/**
 * The race users would run: the pipeline they would build instead of the library's routing, ingest → job queue →
 * worker → Chatwoot message create, on the job queues they would pick, against the same simulator with the same
 * ChatwootApi and the same concurrency as the routing runs.
 *
 * - BullMQ on the machine's Redis (127.0.0.1:6379): `Queue.add` per ingested message, a `Worker` with
 *   `concurrency` jobs in flight. Per-chat order is NOT kept: BullMQ's groups (one job at a time per group) are a
 *   BullMQ Pro feature, and at a concurrency above 1 the jobs of one chat run side by side.
 * - pg-boss 10 on PostgreSQL (127.0.0.1:5432, a database schema of its own; pg-boss 11+ needs Node 22):
 *   `send` per ingested message, one `work` handler fetching batches of `concurrency` jobs and running each batch
 *   side by side. Per-chat order is NOT kept either (a `standard` queue; the `singleton` policy keeps one active
 *   job per key but fetches at most one job per key per batch and is not what a throughput-minded user picks).
 *   pg-boss polls (at least every 0.5 s); the producer wakes the worker after each send (`notifyWorker`), which is
 *   what a host does to avoid paying the polling interval per batch.
 *
 * Both keep the chat → conversation map in memory (the routing reads it from its store) and skip the event's
 * validation: every shortcut favours the queues.
 */
import { createChatwootApi } from "@ryze/chatwoot-core/testing";
import { createTestDatabase } from "@ryze/chatwoot-testkit/databases";
import { Queue, Worker } from "bullmq";
import PgBoss from "pg-boss";
import { messageId } from "./fixtures.js";
import type { Child } from "./rpc.js";
import type { SimHostMethods } from "./sim-host.js";
import { cpuMs, machineCpuMs, now, percentile, pool, waitUntil } from "./stats.js";

export type QueueKind = "bullmq" | "pg-boss";

export const QUEUE_LABEL: Record<QueueKind, string> = {
  bullmq: "BullMQ 6 on Redis 127.0.0.1",
  "pg-boss": "pg-boss 10 on PostgreSQL 127.0.0.1",
};

interface Job {
  conversation: number;
  id: string;
  text: string;
}

export interface QueueRunResult {
  rate: number;
  p50: number;
  p99: number;
  requestsPerMessage: number;
  hostCpu: number;
  simCpu: number;
  machineCpu: number | null;
}

/** A started pipeline: `ingest` queues one message, `close` stops the worker and drops what it created. */
interface Pipeline {
  ingest(job: Job): Promise<void>;
  close(): Promise<void>;
}

type Handler = (job: Job) => Promise<void>;

const REDIS = { host: "127.0.0.1", port: 6379 };

async function startBullmq(name: string, concurrency: number, handle: Handler): Promise<Pipeline> {
  const queue = new Queue<Job>(name, { connection: REDIS });
  await queue.waitUntilReady();
  const worker = new Worker<Job>(name, (job) => handle(job.data), {
    connection: { ...REDIS, maxRetriesPerRequest: null },
    concurrency,
  });
  await worker.waitUntilReady();
  return {
    async ingest(job) {
      // As a host keeps a queue: finished jobs are not kept (Redis memory).
      await queue.add("message", job, { removeOnComplete: true, removeOnFail: 1000 });
    },
    async close() {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    },
  };
}

async function startPgBoss(name: string, concurrency: number, handle: Handler): Promise<Pipeline | string> {
  const database = await createTestDatabase("postgres", "cw_pgboss");
  if (!database) return "PostgreSQL at 127.0.0.1:5432 is unreachable";
  const boss = new PgBoss({
    connectionString: database.url,
    schema: database.name,
    max: 10,
    // The benchmark measures the pipeline, not pg-boss's maintenance.
    supervise: false,
    schedule: false,
  });
  boss.on("error", (error) => console.error(`pg-boss: ${String(error)}`));
  await boss.start();
  await boss.createQueue(name);
  const workerId = await boss.work<Job>(
    name,
    { batchSize: concurrency, pollingIntervalSeconds: 0.5 },
    async (jobs) => {
      await Promise.all(jobs.map((job) => handle(job.data)));
    },
  );
  return {
    async ingest(job) {
      await boss.send(name, job);
      boss.notifyWorker(workerId);
    },
    async close() {
      await boss.stop({ graceful: false, wait: true });
      await database.drop().catch(() => undefined);
    },
  };
}

/**
 * One run: a fresh simulator seeded with `chats` conversations, `count` messages ingested `ingestConcurrency` at a
 * time, round-robin over the chats, each created in Chatwoot by the queue's worker.
 */
export async function queueRun(
  sim: Child<SimHostMethods>,
  kind: QueueKind,
  config: { chats: number; concurrency: number; ingestConcurrency: number },
  count: number,
): Promise<QueueRunResult | { unreachable: string }> {
  const { handle, url } = await sim.call("start", {});
  const api = createChatwootApi();
  let pipeline: Pipeline | undefined;
  try {
    const seeded = await sim.call("seedConversations", handle, config.chats);
    const target = { baseUrl: url, apiToken: seeded.accessToken, accountId: seeded.accountId };
    const handler: Handler = async (job) => {
      await api.createMessage(target, job.conversation, {
        content: job.text,
        messageType: "incoming",
        sourceId: `WAID:${job.id}`,
      });
    };
    const name = `cwbench${Date.now().toString(36)}`;
    const started_ =
      kind === "bullmq"
        ? await startBullmq(name, config.concurrency, handler)
        : await startPgBoss(name, config.concurrency, handler);
    if (typeof started_ === "string") return { unreachable: started_ };
    pipeline = started_;
    const open = pipeline;
    // Warm-up: one message per conversation (the state after a routing pre-warm), not measured.
    await sim.call("resetStored");
    await pool(seeded.conversations.length, 8, (i) =>
      open.ingest({ conversation: seeded.conversations[i]!, id: messageId(), text: "hello" }),
    );
    await waitUntil(
      async () => (await sim.call("storedCount")) >= seeded.conversations.length,
      `${kind} warm-up`,
      120_000,
      20,
    );
    await sim.call("clearRequests", handle);
    await sim.call("resetStored");
    const jobs = Array.from({ length: count }, (_, i) => ({
      conversation: seeded.conversations[i % seeded.conversations.length]!,
      id: messageId(),
      text: `queued message ${i}`,
    }));
    const ingestAt = new Float64Array(count);
    const cpuStart = [cpuMs(), await sim.call("cpuMs")] as const;
    const machineStart = machineCpuMs();
    const started = now();
    await pool(count, config.ingestConcurrency, async (i) => {
      ingestAt[i] = now();
      await open.ingest(jobs[i]!);
    });
    await waitUntil(
      async () => (await sim.call("storedCount")) >= count,
      `${count} ${kind} messages`,
      Number(process.env.BENCH_WAIT_MS ?? 300_000),
      20,
    );
    const machineEnd = machineCpuMs();
    const hostCpu = (cpuMs() - cpuStart[0]) / count;
    const simCpu = ((await sim.call("cpuMs")) - cpuStart[1]) / count;
    const stored = await sim.call("storedTimes");
    const values = new Float64Array(count);
    let last = 0;
    for (let i = 0; i < count; i++) {
      const at = stored.get(jobs[i]!.id);
      if (at === undefined) throw new Error(`${kind}: message ${jobs[i]!.id} was not stored`);
      const parentAt = sim.toParentTime(at);
      values[i] = parentAt - ingestAt[i]!;
      if (parentAt > last) last = parentAt;
    }
    const requests = await sim.call("countRequests", handle);
    return {
      rate: count / ((last - started) / 1000),
      p50: percentile(values, 50),
      p99: percentile(values, 99),
      requestsPerMessage: requests / count,
      hostCpu,
      simCpu,
      machineCpu: machineStart === null || machineEnd === null ? null : (machineEnd - machineStart) / count,
    };
  } finally {
    await pipeline?.close();
    await api.close();
    await sim.call("stop", handle);
  }
}
