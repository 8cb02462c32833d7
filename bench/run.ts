/**
 * `npm run bench`: runs every benchmark of bench/, prints a table, writes bench/results/latest.json and
 * docs/benchmarks.md. Not part of `npm test`.
 *
 *   npm run bench                      the full run (about 15–20 minutes on the 2-core AMD EPYC machine, on a quiet
 *                                      machine only: 300 s of it are the adapter runs); the only run that writes
 *                                      bench/results/latest.json and docs/benchmarks.md
 *   npm run bench -- --quick           a smoke run: 2 runs, small sizes; writes bench/results/quick.tmp.json only
 *   npm run bench -- --only=routing,cold   some suites (secrets, outbox, routing, cold, scale, realtime, adapters);
 *                                      writes bench/results/partial.tmp.json only
 *   npm run bench -- --only=routing --quick --backends=sqlite-wal,postgres
 *                                      routing on some stores only (sqlite, sqlite-wal, postgres, mariadb); with
 *                                      --queues=bullmq,pg-boss (default both; --queues= for none) the race's
 *                                      job queues, measured in the same runs (bench/queues.ts); with
 *                                      BENCH_COUNT_QUERIES=1 it also counts the store's SQL statements and
 *                                      transactions per routed message. Profile the integration (this process)
 *                                      with `node --cpu-prof --conditions=@ryze/source --import tsx bench/run.ts ...`
 *   npm run bench -- --render          re-renders docs/benchmarks.md from bench/results/latest.json (after a
 *                                      change to the template in report.ts), without measuring anything
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir, totalmem, type } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type AdaptersConfig, benchAdapters } from "./adapters.js";
import { benchCold, type ColdConfig } from "./cold.js";
import type { Backend } from "./fixtures.js";
import { benchOutbox, type OutboxConfig } from "./outbox.js";
import type { QueueKind } from "./queues.js";
import { benchRealtime, type RealtimeConfig } from "./realtime.js";
import { type BenchResults, renderConsole, renderMarkdown } from "./report.js";
import { benchRouting, type RoutingConfig, warmUpRouting } from "./routing.js";
import { spawnChild } from "./rpc.js";
import { benchScale, type ScaleConfig } from "./scale.js";
import { benchSecrets, type SecretsConfig } from "./secrets.js";
import type { SimHostMethods } from "./sim-host.js";

const SUITES = ["secrets", "outbox", "routing", "cold", "scale", "realtime", "adapters"] as const;
type Suite = (typeof SUITES)[number];

const args = process.argv.slice(2);
const root = fileURLToPath(new URL("..", import.meta.url));
const resultsDir = join(root, "bench", "results");
const docFile = join(root, "docs", "benchmarks.md");
if (args.includes("--render")) {
  const saved = JSON.parse(readFileSync(join(resultsDir, "latest.json"), "utf8")) as BenchResults;
  writeFileSync(docFile, renderMarkdown(saved));
  console.log(renderConsole(saved));
  console.log(`re-rendered ${docFile} from bench/results/latest.json (${saved.date})`);
  process.exit(0);
}
const quick = args.includes("--quick");
const onlyArg = args.find((arg) => arg.startsWith("--only="));
const only = onlyArg ? (onlyArg.slice("--only=".length).split(",") as Suite[]) : null;
for (const suite of only ?? [])
  if (!SUITES.includes(suite)) throw new Error(`unknown suite ${suite}; known: ${SUITES.join(", ")}`);
const selected = (suite: Suite) => !only || only.includes(suite);
/** Every store the routing benchmark knows; the full run measures the stores the example apps open. */
const BACKENDS: Backend[] = ["sqlite", "sqlite-wal", "postgres", "mariadb"];
const FULL_BACKENDS: Backend[] = ["sqlite-wal", "postgres", "mariadb"];
const backendsArg = args.find((arg) => arg.startsWith("--backends="));
const backends = backendsArg
  ? (backendsArg.slice("--backends=".length).split(",") as Backend[])
  : FULL_BACKENDS;
for (const backend of backends)
  if (!BACKENDS.includes(backend))
    throw new Error(`unknown backend ${backend}; known: ${BACKENDS.join(", ")}`);

const RUNS = quick ? 2 : 5;
const QUEUES: QueueKind[] = ["bullmq", "pg-boss"];
const queuesArg = args.find((arg) => arg.startsWith("--queues="));
for (const kind of queuesArg?.slice("--queues=".length).split(",").filter(Boolean) ?? [])
  if (!QUEUES.includes(kind as QueueKind))
    throw new Error(`unknown queue ${kind}; known: ${QUEUES.join(", ")}`);

// The sizes and settings of the full run are the issue's, chosen to fit `npm run bench` into 10 minutes on 2 cores.
const routingConfig: RoutingConfig = {
  runs: RUNS,
  chats: 100,
  backends,
  messages: quick ? 300 : 10_000,
  pacedMessages: quick ? 150 : 600,
  pacedRate: 500,
  // 64 chats in flight per process (the library's default is 16): see "What the numbers mean" in the report.
  concurrency: 64,
  pollIntervalMs: 250,
  ingestConcurrency: 64,
  // The race (bench/queues.ts): the same pipeline through the job queues a user would pick instead.
  queues: queuesArg
    ? (queuesArg.slice("--queues=".length).split(",").filter(Boolean) as QueueKind[])
    : ["bullmq", "pg-boss"],
};
const coldConfig: ColdConfig = {
  runs: RUNS,
  backend: "sqlite-wal",
  contacts: quick ? 100 : 1_000,
  concurrency: 16,
  pollIntervalMs: 250,
  ingestConcurrency: 64,
};
const scaleConfig: ScaleConfig = {
  runs: quick ? 1 : 3,
  integrations: [1, 100, 1_000],
  messages: quick ? 1_000 : 10_000,
  chats: 100,
  pacedMessages: quick ? 150 : 600,
  pacedRate: 500,
  concurrency: 64,
  pollIntervalMs: 250,
  ingestConcurrency: 64,
  activationConcurrency: 16,
};
/** Memory of 10,000 idle integrations (one shared token user), in the realtime host. */
const idleConfig: RealtimeConfig = {
  runs: quick ? 1 : 3,
  integrations: quick ? 2_000 : 10_000,
  replies: 20,
  replyIntervalMs: 7,
  activationConcurrency: 16,
  scenarios: ["shared"],
};
const adaptersConfig: AdaptersConfig = {
  runs: RUNS,
  frameworks: ["express", "koa", "fastify"],
  durationSeconds: quick ? 1 : 10,
  sliceSeconds: 2,
  connections: 16,
};
const realtimeConfig: RealtimeConfig = {
  runs: RUNS,
  integrations: quick ? 200 : 1_000,
  replies: quick ? 50 : 200,
  replyIntervalMs: 7,
  activationConcurrency: 16,
  scenarios: ["shared", "distinct"],
};
const secretsConfig: SecretsConfig = { runs: RUNS, operations: quick ? 5_000 : 10_000, listCalls: 2_000 };
const outboxConfigs: OutboxConfig[] = [
  {
    runs: RUNS,
    backend: "sqlite-wal",
    backlogs: [100, 1_000],
    claimsPerRun: 10,
  },
  { runs: RUNS, backend: "postgres", backlogs: quick ? [100] : [100, 1_000], claimsPerRun: 10 },
  { runs: RUNS, backend: "mariadb", backlogs: quick ? [100] : [100, 1_000], claimsPerRun: 10 },
];

function log(line: string) {
  console.log(line);
}

const machine = {
  cpu: cpus()[0]?.model.trim() ?? "unknown CPU",
  cores: cpus().length,
  ramGb: totalmem() / 1024 ** 3,
  os: `${type()} ${release()}`,
  node: process.version,
};
const command = `npm run bench${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`;
const started = Date.now();
log(`@ryze/chatwoot benchmarks: ${command}`);
log(`${machine.cpu}, ${machine.cores} cores, ${machine.ramGb.toFixed(1)} GB RAM, Node.js ${machine.node}`);
log(
  `${new Date(started).toISOString()}${quick ? " (quick: sizes and runs reduced, not for the report)" : ""}\n`,
);

const sim = await spawnChild<SimHostMethods>("sim-host.ts");
const results: BenchResults = {
  machine,
  date: new Date(started).toISOString(),
  command,
  quick,
  durationSeconds: 0,
  suiteSeconds: {},
  clock: { simulatorOffsetMs: sim.offsetMs, calibrationRttMs: sim.calibrationRttMs },
  config: {},
};

async function suite<T>(name: Suite, title: string, body: () => Promise<T>): Promise<T | undefined> {
  if (!selected(name)) return undefined;
  log(`== ${title}`);
  const suiteStart = Date.now();
  const value = await body();
  results.suiteSeconds[name] = (Date.now() - suiteStart) / 1000;
  log(`   (${results.suiteSeconds[name]!.toFixed(0)} s)\n`);
  return value;
}

try {
  results.secrets = await suite(
    "secrets",
    "5. Secrets: seal/open and their share of the list endpoint",
    () => {
      results.config.secrets = secretsConfig;
      return benchSecrets(sim, secretsConfig, log);
    },
  );
  results.outbox = await suite("outbox", "Outbox claim cost by backlog", async () => {
    results.config.outbox = outboxConfigs;
    const entries = [];
    for (const config of outboxConfigs) entries.push(await benchOutbox(config, log));
    return entries;
  });
  results.routing = await suite("routing", "1. Routing throughput against the direct baseline", async () => {
    results.config.routing = routingConfig;
    await warmUpRouting(sim, routingConfig, quick ? 100 : 300, log);
    const raced = await benchRouting(sim, routingConfig, log);
    results.queues = raced.queues;
    return raced.stores;
  });
  results.cold = await suite("cold", "2. Cold path: new contacts", () => {
    results.config.cold = coldConfig;
    return benchCold(sim, coldConfig, log);
  });
  results.scale = await suite("scale", "6. Scale of one process: active and idle integrations", async () => {
    results.config.scale = scaleConfig;
    results.config.idle = idleConfig;
    const active = await benchScale(sim, scaleConfig, log);
    const [idle] = await benchRealtime(sim, idleConfig, log);
    return { active, idle };
  });
  results.realtime = await suite("realtime", "4. Realtime scale: 1,000 integrations", () => {
    results.config.realtime = realtimeConfig;
    return benchRealtime(sim, realtimeConfig, log);
  });
  results.adapters = await suite("adapters", "3. Adapter overhead (autocannon)", () => {
    results.config.adapters = adaptersConfig;
    return benchAdapters(adaptersConfig, log);
  });
} finally {
  await sim.close();
}

results.durationSeconds = (Date.now() - started) / 1000;
log(renderConsole(results));

mkdirSync(resultsDir, { recursive: true });
const full = !quick && !only && !backendsArg && !queuesArg;
const jsonFile = join(resultsDir, full ? "latest.json" : quick ? "quick.tmp.json" : "partial.tmp.json");
writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
log(`wrote ${jsonFile}`);
if (full) {
  writeFileSync(docFile, renderMarkdown(results));
  log(`wrote ${docFile}`);
} else {
  const preview = join(tmpdir(), "chatwoot-benchmarks-preview.md");
  writeFileSync(preview, renderMarkdown(results));
  log(`docs/benchmarks.md is written by full runs only; preview: ${preview}`);
}
log(`total ${results.durationSeconds.toFixed(0)} s`);
