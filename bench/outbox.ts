/**
 * Diagnosis behind the routing figures: what one outbox claim (+ complete) costs on the store as the backlog of
 * pending items grows, items spread over 100 chat keys. A claim finds the chats' heads in the index of unfinished
 * items (PostgreSQL: one descent per chat; SQLite: one entry per unfinished item), so it never reads the finished
 * rows: its cost follows the chats with work (PostgreSQL) or the backlog (SQLite), never the history.
 */
import { BACKEND_LABEL, type Backend, openStore } from "./fixtures.js";
import { type Figure, figure, now } from "./stats.js";

export interface OutboxConfig {
  runs: number;
  backend: Backend;
  backlogs: number[];
  /** Claims timed per run at each backlog. */
  claimsPerRun: number;
}

export interface OutboxResult {
  backend: Backend;
  label: string;
  skipped?: string;
  /** Time of claim(limit 1) + complete, by backlog of pending items. */
  claimMs: Array<{ backlog: number; ms: Figure }>;
}

const INTEGRATION = "int_benchOutboxClaims";

export async function benchOutbox(config: OutboxConfig, log: (line: string) => void): Promise<OutboxResult> {
  const label = BACKEND_LABEL[config.backend];
  const opened = await openStore(config.backend);
  if ("unreachable" in opened)
    return { backend: config.backend, label, skipped: opened.unreachable, claimMs: [] };
  const { outbox } = opened.store;
  const claimMs: OutboxResult["claimMs"] = [];
  let sequence = 0;
  let pending = 0;
  const enqueue = async () => {
    const n = sequence++;
    await outbox.enqueue(
      {
        integrationId: INTEGRATION,
        direction: "inbound",
        chatKey: `in:55119${String(n % 100).padStart(8, "0")}@s.whatsapp.net`,
        dedupeKey: `wa:${n}`,
        payload: { kind: "message", n },
      },
      new Date(),
    );
    pending++;
  };
  const claimOne = async () => {
    const [item] = await outbox.claim({ owner: "bench", limit: 1, claimTtlMs: 30_000, now: new Date() });
    if (!item) throw new Error("nothing to claim");
    await outbox.complete(item.id, "bench");
    pending--;
  };
  try {
    // JIT and connection warm-up, not recorded.
    for (let i = 0; i < 20; i++) await enqueue();
    for (let i = 0; i < 20; i++) await claimOne();
    for (const backlog of [...config.backlogs].sort((a, b) => a - b)) {
      while (pending < backlog) await enqueue();
      const runs: number[] = [];
      for (let run = 0; run < config.runs; run++) {
        const started = now();
        for (let i = 0; i < config.claimsPerRun; i++) {
          const [item] = await outbox.claim({
            owner: "bench",
            limit: 1,
            claimTtlMs: 30_000,
            now: new Date(),
          });
          if (!item) throw new Error("nothing to claim");
          await outbox.complete(item.id, "bench");
          pending--;
        }
        runs.push((now() - started) / config.claimsPerRun);
        while (pending < backlog) await enqueue(); // keep the backlog at its level
      }
      claimMs.push({ backlog, ms: figure(runs, "ms") });
      log(`  ${label}: claim + complete with ${backlog} pending: ${runs[0]!.toFixed(2)} ms (first run)`);
    }
  } finally {
    await opened.close();
  }
  return { backend: config.backend, label, claimMs };
}
