import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ChatwootApi } from "../chatwoot/api.js";
import { isChatwootRequestError } from "../chatwoot/failure.js";
import type { OutboxDirection, OutboxSummary } from "../store/ports.js";

/** The `metrics` option of the bridge. */
export interface MetricsOptions {
  /** The host's registry (e.g. prom-client's global `register`); default: a registry of the bridge's own. */
  registry?: Registry;
  /** Prefix of every metric name (default `chatwoot_bridge_`). */
  prefix?: string;
  /**
   * Adds an `instance` label to the per-message counters (routed, retries, deferrals, dead letters). Off by default:
   * one series per instance is costly with hundreds of instances.
   */
  instanceLabels?: boolean;
}

/** What the realtime hub reports about its links (issue 17's `stats()`), read at scrape time. */
export interface RealtimeStats {
  /** Links by state (`connected`, `connecting`, `disconnected`, `deaf`...). */
  links: Record<string, number>;
  reconnects: number;
  resubscribes: number;
  backfilledReplies: number;
  deafDetections: number;
}

/** Where the figures read at scrape time come from. */
export interface MetricSources {
  /** The whole outbox (`OutboxStore.totals`). */
  outbox(): Promise<OutboxSummary & { now: Date }>;
  /** The realtime links of this process, or null in webhook mode. */
  realtime(): RealtimeStats | null;
}

/** How an attempt at an outbox item ended, as the metrics count it. */
export type AttemptOutcome = "done" | "retry" | "defer" | "permanent";

export interface BridgeMetrics {
  readonly registry: Registry;
  /** One Chatwoot API call: its operation (the `ChatwootApi` method), status class and duration. */
  chatwootRequest(operation: string, statusClass: string, seconds: number): void;
  /** One attempt at an outbox item (`kind`: `message`, `receipt`, `agent-message`, `revoke`). */
  attempt(direction: OutboxDirection, kind: string, outcome: AttemptOutcome, instance: string | null): void;
  /** An item given up (dead letter). */
  deadLetter(direction: OutboxDirection, instance: string | null): void;
  /** An activation's outcome: `active`, or the error code (`CHATWOOT_UNREACHABLE`, `INVALID_BODY`...). */
  activation(outcome: string): void;
  /** A request refused by the per-token quota. */
  rateLimitRefused(): void;
  /** Outbox items deleted by retention. */
  pruned(count: number): void;
}

/** The status class of a Chatwoot call's outcome: `2xx`..`5xx`, or `transport` when no answer came. */
export function statusClassOf(error: unknown): string {
  if (error === undefined) return "2xx";
  if (isChatwootRequestError(error) && error.failure.kind === "http")
    return `${Math.floor(error.failure.status / 100)}xx`;
  return "transport";
}

/**
 * A counter that follows a cumulative figure read at scrape time (the hub's): it grows by the difference since the
 * last scrape, so it never goes down even when the source is replaced.
 */
function follow(counter: Counter, read: () => number | undefined): () => void {
  let seen = 0;
  return () => {
    const value = read();
    if (value === undefined) return;
    if (value > seen) counter.inc(value - seen);
    seen = value;
  };
}

/** The bridge's Prometheus metrics (`docs/operations.md` lists them). Low-cardinality labels only. */
export function createBridgeMetrics(options: MetricsOptions, sources: MetricSources): BridgeMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? "chatwoot_bridge_";
  const withInstance = options.instanceLabels === true;
  const perMessage = (labels: string[]) => (withInstance ? [...labels, "instance"] : labels);
  const registers = [registry];

  const requests = new Counter({
    name: `${prefix}chatwoot_requests_total`,
    help: "Chatwoot API calls by operation and status class (2xx..5xx, transport: no answer)",
    labelNames: ["operation", "status_class"],
    registers,
  });
  const latency = new Histogram({
    name: `${prefix}chatwoot_request_duration_seconds`,
    help: "Duration of Chatwoot API calls by operation",
    labelNames: ["operation"],
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const routed = new Counter({
    name: `${prefix}messages_routed_total`,
    help: "Outbox items delivered, by direction (inbound: to Chatwoot, outbound: to WhatsApp) and kind",
    labelNames: perMessage(["direction", "kind"]),
    registers,
  });
  const retries = new Counter({
    name: `${prefix}retries_total`,
    help: "Attempts that failed transiently and were retried (or given up when out of attempts), by direction",
    labelNames: perMessage(["direction"]),
    registers,
  });
  const deferrals = new Counter({
    name: `${prefix}deferrals_total`,
    help: "Items put back untried (paused integration, no gateway, waiting for an earlier message), by direction",
    labelNames: perMessage(["direction"]),
    registers,
  });
  const dead = new Counter({
    name: `${prefix}dead_letters_total`,
    help: "Items given up (dead letters), by direction",
    labelNames: perMessage(["direction"]),
    registers,
  });
  const activations = new Counter({
    name: `${prefix}activations_total`,
    help: "Activations by outcome: active, or the error code",
    labelNames: ["outcome"],
    registers,
  });
  const refusals = new Counter({
    name: `${prefix}rate_limit_refusals_total`,
    help: "Requests refused by the per-token quota (429)",
    registers,
  });
  const pruned = new Counter({
    name: `${prefix}outbox_pruned_total`,
    help: "Finished outbox items deleted by retention",
    registers,
  });

  // Read at scrape time: one store query per scrape, shared by the three outbox gauges.
  let outboxRead: Promise<(OutboxSummary & { now: Date }) | null> | null = null;
  const outbox = () => {
    outboxRead ??= sources
      .outbox()
      .catch(() => null)
      .finally(() => setImmediate(() => (outboxRead = null)));
    return outboxRead;
  };
  new Gauge({
    name: `${prefix}outbox_depth`,
    help: "Unfinished outbox items (pending and claimed) of every integration",
    registers,
    async collect() {
      const totals = await outbox();
      if (totals) this.set(totals.depth);
    },
  });
  new Gauge({
    name: `${prefix}outbox_dead_letters`,
    help: "Dead letters kept in the outbox",
    registers,
    async collect() {
      const totals = await outbox();
      if (totals) this.set(totals.dead);
    },
  });
  new Gauge({
    name: `${prefix}outbox_oldest_due_age_seconds`,
    help: "Age of the oldest unfinished item that is due (0 when none is)",
    registers,
    async collect() {
      const totals = await outbox();
      if (!totals) return;
      const age = totals.oldestDueAt ? (totals.now.getTime() - totals.oldestDueAt.getTime()) / 1000 : 0;
      this.set(Math.max(0, age));
    },
  });
  const realtimeLinks = new Gauge({
    name: `${prefix}realtime_links`,
    help: "Realtime links this process holds, by state (connected, connecting, disconnected, deaf)",
    labelNames: ["state"],
    registers,
    collect() {
      const stats = sources.realtime();
      realtimeLinks.reset();
      for (const state of ["connected", "connecting", "disconnected", "deaf"])
        realtimeLinks.set({ state }, 0);
      for (const [state, count] of Object.entries(stats?.links ?? {})) realtimeLinks.set({ state }, count);
    },
  });
  const cumulative = (name: string, help: string, read: (stats: RealtimeStats) => number) => {
    const counter: Counter = new Counter({
      name: `${prefix}${name}`,
      help,
      registers,
      collect: () => update(),
    });
    const update = follow(counter, () => {
      const stats = sources.realtime();
      return stats ? read(stats) : undefined;
    });
  };
  cumulative(
    "realtime_reconnects_total",
    "Realtime sockets opened again after they were lost",
    (s) => s.reconnects,
  );
  cumulative(
    "realtime_resubscribes_total",
    "Realtime subscriptions made again (unconfirmed, rotated pubsub token, restored membership, deafness)",
    (s) => s.resubscribes,
  );
  cumulative(
    "realtime_backfilled_replies_total",
    "Agent replies fetched over REST after a realtime outage",
    (s) => s.backfilledReplies,
  );
  cumulative(
    "realtime_deaf_detections_total",
    "Realtime links found deaf (subscribed, but events no longer arrive)",
    (s) => s.deafDetections,
  );

  const labels = <T extends Record<string, string>>(base: T, instance: string | null) =>
    withInstance ? { ...base, instance: instance ?? "" } : base;

  return {
    registry,
    chatwootRequest(operation, statusClass, seconds) {
      requests.inc({ operation, status_class: statusClass });
      latency.observe({ operation }, seconds);
    },
    attempt(direction, kind, outcome, instance) {
      if (outcome === "done") routed.inc(labels({ direction, kind }, instance));
      else if (outcome === "retry") retries.inc(labels({ direction }, instance));
      else if (outcome === "defer") deferrals.inc(labels({ direction }, instance));
    },
    deadLetter(direction, instance) {
      dead.inc(labels({ direction }, instance));
    },
    activation(outcome) {
      activations.inc({ outcome });
    },
    rateLimitRefused() {
      refusals.inc();
    },
    pruned(count) {
      if (count > 0) pruned.inc(count);
    },
  };
}

/** The Chatwoot client with every call timed and counted by operation (the method's name) and status class. */
export function instrumentChatwootApi(api: ChatwootApi, metrics: BridgeMetrics): ChatwootApi {
  const timed = new Map<PropertyKey, unknown>();
  return new Proxy(api, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || property === "close" || typeof property !== "string") return value;
      let wrapper = timed.get(property);
      if (!wrapper) {
        wrapper = async (...args: unknown[]) => {
          const started = performance.now();
          let failure: unknown;
          try {
            return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          } catch (error) {
            failure = error ?? new Error("failed");
            throw error;
          } finally {
            metrics.chatwootRequest(property, statusClassOf(failure), (performance.now() - started) / 1000);
          }
        };
        timed.set(property, wrapper);
      }
      return wrapper;
    },
  });
}
