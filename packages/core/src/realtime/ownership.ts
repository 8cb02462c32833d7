import { classifyChatwootFailure, isChatwootRequestError } from "../chatwoot/index.js";
import { errorMessage } from "../errors/index.js";
import type { Integration, IntegrationRepository } from "../integrations/index.js";
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
  /** Lease time to live; renewed at a third of it. Default 15 s. */
  ttlMs: number;
  /** A subscription was taken over (or started) after a gap that began at `since`: fetch what was missed. */
  onTakeover(integration: Integration, since: Date): void;
}

interface Owned {
  epoch: number;
  version: number;
  renewedAt: number;
}

const LEASE = "realtime:";
const MEMBER = "member:";
const leaseName = (integrationId: string) => `${LEASE}${integrationId}`;

/**
 * Realtime ownership across processes: every integration's subscription is held by exactly one process
 * through a lease with a fencing epoch. Each round (a third of the TTL) a process renews its leases, drops
 * a subscription whose lease it could not renew before anyone could take it over, hands back leases above
 * its fair share (integrations ÷ live processes), and takes free or expired ones up to that share.
 */
export function createRealtimeOwnership(options: RealtimeOwnershipOptions) {
  const { leases, hub, clock, logger, owner, ttlMs } = options;
  const owned = new Map<string, Owned>();
  const attaching = new Set<string>();
  /** Why the last subscription attempt of an integration failed, until one succeeds. */
  const failures = new Map<string, string>();
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;

  const now = () => clock.now().getTime();

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
      await leases.renew(leaseName(integrationId), owner, mine.epoch, 0, clock.now()).catch(() => null);
  }

  /** The link is confirmed: an integration in `error` because of it is healthy again. */
  async function recover(integration: Integration): Promise<void> {
    const current = await options.integrations.getById(integration.id).catch(() => null);
    if (current?.status !== "error") return;
    await options.integrations.update(current, { status: "active", lastError: "" }).catch(() => null);
  }

  /** Attaches an integration whose lease this process just took; backfills from the previous owner's end. */
  async function take(
    integration: Integration,
    lease: Lease,
    previous: Lease | undefined,
    signal?: AbortSignal,
  ) {
    owned.set(integration.id, { epoch: lease.epoch, version: integration.version, renewedAt: now() });
    attaching.add(integration.id);
    try {
      await hub.attach(integration, signal);
      failures.delete(integration.id);
      await recover(integration);
      if (owned.get(integration.id)?.epoch !== lease.epoch) {
        // Handed over or lost while subscribing: do not keep a subscription nobody tracks.
        hub.detach(integration.id);
        return;
      }
      // The last moment the previous owner was surely listening: its lease's last renewal.
      if (previous) options.onTakeover(integration, new Date(previous.expiresAt.getTime() - ttlMs));
    } catch (error) {
      // Give the lease back at once: the next round (here or elsewhere) tries again; `list` shows why.
      failures.set(
        integration.id,
        isChatwootRequestError(error)
          ? classifyChatwootFailure(error.failure, {
              baseUrl: integration.baseUrl,
              accountId: integration.accountId,
            }).message
          : errorMessage(error),
      );
      logger.warn(
        { instance: integration.instance, err: errorMessage(error) },
        "chatwoot: realtime subscription not confirmed",
      );
      if (owned.get(integration.id)?.epoch === lease.epoch) await handOver(integration.id);
      throw error;
    } finally {
      attaching.delete(integration.id);
    }
  }

  async function round(): Promise<void> {
    const at = clock.now();
    const ownedAtStart = new Set(owned.keys());
    await leases.acquire(`${MEMBER}${owner}`, owner, ttlMs, at);
    const members = (await leases.list(MEMBER)).filter(
      (lease) => lease.expiresAt.getTime() > at.getTime(),
    ).length;
    const held = new Map((await leases.list(LEASE)).map((lease) => [lease.name.slice(LEASE.length), lease]));
    const wanted: Integration[] = [];
    for await (const integration of options.integrations.all()) {
      if (
        integration.deliveryMode === "realtime" &&
        (integration.status === "active" || integration.status === "error")
      ) {
        wanted.push(integration);
      }
    }
    const byId = new Map(wanted.map((integration) => [integration.id, integration]));

    // 1. Renew what we hold; drop what is gone or lost. An activation may have taken one after the list was read.
    for (const [integrationId, mine] of owned) {
      const integration = byId.get(integrationId);
      if (!integration) {
        if (ownedAtStart.has(integrationId) && !attaching.has(integrationId)) await release(integrationId);
        continue;
      }
      const renewed = await leases
        .renew(leaseName(integrationId), owner, mine.epoch, ttlMs, clock.now())
        .catch(() => null);
      if (!renewed) {
        drop(integrationId, "lease lost");
        continue;
      }
      mine.renewedAt = now();
      if (integration.version !== mine.version && !attaching.has(integrationId)) {
        // Re-activated (maybe by another process): subscribe with the new configuration.
        mine.version = integration.version;
        hub
          .attach(integration)
          .catch((error) =>
            logger.warn({ integrationId, err: errorMessage(error) }, "chatwoot: re-attach failed"),
          );
      }
    }

    // 2. Hand back what is above our fair share, so that leases spread over the processes.
    const share = Math.ceil(wanted.length / Math.max(1, members));
    const settled = [...owned.keys()].filter((integrationId) => !attaching.has(integrationId));
    const excess = owned.size - share;
    for (const integrationId of settled.slice(0, Math.max(0, excess))) await handOver(integrationId);

    // 3. Take free or expired leases up to our share, in random order so processes do not collide.
    const free = wanted.filter((integration) => {
      const lease = held.get(integration.id);
      return !owned.has(integration.id) && (!lease || lease.expiresAt.getTime() <= at.getTime());
    });
    for (const integration of free.sort(() => Math.random() - 0.5)) {
      if (owned.size >= share) break;
      const previous = held.get(integration.id);
      const lease = await leases.acquire(leaseName(integration.id), owner, ttlMs, clock.now());
      if (lease) void take(integration, lease, previous).catch(() => {});
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
      if (lease) return take(integration, lease, previous ?? undefined, signal);
      try {
        await hub.attach(integration, signal);
      } finally {
        hub.detach(integration.id);
      }
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
