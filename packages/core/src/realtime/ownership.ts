import { classifyChatwootFailure, isChatwootRequestError } from "../chatwoot/index.js";
import { errorMessage } from "../errors/index.js";
import { type Integration, type IntegrationRepository, isServing } from "../integrations/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { Lease, LeaseStore } from "../store/ports.js";
import type { RealtimeHub } from "./hub.js";

export interface RealtimeOwnershipOptions {
  leases: LeaseStore;
  integrations: IntegrationRepository;
  hub: RealtimeHub;
  clock: Clock;
  logger: Logger;
  /** This process. */
  owner: string;
  /** Lease time to live; renewed at a third of it. */
  ttlMs: number;
  /** A subscription was taken over (or started) after a gap that began at `since`: fetch what was missed. */
  onTakeover(integration: Integration, since: Date): void;
}

interface Owned {
  epoch: number;
  /** The integration version the subscription was made with. */
  version: number;
  /** When the lease was last extended (the time the renewal's expiry counts from). */
  renewedAt: number;
}

const LEASE = "realtime:";
const MEMBER = "member:";
const leaseName = (integrationId: string) => `${LEASE}${integrationId}`;

/**
 * Realtime ownership across processes: every integration's subscription is held by exactly one process
 * through a lease with a fencing epoch. Each round (a third of the TTL) a process first renews all its leases in
 * one statement, drops a subscription whose lease it could not renew before anyone could take it over, hands back
 * leases above its fair share (integrations ÷ live processes), and takes free or expired ones up to that share.
 * Subscribing and unsubscribing one integration never overlap: they run one after another per integration.
 */
export function createRealtimeOwnership(options: RealtimeOwnershipOptions) {
  const { leases, hub, clock, logger, owner, ttlMs } = options;
  const owned = new Map<string, Owned>();
  /** Per integration: the tail of its subscription work (take, re-attach, activation), run one at a time. */
  const queues = new Map<string, Promise<void>>();
  /** Why the last subscription attempt of an integration failed, until one succeeds. */
  const failures = new Map<string, string>();
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;

  const now = () => clock.now().getTime();
  const busy = (integrationId: string) => queues.has(integrationId);

  /** Runs `task` after every earlier subscription task of the same integration. */
  function exclusive<T>(integrationId: string, task: () => Promise<T>): Promise<T> {
    const result = (queues.get(integrationId) ?? Promise.resolve()).then(task);
    const tail = result.then(
      () => {},
      () => {},
    );
    queues.set(integrationId, tail);
    void tail.then(() => {
      if (queues.get(integrationId) === tail) queues.delete(integrationId);
    });
    return result;
  }

  function drop(integrationId: string, why: string): void {
    if (!owned.delete(integrationId)) return;
    hub.detach(integrationId);
    logger.info({ integrationId, owner, why }, "chatwoot: realtime subscription dropped");
  }

  /** Deactivation: leave and free the lease. */
  async function release(integrationId: string): Promise<void> {
    drop(integrationId, "released");
    await leases.release(leaseName(integrationId), owner).catch(() => false);
  }

  /**
   * Rebalancing and shutdown: leave, and let the lease expire now (renew with a zero TTL) instead of freeing it,
   * so that the next owner takes it at once and still knows since when to fetch what was missed.
   */
  async function handOver(integrationId: string): Promise<void> {
    const mine = owned.get(integrationId);
    drop(integrationId, "handed over");
    if (mine)
      await leases
        .renew(owner, [{ name: leaseName(integrationId), epoch: mine.epoch }], 0, clock.now())
        .catch(() => []);
  }

  /** The link is confirmed: an integration in `error` because of it is healthy again. */
  async function recover(integration: Integration): Promise<void> {
    const current = await options.integrations.getById(integration.id).catch(() => null);
    if (current?.status !== "error") return;
    await options.integrations.update(current, { status: "active", lastError: "" }).catch(() => null);
  }

  /**
   * Subscribes an integration whose lease this process holds at `epoch` and waits for the confirmation. A failure
   * gives the lease back at once, so that the next round (here or elsewhere) tries again; `list` shows why.
   */
  async function subscribe(integration: Integration, epoch: number, signal?: AbortSignal): Promise<void> {
    const current = () => owned.get(integration.id)?.epoch === epoch;
    if (!current()) throw new Error("realtime lease lost before subscribing");
    try {
      await hub.attach(integration, signal);
    } catch (error) {
      failures.set(
        integration.id,
        isChatwootRequestError(error)
          ? classifyChatwootFailure(error.failure, integration).message
          : errorMessage(error),
      );
      logger.warn(
        { instance: integration.instance, err: errorMessage(error) },
        "chatwoot: realtime subscription not confirmed",
      );
      if (current()) await handOver(integration.id);
      throw error;
    }
    if (!current()) {
      // Handed over or lost while subscribing: do not keep a subscription nobody tracks.
      hub.detach(integration.id);
      throw new Error("realtime lease lost while subscribing");
    }
    owned.get(integration.id)!.version = integration.version;
    failures.delete(integration.id);
    await recover(integration);
  }

  /** Starts owning an integration whose lease this process just took; backfills from the previous owner's end. */
  function take(integration: Integration, lease: Lease, previous: Lease | undefined, signal?: AbortSignal) {
    const renewedAt = lease.expiresAt.getTime() - ttlMs;
    owned.set(integration.id, { epoch: lease.epoch, version: integration.version, renewedAt });
    return exclusive(integration.id, async () => {
      await subscribe(integration, lease.epoch, signal);
      // The last moment the previous owner was surely listening: its lease's last renewal.
      if (previous) options.onTakeover(integration, new Date(previous.expiresAt.getTime() - ttlMs));
    });
  }

  /** Extends every lease we hold in one statement; drops what was lost. A store failure is left to the watchdog. */
  async function renewOwned(): Promise<void> {
    const held = [...owned].map(([integrationId, mine]) => ({ integrationId, epoch: mine.epoch }));
    if (held.length === 0) return;
    const at = clock.now();
    const renewed = await leases
      .renew(
        owner,
        held.map(({ integrationId, epoch }) => ({ name: leaseName(integrationId), epoch })),
        ttlMs,
        at,
      )
      .catch((error) => {
        logger.warn({ owner, err: errorMessage(error) }, "chatwoot: realtime lease renewal failed");
        return null;
      });
    if (!renewed) return;
    const kept = new Set(renewed.map((lease) => `${lease.name}#${lease.epoch}`));
    for (const { integrationId, epoch } of held) {
      const mine = owned.get(integrationId);
      if (mine?.epoch !== epoch) continue; // changed while renewing
      if (kept.has(`${leaseName(integrationId)}#${epoch}`)) mine.renewedAt = at.getTime();
      else drop(integrationId, "lease lost");
    }
  }

  async function round(): Promise<void> {
    // 1. Renew first: it is what keeps our subscriptions safe, whatever the rest of the round costs.
    await renewOwned();
    // Then check the links we hold (profile: rotated pubsub token, lost role or inbox; deafness probe), in the
    // background so that a slow Chatwoot never delays the leases.
    void hub.verify().catch(() => {});
    const at = clock.now();
    const ownedAtStart = new Set(owned.keys());
    await leases.acquire(`${MEMBER}${owner}`, owner, ttlMs, at);
    const members = (await leases.list(MEMBER)).filter(
      (lease) => lease.expiresAt.getTime() > at.getTime(),
    ).length;
    const held = new Map((await leases.list(LEASE)).map((lease) => [lease.name.slice(LEASE.length), lease]));
    const wanted: Integration[] = [];
    const stored = new Set<string>();
    for await (const integration of options.integrations.all()) {
      stored.add(integration.id);
      if (integration.deliveryMode === "realtime" && isServing(integration)) wanted.push(integration);
    }
    const byId = new Map(wanted.map((integration) => [integration.id, integration]));

    // 2. Leave what is gone (deactivated elsewhere) or paused; re-subscribe what was re-activated (maybe elsewhere).
    for (const [integrationId, mine] of owned) {
      if (busy(integrationId)) continue;
      const integration = byId.get(integrationId);
      if (!integration) {
        // An activation may have taken one after the list was read. A paused integration's lease is expired, not
        // freed, so that its re-activation fetches the agent replies posted meanwhile.
        if (!ownedAtStart.has(integrationId)) continue;
        if (stored.has(integrationId)) await handOver(integrationId);
        else await release(integrationId);
      } else if (integration.version !== mine.version) {
        void exclusive(integrationId, () => subscribe(integration, mine.epoch)).catch((error) =>
          logger.warn({ integrationId, err: errorMessage(error) }, "chatwoot: re-attach failed"),
        );
      }
    }

    // 3. Hand back what is above our fair share, so that leases spread over the processes.
    const share = Math.ceil(wanted.length / Math.max(1, members));
    const settled = [...owned.keys()].filter((integrationId) => !busy(integrationId));
    const excess = owned.size - share;
    for (const integrationId of settled.slice(0, Math.max(0, excess))) await handOver(integrationId);

    // 4. Take free or expired leases up to our share, in random order so processes do not collide.
    const free = wanted.filter((integration) => {
      const lease = held.get(integration.id);
      return !lease || lease.expiresAt.getTime() <= at.getTime();
    });
    for (const integration of free.sort(() => Math.random() - 0.5)) {
      if (owned.size >= share) break;
      if (owned.has(integration.id) || busy(integration.id)) continue; // an activation took it meanwhile
      const previous = held.get(integration.id);
      const lease = await leases.acquire(leaseName(integration.id), owner, ttlMs, clock.now());
      if (lease && !owned.has(integration.id) && !busy(integration.id))
        void take(integration, lease, previous).catch(() => {});
    }
  }

  /** Drops subscriptions whose lease was not renewed for two thirds of the TTL: they may be taken over soon. */
  function watchdog(): void {
    for (const [integrationId, mine] of owned) {
      if (now() - mine.renewedAt > (ttlMs * 2) / 3) drop(integrationId, "lease not renewed in time");
    }
  }

  function tick(): void {
    watchdog();
    if (running) return;
    running = round()
      .catch((error) =>
        logger.error({ owner, err: errorMessage(error) }, "chatwoot: realtime ownership round failed"),
      )
      .finally(() => {
        running = null;
      });
  }

  return {
    owner,
    start(): void {
      if (timer) return;
      tick();
      timer = setInterval(tick, ttlMs / 3);
      timer.unref();
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = null;
      await running;
      for (const integrationId of [...owned.keys()]) await handOver(integrationId);
      await leases.release(`${MEMBER}${owner}`, owner).catch(() => false);
    },
    /**
     * Activation step 4: take the integration's subscription now and wait for the confirmation. When another
     * process holds it, confirm with a short-lived subscription of our own; the owner picks up the new
     * configuration in its next round.
     */
    async activate(integration: Integration, signal: AbortSignal): Promise<void> {
      const previous = await leases.get(leaseName(integration.id));
      const lease = await leases.acquire(leaseName(integration.id), owner, ttlMs, clock.now());
      if (!lease) return hub.probe(integration, signal);
      const mine = owned.get(integration.id);
      // Ours already (a round took it, maybe still subscribing): subscribe again with this configuration.
      if (mine?.epoch === lease.epoch) {
        mine.renewedAt = lease.expiresAt.getTime() - ttlMs;
        return exclusive(integration.id, () => subscribe(integration, lease.epoch, signal));
      }
      return take(integration, lease, previous ?? undefined, signal);
    },
    /** Deactivation: leave at once and give the lease back. */
    release,
    /** Why this process's last attempt to subscribe an integration failed, if it did. */
    failure: (integrationId: string): string | null => failures.get(integrationId) ?? null,
    /** The lease of an integration's subscription, whoever holds it. */
    holder: (integrationId: string): Promise<Lease | null> => leases.get(leaseName(integrationId)),
    /** Integration ids whose subscription this process holds. */
    owned: (): string[] => [...owned.keys()],
  };
}

export type RealtimeOwnership = ReturnType<typeof createRealtimeOwnership>;
