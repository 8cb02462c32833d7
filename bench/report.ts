/**
 * Turns one run's results into the console table and `docs/benchmarks.md` (a template filled with the measured
 * values: edit this file, not the generated page), and judges the goals of the issue against them.
 */
import type { AdapterResult, AdaptersConfig } from "./adapters.js";
import type { ColdConfig, ColdResult } from "./cold.js";
import type { OutboxConfig, OutboxResult } from "./outbox.js";
import type { RealtimeConfig, RealtimeResult } from "./realtime.js";
import type { RoutingConfig, RoutingResult } from "./routing.js";
import type { ScaleConfig, ScaleResult } from "./scale.js";
import type { SecretsConfig, SecretsResult } from "./secrets.js";
import { type Figure, formatFigure, round } from "./stats.js";

export interface Machine {
  cpu: string;
  cores: number;
  ramGb: number;
  os: string;
  node: string;
}

export interface BenchResults {
  machine: Machine;
  date: string;
  command: string;
  quick: boolean;
  /** Wall time of the whole run (s) and of each suite. */
  durationSeconds: number;
  suiteSeconds: Record<string, number>;
  clock: { simulatorOffsetMs: number; calibrationRttMs: number };
  config: {
    routing?: RoutingConfig;
    cold?: ColdConfig;
    adapters?: AdaptersConfig;
    realtime?: RealtimeConfig;
    secrets?: SecretsConfig;
    outbox?: OutboxConfig[];
    scale?: ScaleConfig;
    idle?: RealtimeConfig;
  };
  /** 6. Scale of one process: 1, 100, 1,000 active integrations; 10,000 idle ones. */
  scale?: { active: ScaleResult[]; idle?: RealtimeResult };
  routing?: RoutingResult[];
  /** The race: the same pipeline through job queues (BullMQ, pg-boss), in the routing runs. */
  queues?: RoutingResult[];
  cold?: ColdResult;
  adapters?: AdapterResult[];
  realtime?: RealtimeResult[];
  secrets?: SecretsResult;
  outbox?: OutboxResult[];
}

export type GoalStatus = "met" | "not met" | "not measured";

export interface Goal {
  goal: string;
  target: string;
  measured: string;
  status: GoalStatus;
}

const f = (value: Figure | null | undefined, digits = 3) => formatFigure(value, digits);
const int = (value: number) => Math.round(value).toLocaleString("en-US");

/** A note when the runs fall on both sides of the target: the verdict (by the median) could flip between runs. */
function spread(value: Figure | null | undefined, target: number, atLeast: boolean): string {
  if (!value) return "";
  const pass = (x: number) => (atLeast ? x >= target : x <= target);
  return pass(value.min) !== pass(value.max)
    ? "; runs on both sides of the target, judged by the median"
    : "";
}

function status(ok: boolean | null): GoalStatus {
  return ok === null ? "not measured" : ok ? "met" : "not met";
}

/** What a routed and a direct message cost the whole machine: the physical limit behind a ratio. */
function machineNote(entry: RoutingResult): string {
  if (!entry.machineCpuPerMessage || !entry.directMachineCpuPerMessage) return "";
  return (
    `; machine CPU per message (every process) ${f(entry.machineCpuPerMessage)} routed against ` +
    `${f(entry.directMachineCpuPerMessage)} direct`
  );
}

/**
 * The realtime link's requests on a clock (bench/routing.ts, `PERIODIC_REQUESTS`), which "requests per message"
 * leaves out: how many each run made, so the reader sees they are there and what they are.
 */
function periodicNote(routing: RoutingResult[]): string {
  const runs = routing.flatMap((entry) => [
    ...(entry.periodicRequests?.runs ?? []),
    ...(entry.paced?.periodicRequests?.runs ?? []),
  ]);
  if (runs.length === 0) return "";
  return (
    `; besides them, the realtime link's check of its Chatwoot user (\`GET /api/v1/profile\`, once per ownership ` +
    `round of 5 s, not per message): ${Math.min(...runs)}–${Math.max(...runs)} per run`
  );
}

export function evaluateGoals(results: BenchResults): Goal[] {
  const goals: Goal[] = [];
  const routing = (results.routing ?? []).filter((entry) => !entry.skipped);
  const sizeNote = (entry: RoutingResult) =>
    entry.messages === 10_000 ? "" : ` (${int(entry.messages)} messages per run, not 10,000)`;

  const perMessage = routing.flatMap((entry) => [
    ...(entry.requestsPerMessage?.runs ?? []),
    ...(entry.paced?.requestsPerMessage.runs ?? []),
  ]);
  goals.push({
    goal: "Warm routing: Chatwoot requests per text message in a known chat",
    target: "exactly 1.0",
    measured:
      perMessage.length === 0
        ? "n/a"
        : `${routing.map((entry) => `${entry.label}: ${f(entry.requestsPerMessage)}`).join("; ")} ` +
          (perMessage.every((value) => value === 1)
            ? `(every burst and paced run exactly 1, ${perMessage.length} runs)`
            : `(burst and paced runs: ${round(Math.min(...perMessage), 4)}–${round(Math.max(...perMessage), 4)})`) +
          periodicNote(routing),
    status: status(perMessage.length === 0 ? null : perMessage.every((value) => value === 1)),
  });

  const ratioGoal = (backends: Array<RoutingResult["backend"]>, threshold: number, name: string) => {
    for (const backend of backends) {
      const entry = (results.routing ?? []).find((candidate) => candidate.backend === backend);
      if (!entry) continue;
      goals.push({
        goal: `Routing throughput / direct baseline, ${entry.label}`,
        target: `≥ ${threshold} × direct (${name})`,
        measured: entry.skipped
          ? `skipped: ${entry.skipped}`
          : `${f(entry.ratio)}${sizeNote(entry)}${spread(entry.ratio, threshold, true)}${machineNote(entry)}`,
        status: status(entry.skipped || !entry.ratio ? null : entry.ratio.median >= threshold),
      });
    }
  };
  ratioGoal(["sqlite", "sqlite-wal"], 0.75, "SQLite");
  ratioGoal(["postgres"], 0.6, "PostgreSQL, first step");
  ratioGoal(["postgres"], 0.8, "PostgreSQL");
  ratioGoal(["mariadb"], 0.5, "MariaDB/MySQL");

  // The race: our routing on each queue's own kind of store against the queue, ratios of the same runs' medians.
  const race: Array<[string, Array<RoutingResult["backend"]>]> = [
    ["bullmq", ["sqlite-wal", "postgres"]],
    ["pg-boss", ["postgres"]],
  ];
  for (const [kind, ours] of race) {
    const queue = (results.queues ?? []).find((entry) => entry.backend === kind);
    if (!queue) continue;
    for (const backend of ours) {
      const entry = routing.find((candidate) => candidate.backend === backend);
      if (!entry) continue;
      const ratio =
        queue.skipped || !queue.routing || !entry.routing
          ? null
          : entry.routing.median / queue.routing.median;
      goals.push({
        goal: `The race: routing on ${entry.label} against ${queue.label} (ingest → Chatwoot create, same concurrency)`,
        target: "ahead (> 1 ×)",
        measured: queue.skipped
          ? `skipped: ${queue.skipped}`
          : `${ratio === null ? "n/a" : `${round(ratio)} ×`} (${f(entry.routing)} against ${f(queue.routing)}; ` +
            `machine CPU per message ${f(entry.machineCpuPerMessage)} against ${f(queue.machineCpuPerMessage)})`,
        status: status(ratio === null ? null : ratio > 1),
      });
    }
  }

  for (const entry of results.routing ?? []) {
    goals.push({
      goal: `p99 ingest-to-stored at a paced ${entry.paced?.rate ?? 500} messages/s, ${entry.label}`,
      target: "≤ 50 ms",
      measured: entry.skipped
        ? `skipped: ${entry.skipped}`
        : `${f(entry.paced?.p99)} (routing delivered ${f(entry.paced?.delivered)} of the offered ` +
          `${round(entry.paced?.offered.median ?? Number.NaN)} msg/s)${spread(entry.paced?.p99, 50, false)}`,
      status: status(entry.skipped || !entry.paced ? null : entry.paced.p99.median <= 50),
    });
  }

  const cold = results.cold;
  goals.push({
    goal: "Cold routing: Chatwoot requests per message from a new contact",
    target: "≤ 2",
    measured: cold?.requestsPerMessage ? f(cold.requestsPerMessage) : (cold?.skipped ?? "n/a"),
    status: status(cold?.requestsPerMessage ? cold.requestsPerMessage.max <= 2 : null),
  });

  for (const entry of results.adapters ?? []) {
    goals.push({
      goal: `Adapter throughput / bare route, ${entry.framework}`,
      target: "≥ 0.85 × bare",
      measured: `${f(entry.ratio)}${spread(entry.ratio, 0.85, true)}`,
      status: status(entry.ratio.median >= 0.85),
    });
  }

  const active = results.scale?.active ?? [];
  const one = active.find((entry) => entry.integrations === 1);
  for (const entry of active) {
    if (entry === one) continue;
    const ratio = one ? entry.routing.median / one.routing.median : null;
    goals.push({
      goal: `Scale: throughput with ${int(entry.integrations)} active integrations sharing the dispatcher / with 1 (SQLite WAL, fair share on)`,
      target: `≥ 0.8 × with 1 (the issue sets no figure: our bar; ${int(entry.chats)} chats against ${one ? int(one.chats) : "?"})`,
      measured:
        ratio === null
          ? "n/a"
          : `${round(ratio)} × (${f(entry.routing)} against ${f(one!.routing)}; paced ${results.config.scale?.pacedRate}/s p99 ${f(entry.pacedP99)} against ${f(one!.pacedP99)})`,
      status: status(ratio === null ? null : ratio >= 0.8),
    });
  }
  const idle = results.scale?.idle;
  if (idle)
    goals.push({
      goal: `${int(idle.integrations)} idle integrations (one token user): RSS growth`,
      target: "≤ 200 MB (the 1,000-integration goal's 20 KB each)",
      measured: `${f(idle.rssGrowthMb)} (${f(idle.rssPerIntegrationKb)} per integration, ${f(idle.sockets)} sockets)`,
      status: status(idle.rssGrowthMb.median <= 200),
    });

  const shared = results.realtime?.find((entry) => entry.scenario === "shared");
  const distinct = results.realtime?.find((entry) => entry.scenario === "distinct");
  const count = int(results.config.realtime?.integrations ?? 1_000);
  goals.push({
    goal: `${count} integrations sharing one token user: sockets`,
    target: "1",
    measured: shared ? f(shared.sockets) : "n/a",
    status: status(shared ? shared.sockets.max === 1 && shared.sockets.min === 1 : null),
  });
  goals.push({
    goal: `${count} integrations sharing one token user: RSS growth`,
    target: "≤ 20 MB",
    measured: shared ? `${f(shared.rssGrowthMb)}${spread(shared.rssGrowthMb, 20, false)}` : "n/a",
    status: status(shared ? shared.rssGrowthMb.median <= 20 : null),
  });
  goals.push({
    goal: `${count} integrations with distinct token users: RSS growth`,
    target: "≤ 150 MB",
    measured: distinct
      ? `${f(distinct.rssGrowthMb)} (${f(distinct.sockets)} sockets)${spread(distinct.rssGrowthMb, 150, false)}`
      : "n/a",
    status: status(distinct ? distinct.rssGrowthMb.median <= 150 : null),
  });
  for (const entry of results.realtime ?? []) {
    goals.push({
      goal: `Agent reply → WhatsApp send p99, ${count} integrations, ${entry.scenario === "shared" ? "one shared token user" : "distinct token users"}`,
      target: "≤ 100 ms",
      measured: `${f(entry.replyP99)}${spread(entry.replyP99, 100, false)}`,
      status: status(entry.replyP99.median <= 100),
    });
  }
  return goals;
}

// ---------------------------------------------------------------------------------------------- console

export function renderConsole(results: BenchResults): string {
  const rows: string[][] = [["benchmark", "figure", "median", "min", "max", "unit"]];
  const add = (bench: string, name: string, value: Figure | null | undefined) => {
    if (!value) return;
    rows.push([bench, name, round(value.median), round(value.min), round(value.max), value.unit]);
  };
  for (const entry of results.routing ?? []) {
    const bench = `routing ${entry.backend}`;
    if (entry.skipped) {
      rows.push([bench, `skipped: ${entry.skipped}`, "", "", "", ""]);
      continue;
    }
    add(bench, `routed (${entry.messages} msgs)`, entry.routing);
    add(bench, "direct baseline", entry.direct);
    add(bench, "routed / direct", entry.ratio);
    add(bench, "burst p50 ingest→stored", entry.burstP50);
    add(bench, "burst p99 ingest→stored", entry.burstP99);
    add(bench, "Chatwoot requests / msg", entry.requestsPerMessage);
    add(bench, `paced ${entry.paced?.rate}/s p50`, entry.paced?.p50);
    add(bench, `paced ${entry.paced?.rate}/s p99`, entry.paced?.p99);
    add(bench, "paced: delivered", entry.paced?.delivered);
  }
  if (results.cold && !results.cold.skipped) {
    add("cold", "Chatwoot requests / msg", results.cold.requestsPerMessage);
    add("cold", `throughput (${results.cold.contacts} contacts)`, results.cold.rate);
  }
  for (const entry of results.adapters ?? []) {
    add(`adapter ${entry.framework}`, "adapter", entry.adapter);
    add(`adapter ${entry.framework}`, "bare", entry.bare);
    add(`adapter ${entry.framework}`, "adapter / bare", entry.ratio);
  }
  for (const entry of results.realtime ?? []) {
    const bench = `realtime ${entry.scenario}`;
    add(bench, "sockets", entry.sockets);
    add(bench, "RSS growth", entry.rssGrowthMb);
    add(bench, "RSS / integration", entry.rssPerIntegrationKb);
    add(bench, "reply→send p50", entry.replyP50);
    add(bench, "reply→send p99", entry.replyP99);
  }
  if (results.secrets) {
    add("secrets", "seal", results.secrets.seal);
    add("secrets", "open", results.secrets.open);
    for (const entry of results.secrets.list) {
      add("secrets", `list call (${entry.store})`, entry.listUs);
      add("secrets", `open share (${entry.store})`, entry.share);
    }
  }
  for (const entry of results.outbox ?? []) {
    for (const level of entry.claimMs)
      add(`outbox ${entry.backend}`, `claim @ ${level.backlog} pending`, level.ms);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const lines = rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  "));
  lines.splice(1, 0, widths.map((width) => "-".repeat(width)).join("  "));
  const goals = evaluateGoals(results)
    .map((goal) => `  [${goal.status.padEnd(12)}] ${goal.goal}: ${goal.target}; measured ${goal.measured}`)
    .join("\n");
  return `${lines.join("\n")}\n\nGoals:\n${goals}\n`;
}

// --------------------------------------------------------------------------------------------- markdown

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function breakdown(counts: Record<string, number> | undefined, per: number): string {
  if (!counts) return "n/a";
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([request, count]) => `\`${request}\` × ${round(count / per, 4)}`)
    .join(", ");
}

function routingSection(results: BenchResults): string {
  const config = results.config.routing;
  const entries = results.routing ?? [];
  if (!config || entries.length === 0) return "Not run.\n";
  const queues = results.queues ?? [];
  const rows = [...entries, ...queues].map((entry) =>
    entry.skipped
      ? [entry.label, `skipped: ${entry.skipped}`, "", "", "", "", "", "", ""]
      : [
          entry.label,
          int(entry.messages),
          f(entry.routing),
          f(entry.direct),
          f(entry.ratio),
          `${f(entry.burstP50)} / ${f(entry.burstP99)}`,
          f(entry.requestsPerMessage, 4),
          `${f(entry.hostCpuPerMessage)} / ${f(entry.simCpuPerMessage)}`,
          `${f(entry.machineCpuPerMessage)} / ${f(entry.directMachineCpuPerMessage)}`,
        ],
  );
  const paced = entries
    .filter((entry) => !entry.skipped && entry.paced)
    .map((entry) => [
      entry.label,
      int(entry.paced!.messages),
      f(entry.paced!.offered),
      f(entry.paced!.delivered),
      f(entry.paced!.p50),
      f(entry.paced!.p99),
      f(entry.paced!.requestsPerMessage, 4),
    ]);
  const full = entries.every((entry) => entry.messages === 10_000);
  const defaultJournal = entries.some((entry) => entry.backend === "sqlite" && !entry.skipped);
  return `Text messages from ${config.chats} known chats (pre-warmed: each chat's contact and conversation exist and
are mapped) go the full path: \`ingest\` → outbox → dispatcher → ChatwootApi → simulator. The host calls \`ingest\`
with up to ${config.ingestConcurrency} calls in flight. The dispatcher runs with \`concurrency: ${config.concurrency}\`
and \`pollIntervalMs: ${config.pollIntervalMs}\`; the direct baseline sends the same message creates
(\`POST /api/v1/accounts/{id}/conversations/{display_id}/messages\` with \`api_access_token\`, the body the library
sends) from a plain undici loop with the same concurrency (${config.concurrency}) to a fresh simulator seeded like the
pre-warmed one. Each run measures the direct baseline once, then every store, each on a fresh simulator, store and
pre-warm; a store's ratio in a run is to that run's baseline. *Throughput* runs from the first \`ingest\` call to the
moment the simulator answered the last create; *ingest-to-stored* is, per message, the time from its \`ingest\` call
to the simulator's answer to its create (matched by \`source_id\` \`WAID:<id>\`, simulator clock corrected by a
calibrated offset of ${round(results.clock.simulatorOffsetMs)} ms, round trip ${round(results.clock.calibrationRttMs)} ms).
*Machine CPU* is the CPU time of every process on the machine (integration, simulator, database) per message, read
from \`/proc/stat\` over the burst, for the routed and the direct run: with ${results.machine.cores} cores, no store
can route faster than ${results.machine.cores * 1000} ms divided by it.

${full ? "" : `**Size:** ${int(entries[0]?.messages ?? 0)} messages per run, not the issue's 10,000 (a reduced run).`}

${table(
  [
    "store",
    "messages / run",
    "routed msg/s",
    "direct msg/s",
    "routed / direct",
    "burst ingest→stored p50 / p99",
    "Chatwoot requests / msg",
    "CPU ms / msg: integration / simulator",
    "machine CPU ms / msg: routed / direct",
  ],
  rows,
)}
${
  queues.length === 0
    ? ""
    : `
**The race** (the rows ${queues.map((entry) => entry.label).join(" and ")}): the pipeline a user would build
instead, in the same runs, each on a fresh simulator seeded like the direct baseline: the host's "ingest" adds a job
(the chat's conversation, the WhatsApp id, the text), a worker with the same concurrency (${config.concurrency}) creates
the message through the same \`ChatwootApi\`. BullMQ runs a \`Worker\` with \`concurrency: ${config.concurrency}\` on the
machine's Redis; pg-boss 10 one \`work\` handler fetching batches of ${config.concurrency} and running each batch side by
side, woken by the producer after each send (\`notifyWorker\`; its polling floor is 0.5 s). Neither keeps the order of a
chat's messages: BullMQ's groups are a BullMQ Pro feature, and pg-boss's \`singleton\` policy fetches at most one job per
key per batch. Both keep the chat → conversation map in memory and skip validating the event, shortcuts that favour
them. The library keeps each chat in order, dedupes every event and survives a crash of the process.
`
}
Requests seen by the simulator per routed message (last run): ${entries
    .filter((entry) => !entry.skipped)
    .map((entry) => `${entry.label}: ${breakdown(entry.breakdown, entry.messages)}`)
    .join("; ")}.

**Paced at ${config.pacedRate} messages/s** (after the burst, same session, ${config.chats} chats round-robin):

${table(
  [
    "store",
    "messages / run",
    "offered msg/s",
    "delivered msg/s",
    "ingest→stored p50",
    "p99",
    "Chatwoot requests / msg",
  ],
  paced,
)}

When *delivered* is below *offered*, routing cannot keep up with ${config.pacedRate} messages/s and the latency is
queueing: it grows with the length of the paced run.${
    defaultJournal
      ? ` With SQLite's default journal the pacer itself falls behind (*offered* below ${config.pacedRate}):
better-sqlite3 commits synchronously, so every fsync blocks the event loop the pacer runs on.`
      : ""
  }
`;
}

function outboxSection(results: BenchResults): string {
  const entries = results.outbox ?? [];
  if (entries.length === 0) return "Not run.\n";
  const backlogs = [...new Set(entries.flatMap((entry) => entry.claimMs.map((level) => level.backlog)))].sort(
    (a, b) => a - b,
  );
  const rows = entries.map((entry) => [
    entry.label,
    ...backlogs.map((backlog) => {
      if (entry.skipped) return "skipped";
      const level = entry.claimMs.find((candidate) => candidate.backlog === backlog);
      return level ? f(level.ms) : "—";
    }),
  ]);
  return `One \`claim(limit 1)\` + \`complete\` on the store, by number of pending items (spread over 100 chat keys).
While work is in flight the dispatcher claims a batch once a quarter of its slots are free, so a burst pays
one claim per several messages:

${table(["store", ...backlogs.map((backlog) => `${int(backlog)} pending`)], rows)}
`;
}

function coldSection(results: BenchResults): string {
  const cold = results.cold;
  if (!cold) return "Not run.\n";
  if (cold.skipped) return `Skipped: ${cold.skipped}\n`;
  const size =
    cold.contacts === 1_000
      ? ""
      : ` (${int(cold.contacts)} per run, not the issue's 1,000: at this rate 1,000 × ${results.config.cold?.runs} runs do not fit the budget)`;
  return `${int(cold.contacts)} messages, each from a new contact${size}, on ${cold.label}, a fresh simulator and store
per run:

${table(
  ["Chatwoot requests / msg", "msg/s", "ingest→stored p50", "p99", "CPU ms / msg: integration / simulator"],
  [
    [
      f(cold.requestsPerMessage, 4),
      f(cold.rate),
      f(cold.p50),
      f(cold.p99),
      `${f(cold.hostCpuPerMessage)} / ${f(cold.simCpuPerMessage)}`,
    ],
  ],
)}

Requests per message (last run): ${breakdown(cold.breakdown, cold.contacts)}.
`;
}

function adaptersSection(results: BenchResults): string {
  const config = results.config.adapters;
  const entries = results.adapters ?? [];
  if (!config || entries.length === 0) return "Not run.\n";
  const rows = entries.map((entry) => [
    entry.framework,
    f(entry.adapter),
    f(entry.bare),
    f(entry.ratio),
    `${f(entry.adapterLatency)} / ${f(entry.bareLatency)}`,
    `${f(entry.adapterCpu)} / ${f(entry.bareCpu)}`,
  ]);
  const duration =
    config.durationSeconds === 10
      ? "10 s per run"
      : `**${config.durationSeconds} s per run**, not the issue's 10 s: 3 frameworks × 2 routes × ${config.runs} runs × 10 s alone would take ${3 * 2 * config.runs * 10} s of the 10-minute budget`;
  return `\`GET /api/chatwoot/list/:instance\` through each adapter (caller token, rate limit with \`points: 1e9\`,
directory, store read, token opened, live check cached for 30 s and warmed first) against a bare route of the
same framework that serves the same JSON (checked byte for byte before the runs) from the same store read
(\`store.integrations.get\` on SQLite WAL + opening the token). The app runs in its own process, autocannon
(${config.connections} connections) in the benchmark process, ${duration} and route, after 2 s of warm-up for each route. Within a
run the two routes alternate in slices of ${config.sliceSeconds ?? config.durationSeconds} s (which goes first alternates too), so that a slow spell of the
virtual machine falls on both alike: run as two back-to-back 10 s blocks, single runs of one route ranged
from 0.68 to 1.23 × the other, all noise. The server CPU per request is the steadier comparison.

${table(
  [
    "framework",
    "adapter req/s",
    "bare req/s",
    "adapter / bare",
    "mean latency ms: adapter / bare",
    "server CPU ms / request: adapter / bare",
  ],
  rows,
)}
`;
}

function realtimeSection(results: BenchResults): string {
  const config = results.config.realtime;
  const entries = results.realtime ?? [];
  if (!config || entries.length === 0) return "Not run.\n";
  const rows = entries.map((entry) => [
    entry.scenario === "shared"
      ? "one token user (one account, 1,000 inboxes)"
      : "distinct token users (1,000 accounts)",
    f(entry.sockets),
    f(entry.rssGrowthMb),
    f(entry.rssPerIntegrationKb),
    f(entry.heapGrowthMb),
    f(entry.activationMs),
    f(entry.replyP50),
    f(entry.replyP99),
    `${f(entry.queueP50)} / ${f(entry.queueP99)}`,
    `${f(entry.sendP50)} / ${f(entry.sendP99)}`,
    `${f(entry.hostLoopMax)} / ${f(entry.simLoopMax)}`,
  ]);
  return `One integration (one realtime hub, SQLite WAL store) in a process of its own activates
${int(config.integrations)} instances (a static directory of ${int(config.integrations)} instances, \`activate()\` ${config.activationConcurrency}
at a time), each with its own Chatwoot inbox. *Sockets* are the simulator's open cable connections opened by them.
*RSS growth* is \`process.memoryUsage().rss\` after the activations minus before (after a warm-up instance had
loaded every code path), both after forced GCs (\`--expose-gc\`). Then a customer message opens a conversation in
${config.replies} of the instances and an agent replies in each (\`sim.postAgentMessage\`, one every
${config.replyIntervalMs} ms); *reply → send* is the time from the reply's creation in the simulator to the wrapped
WhatsApp gateway's \`send\`. A fresh process and simulator per run.

${table(
  [
    "token users",
    "sockets",
    "RSS growth",
    "RSS / integration",
    "JS heap growth",
    "activating all",
    "reply → send p50",
    "p99",
    "reply → outbox p50 / p99",
    "outbox → send p50 / p99",
    "longest event-loop stall: integration / simulator",
  ],
  rows,
)}

The reply's path is split where it enters the outbox (the store's \`enqueue\` is wrapped to timestamp it):
*reply → outbox* is the realtime leg (simulator broadcast, socket, the hub routing the event by inbox, the
integration read, the enqueue), *outbox → send* the dispatch leg (claim, the send). The last column is the
longest event-loop delay (\`perf_hooks.monitorEventLoopDelay\`) in each process while the replies ran: a reply
that arrives during a stall waits for it.
`;
}

function secretsSection(results: BenchResults): string {
  const secrets = results.secrets;
  if (!secrets) return "Not run.\n";
  const rows = secrets.list.map((entry) => [
    entry.store,
    f(entry.listUs),
    String(entry.opensPerList),
    `${round(entry.share.median * 100)} % (${round(entry.share.min * 100)}–${round(entry.share.max * 100)})`,
  ]);
  return `The default keyring (AES-256-GCM, random IV, AAD bound to row and column) on a 24-character token:
**seal ${f(secrets.seal)}** (${f(secrets.sealUs)} each), **open ${f(secrets.open)}** (${f(secrets.openUs)} each).

Share of \`open\` in the list endpoint, in-process (\`bridge.http.handle\`, no framework, no socket, live
check cached); the opens per call are counted by wrapping the keyring:

${table(["store", "list call", "opens per call", "open's share of the call"], rows)}
`;
}

function sizingSection(results: BenchResults): string {
  const lines: string[] = [];
  const routing = (results.routing ?? []).filter((entry) => !entry.skipped && entry.routing);
  for (const entry of routing) {
    lines.push(
      `- **Inbound messages, ${entry.label}:** one process routed ${round(entry.routing!.median)} text messages/s ` +
        `(bursts of ${int(entry.messages)}) and delivered ${round(entry.paced!.delivered.median)} msg/s when offered ` +
        `${entry.paced!.rate}/s, using ${round(entry.hostCpuPerMessage!.median)} ms of CPU per message. Plan for at most ` +
        `about ${round(Math.min(entry.routing!.median, entry.paced!.delivered.median) * 0.5, 2)} msg/s of sustained ` +
        `inbound traffic per process on this hardware (half the lower of the two measured rates, so queues drain).`,
    );
  }
  const config = results.config.routing;
  const machine = routing.filter((entry) => entry.machineCpuPerMessage && entry.directMachineCpuPerMessage);
  if (config && machine.length > 0)
    lines.push(
      `- **Where the time goes:** a routed message cost the whole machine ${machine
        .map(
          (entry) =>
            `${round(entry.machineCpuPerMessage!.median)} ms of CPU on ${entry.label} (` +
            `${round(entry.hostCpuPerMessage!.median)} ms in the integration's process)`,
        )
        .join(
          ", ",
        )}, against ${round(machine[0]!.directMachineCpuPerMessage!.median)} ms for a create sent ` +
        `directly. Routing was CPU-bound on these ${results.machine.cores} cores, shared by the integration, ` +
        `the database and the simulator standing in for Chatwoot: on a machine of its own, next to a real ` +
        `Chatwoot, the library's share is the integration's process plus the database.`,
      `- **Concurrency:** the runs above used \`dispatcher.concurrency: ${config.concurrency}\` (chats in ` +
        `flight per process; the default is 16). With the default, a burst is limited by round trips rather ` +
        `than CPU: raise it when a backlog must drain fast and Chatwoot can take that many parallel requests.`,
    );
  const sqlite = routing.find((entry) => entry.backend === "sqlite");
  const wal = routing.find((entry) => entry.backend === "sqlite-wal");
  if (wal)
    lines.push(
      "- **SQLite settings:** the runs opened the file as the example apps do: WAL with `synchronous=NORMAL`, and " +
        "the connection passed through `cacheStatements` (`@ryze/chatwoot-knex`), which keeps prepared statements: " +
        "knex prepares every query afresh, and compiling cost about a third of the statements' time on the event loop; " +
        "and WAL checkpoints run from a worker thread (`startWalCheckpoints`), off the event loop, where an automatic " +
        "checkpoint inside a commit cost a fifth of the routing rate.",
    );
  if (sqlite && wal)
    lines.push(
      `- **SQLite:** open the file in WAL mode with \`synchronous=NORMAL\` (knex \`pool.afterCreate\`): with the ` +
        `default rollback journal every commit waits for the disk and routing ran at ${round(sqlite.routing!.median)} ` +
        `instead of ${round(wal.routing!.median)} msg/s.`,
    );
  if (results.cold?.rate)
    lines.push(
      `- **New contacts** cost ${round(results.cold.requestsPerMessage!.median)} Chatwoot requests each and routed at ` +
        `${round(results.cold.rate.median)} msg/s: a campaign that brings many first-time customers at once is ` +
        `several times slower than the same volume from known chats.`,
    );
  const adapters = results.adapters ?? [];
  if (adapters.length > 0)
    lines.push(
      `- **HTTP API:** the list endpoint served ${adapters
        .map((entry) => `${round(entry.adapter.median)} req/s on ${entry.framework}`)
        .join(", ")} from one core; it is an admin endpoint, far from being a limit.`,
    );
  const shared = results.realtime?.find((entry) => entry.scenario === "shared");
  const distinct = results.realtime?.find((entry) => entry.scenario === "distinct");
  if (shared && distinct)
    lines.push(
      `- **Memory:** count about ${round(shared.rssPerIntegrationKb.median)} KB per integration when integrations share ` +
        `a Chatwoot token user (one socket for all), and about ${round(distinct.rssPerIntegrationKb.median)} KB per ` +
        `integration with its own token user (one socket each): 1,000 tenants with their own Chatwoot users add ` +
        `~${round(distinct.rssGrowthMb.median)} MB to the process.`,
    );
  if (shared && distinct)
    lines.push(
      `- **Agent replies** reached the WhatsApp gateway ${round(shared.replyP50.median)} ms (p50) / ` +
        `${round(shared.replyP99.median)} ms (p99) after the agent sent them with one shared token user, and ` +
        `${round(distinct.replyP50.median)} / ${round(distinct.replyP99.median)} ms with 1,000 sockets in the process.`,
    );
  return lines.join("\n");
}

function simCpu(results: BenchResults): string {
  const values = (results.routing ?? []).flatMap((entry) => entry.simCpuPerMessage?.runs ?? []);
  if (values.length === 0) return "n/a";
  return `${round(Math.min(...values))}–${round(Math.max(...values))} ms`;
}

/**
 * Where a goal is not met: the bottleneck a profile named and the next lever. The profile is not part of the run
 * (it would slow what it measures): `node --cpu-prof` of the routing suite on one store (see bench/run.ts) and the
 * statement counts of `BENCH_COUNT_QUERIES=1`, taken while this template was last changed.
 */
const LEVERS: Array<{ match: RegExp; text: string }> = [
  {
    match: /^Routing throughput \/ direct baseline, SQLite/,
    text:
      "SQLite: the bridge's own CPU per message, about half of it the store's statements. Since the 2026-12-06 15:38 run SQLite keeps " +
      "the chat heads too (`docs/decisions.md` 13): a claim reads the due chats instead of walking every chat's head. " +
      "With one integration of 100 chats that is about even (0.444 × direct and 0.825 ms of machine CPU per message in " +
      "the 2026-12-06 13:13 run; 0.491 × and 0.855 ms at 15:38): timing the store's statements one by one in a routing " +
      "run, a claim's statements cost less than the walk did (about 0.41 against 0.53 ms a claim), but an enqueue, a " +
      "claim and a complete are now each a transaction that also writes its chats' rows, and their commits are about " +
      "a quarter of the store's SQLite time, ahead of the claim's read of the due heads, the message-mapping insert " +
      "and the outbox insert. Next levers: fewer commits per routed message (the message mapping, the chat-history " +
      "upsert and the complete are three transactions of three stores, one transaction could hold them), then the " +
      "event's zod validation and the outbox payload's JSON round trip on the bridge's side.",
  },
  {
    match: /^Routing throughput \/ direct baseline, PostgreSQL/,
    text:
      "PostgreSQL: the database server's CPU per message, next to the bridge's, and it is the writes. The hot " +
      "statements are named prepared statements, and since 2026-12-06 a claim reads only the due chats it locks (the " +
      "heads of migration 0010, `docs/decisions.md` 12) instead of walking every chat's head; that did not move " +
      "PostgreSQL (0.25 → 0.23 × in a routing-only run): `pg_stat_statements` over such a run shows the claim's " +
      "second statement still at half of the server's statement time, and its buffers in the UPDATE of the claimed " +
      "rows (about 27 buffer hits per row), as in the complete's: every status change rewrites the outbox row in " +
      "each of its indexes (no HOT update while `status` is indexed: the open-items, retention and dead-letter " +
      "indexes), and a complete now also writes its chat's row. Next lever: outbox updates PostgreSQL can make HOT " +
      "(no index over a column a claim or complete changes: the unfinished items and the dead letters found through " +
      "the chat rows or a table of their own), then fewer writes of the chat rows.",
  },
  {
    match: /^Routing throughput \/ direct baseline, MariaDB/,
    text:
      "MariaDB/MySQL: round trips and InnoDB's work per commit. Since 2026-12-06 a claim locks the due chats along " +
      "the chat rows' `head_due` index and reads their heads in one statement (migration 0010: 0.057 → 0.18 × direct, about three times the " +
      "routing rate of the walk of the due index it replaces, whose `NOT EXISTS` probe per item passed over made " +
      "every claim read most of the backlog), and the outbox lost its chat, due and claim indexes (fewer writes per " +
      "status change). Enqueues and completes are batched (one transaction per batch), `putMessage` is one read and " +
      "one multi-row insert per batch. What is left: a transaction per batch of each kind, each with its commit, and " +
      "the database server's CPU per routed message still about the bridge's. Next levers: the batched chat-history " +
      "upsert folded into the batch's transaction instead of its own commit; fewer statements per complete (it reads " +
      "and locks the chats, reads the items, and writes both).",
  },
  {
    match: /^Warm routing: /,
    text:
      "Warm routing: every message costs exactly one request (`POST …/conversations/{id}/messages`); what is above 1.0 " +
      "in a run measured before the periodic requests were counted apart is the realtime link's check of its Chatwoot " +
      "user (`GET /api/v1/profile`, `hub.verify`), made once per 5 s ownership round whatever the traffic, so the " +
      "slower a run (MariaDB's), the larger its share. bench/routing.ts now counts those apart (`PERIODIC_REQUESTS`) " +
      "and the goal reads the messages' own requests.",
  },
  {
    match: /^p99 ingest-to-stored at a paced/,
    text:
      "Paced p99 on the client-server stores: queueing, not a stall. At 500 messages/s the routing on these stores " +
      "keeps about one of the two cores busy (machine CPU per message × 500, the database's share included, next to " +
      "the simulator and the load generator), so the p50 is already tens of milliseconds; the lever is the routing " +
      "throughput's (above): less database work per message.",
  },
  {
    match: /^Adapter throughput /,
    text:
      "Adapters: the contract's own work per request, which the bare route skips (failed-attempt read, caller " +
      "token, rate-limit consume, instance look-up, the route table, the answer's headers): a profile of the Koa app " +
      "(`BENCH_CPU_PROF`, `--only=adapters --quick`) puts the core's HTTP layer at 7 % of the app's CPU and the store " +
      "reads both routes make at 9 %, Node's HTTP server and sockets at most of the rest; the difference per request " +
      "(server CPU, the table above) is 0.06 ms on Koa and Fastify. Next lever: the caller checks without an await per " +
      "step when their stores are in memory (the failed-attempt limiter, the static directory), and the client " +
      "address parsed once per connection instead of per request (`clientKey`, ipaddr.js).",
  },
  {
    match: /^Scale: throughput with /,
    text:
      "Scale: the fair share's many small claims. Since SQLite keeps the chat heads (`docs/decisions.md` 13) a claim " +
      "reads the due chats only, so its cost no longer grows with the chats that have work: 100 and 1,000 active " +
      "integrations went from 0.386 and 0.212 × the rate with one (2026-12-06 13:13 run) to 0.602 and 0.649 × (15:38). Timing " +
      "the store's statements in a `--only=scale --quick` run with 1,000 integrations: the dispatcher's fair share " +
      "still makes more, smaller claims than with one integration (it claims per integration below its share), each " +
      "a transaction with its commit, and the commits are the largest share of the store's time, the claim's read of " +
      "the due heads and the batched read of the integrations by id next. Next lever: fair-share claims gathered like " +
      "the others (a batch of free slots, one claim leaving out the integrations at their share, not one per " +
      "completion).",
  },
  {
    match: /^The race: /,
    text:
      "The race: the queues skip what the routing pays for (the event's validation, the outbox row kept for " +
      "dedupe, the mapping reads, the per-chat order); the routing's remaining cost per message is the store's, " +
      "see the levers above.",
  },
];

function leversSection(goals: Goal[]): string {
  const unmet = goals.filter((goal) => goal.status === "not met");
  const texts = [
    ...new Set(
      unmet.flatMap((goal) =>
        LEVERS.filter((lever) => lever.match.test(goal.goal)).map((lever) => lever.text),
      ),
    ),
  ];
  if (texts.length === 0) return "";
  return `## Goals not met: bottleneck and next lever

From profiles taken while developing, not during this run: \`node --cpu-prof\` of the benchmark process and
\`BENCH_CPU_PROF\` of its children (bench/run.ts), the statement counts of \`BENCH_COUNT_QUERIES=1\`, PostgreSQL's
\`pg_stat_statements\`, and the store's statements timed one by one:

${texts.map((text) => `- ${text}`).join("\n")}
`;
}

function scaleSection(results: BenchResults): string {
  const config = results.config.scale;
  const active = results.scale?.active ?? [];
  if (!config || active.length === 0) return "Not run.\n";
  const idle = results.scale?.idle;
  return `The routing of section 1 (SQLite WAL, \`concurrency: ${config.concurrency}\`, \`pollIntervalMs: ${config.pollIntervalMs}\`) with
several active integrations sharing one bridge and its dispatcher, each activated on its own inbox of one account (one
token user). The dispatcher's fair share is always on: while several integrations have work, a claim leaves out those
already holding their share of the ${config.concurrency} slots. The chats (at least ${int(config.chats)}, at least one per
integration) are pre-warmed; ${int(config.messages)} messages go round-robin over every chat of every integration, then
${int(config.pacedMessages)} at a paced ${config.pacedRate}/s. A fresh simulator and store per run (${config.runs} runs).

${table(
  [
    "active integrations",
    "chats",
    "routed msg/s",
    "burst p99",
    `paced ${config.pacedRate}/s: delivered`,
    "paced p99",
    "activating all",
  ],
  active.map((entry) => [
    int(entry.integrations),
    int(entry.chats),
    f(entry.routing),
    f(entry.burstP99),
    f(entry.pacedDelivered),
    f(entry.pacedP99),
    f(entry.activationMs),
  ]),
)}
${
  idle
    ? `
**${int(idle.integrations)} idle integrations** (the realtime host of section 4, one shared token user, one socket): RSS
growth ${f(idle.rssGrowthMb)}, ${f(idle.rssPerIntegrationKb)} per integration, JS heap growth ${f(idle.heapGrowthMb)},
${f(idle.sockets)} sockets, activating all ${f(idle.activationMs)}.
`
    : ""
}`;
}

export function renderMarkdown(results: BenchResults): string {
  const { machine } = results;
  const goals = evaluateGoals(results);
  const goalRows = goals.map((goal) => [goal.goal, goal.target, goal.measured, `**${goal.status}**`]);
  const suites = Object.entries(results.suiteSeconds)
    .map(([suite, seconds]) => `${suite} ${round(seconds)} s`)
    .join(", ");
  return `# Benchmarks

<!-- Generated by \`npm run bench\` (bench/run.ts, template in bench/report.ts). Do not edit by hand. -->

What routing, the framework adapters, the realtime hub and the secrets cost, each against the limit it runs
into. Every figure is the **median of ${results.config.routing?.runs ?? 5} runs with its min–max** in parentheses;
every comparison is a ratio of two figures measured in the same run.

## The run

${table(
  ["", ""],
  [
    ["machine", `${machine.cpu}, ${machine.cores} cores, ${round(machine.ramGb)} GB RAM, ${machine.os}`],
    ["Node.js", machine.node],
    ["date", results.date],
    ["command", `\`${results.command}\``],
    ["duration", `${round(results.durationSeconds)} s (${suites})`],
  ],
)}

The Chatwoot simulator (\`@ryze/chatwoot-testkit\`) stands in for Chatwoot in a process of its own, the framework
apps and the 1,000-integration host run in processes of their own too, so that the measured side and the side
generating load each have one of the two cores. Everything runs on 127.0.0.1. Raw figures, every run and the
settings: \`bench/results/latest.json\`.

## Goals

${table(["goal", "target", "measured", "status"], goalRows)}

## 1. Routing throughput against the direct baseline

${routingSection(results)}
## 2. Cold path: messages from new contacts

${coldSection(results)}
## 3. Adapter overhead

${adaptersSection(results)}
## 4. Realtime scale

${realtimeSection(results)}
## 5. Secrets

${secretsSection(results)}
## 6. Scale of one process

${scaleSection(results)}
## Outbox claim cost

${outboxSection(results)}
${leversSection(goals)}
## What the numbers mean for sizing a deployment

${sizingSection(results)}

## Limits of these measurements

- The simulator is not Chatwoot: it spent ${simCpu(results)} of its CPU per routed message create, where a real
  Chatwoot (Rails, PostgreSQL, background jobs) spends far more. The direct baseline is therefore far above what
  a real Chatwoot would sustain, and the ratios against it are a worst case for the library.
- The simulator keeps each conversation's messages and each message's attachments apart, so a create costs the
  same with 100 or 100,000 messages held. (It scanned every message it held at first: at 10,000 messages per run
  its creates fell to about 100/s, routed and direct alike.) Each run still starts from a fresh simulator, so that
  the direct and the routed batches see the same state.
- Two cores are shared by the measured process and the one generating load or playing Chatwoot; the machine is
  a virtual machine whose disk latency (SQLite's default journal waits for it on every commit) varies.
`;
}
