import { errorMessage } from "../errors/index.js";
import type { Clock } from "./logger.js";

/** One check of `bridge.health()`. */
export interface HealthCheck {
  status: "ok" | "fail";
  /** What failed, or what is recovering (never a secret); absent when all is well. */
  detail?: string;
}

/** What `bridge.health()` answers: `fail` when any check failed. */
export interface HealthReport {
  status: "ok" | "fail";
  checks: Record<string, HealthCheck>;
}

/**
 * `liveness`: the process answers and its database is reachable (`store`). `readiness` adds the outbox dispatcher
 * (`dispatcher`) and, in realtime mode, every realtime link this process holds (`realtime`).
 */
export type HealthScope = "liveness" | "readiness";

export interface HealthOptions {
  clock: Clock;
  /** A cheap read of the store; it throws when the database is unreachable. */
  probeStore(): Promise<unknown>;
  /** Longest wait for the store (then it counts as unreachable). */
  storeTimeoutMs: number;
  dispatcherRunning(): boolean;
  /** The links this process holds and their state, or null in webhook mode. */
  realtimeLinks(): Array<{ integrationId: string; state: string }> | null;
  /** How long a link may stay unconfirmed (reconnecting, resubscribing) before readiness fails. */
  realtimeBudgetMs: number;
}

/** The health checks of the bridge (`docs/operations.md`, "Health and readiness"). */
export function createHealth(options: HealthOptions) {
  /** Since when (clock ms) each link has been seen unconfirmed; cleared once it is confirmed again. */
  const downSince = new Map<string, number>();

  async function store(): Promise<HealthCheck> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        options.probeStore(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${options.storeTimeoutMs} ms`)),
            options.storeTimeoutMs,
          );
        }),
      ]);
      return { status: "ok" };
    } catch (error) {
      return { status: "fail", detail: `the store is unreachable: ${errorMessage(error).slice(0, 200)}` };
    } finally {
      clearTimeout(timer);
    }
  }

  function realtime(): HealthCheck | null {
    const links = options.realtimeLinks();
    if (links === null) return null;
    const now = options.clock.now().getTime();
    const seen = new Set<string>();
    const late: string[] = [];
    let recovering = 0;
    for (const { integrationId, state } of links) {
      seen.add(integrationId);
      if (state === "connected") {
        downSince.delete(integrationId);
        continue;
      }
      const since = downSince.get(integrationId) ?? now;
      downSince.set(integrationId, since);
      if (now - since > options.realtimeBudgetMs) late.push(`${integrationId} (${state})`);
      else recovering++;
    }
    for (const integrationId of [...downSince.keys()])
      if (!seen.has(integrationId)) downSince.delete(integrationId);
    if (late.length > 0) {
      return {
        status: "fail",
        detail: `${late.length} of ${links.length} realtime links unconfirmed for longer than ${Math.round(options.realtimeBudgetMs / 1000)} s: ${late.slice(0, 20).join(", ")}`,
      };
    }
    return recovering > 0
      ? { status: "ok", detail: `${recovering} of ${links.length} realtime links recovering` }
      : { status: "ok" };
  }

  return {
    async check(scope: HealthScope = "readiness"): Promise<HealthReport> {
      const checks: Record<string, HealthCheck> = { store: await store() };
      if (scope === "readiness") {
        checks.dispatcher = options.dispatcherRunning()
          ? { status: "ok" }
          : {
              status: "fail",
              detail: "the outbox dispatcher is not running (bridge.start() not called, or stopped)",
            };
        const links = realtime();
        if (links) checks.realtime = links;
      }
      const failed = Object.values(checks).some((check) => check.status === "fail");
      return { status: failed ? "fail" : "ok", checks };
    },
  };
}
