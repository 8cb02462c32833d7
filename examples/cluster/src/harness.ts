import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { appendFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { migrate } from "@ryze/chatwoot-knex";
import { type ChatwootSimulator, eventually, textEvent as whatsappText } from "@ryze/chatwoot-testkit";
import { createTestDatabase, type DatabaseKind } from "@ryze/chatwoot-testkit/databases";
import type { Knex } from "knex";

const root = resolve(import.meta.dirname, "../../..");
const serverEntry = join(import.meta.dirname, "server.ts");

// ---------------------------------------------------------------------------------------------------------------
// Databases: a fresh PostgreSQL schema or MariaDB database per test file (`cw_cluster_<random>`), dropped
// afterwards; null (after a loud warning) only when the server cannot be reached, unless CI_REQUIRE_DB=1.

export interface ClusterDatabase {
  kind: DatabaseKind;
  /** DATABASE_URL for the processes. */
  url: string;
  /** The test's own connection (reads the leases and outbox tables). */
  knex: Knex;
  drop(): Promise<void>;
}

export async function createClusterDatabase(kind: DatabaseKind): Promise<ClusterDatabase | null> {
  const database = await createTestDatabase(kind, "cw_cluster");
  if (!database) return null;
  const knex = database.connect({ poolMax: 4 });
  // Migrated once here, so that the processes starting together find the tables in place.
  await migrate(knex);
  return {
    kind,
    url: database.url,
    knex,
    async drop() {
      await knex.destroy();
      if (process.env.CLUSTER_KEEP_DB === "1") return void console.info(`kept ${kind} ${database.name}`);
      await database.drop();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

export interface ClusterNode {
  /** Its CLUSTER_PROCESS_ID: the owner name in leases and claims. */
  id: string;
  url: string;
  child: ChildProcess;
  /** The tail of what it wrote (logs at LOG_LEVEL), for failure reports. */
  logs(): string;
  /** Sends the signal and waits for the exit. */
  stop(signal: NodeJS.Signals): Promise<void>;
}

const started: ClusterNode[] = [];

/** Starts `src/server.ts` as its own Node process (cwd = repository root, TypeScript sources through tsx). */
export async function startNode(id: string, env: Record<string, string>): Promise<ClusterNode> {
  const child = spawn(process.execPath, ["--conditions=@ryze/source", "--import", "tsx", serverEntry], {
    cwd: root,
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: "0",
      LOG_LEVEL: process.env.CLUSTER_LOG_LEVEL ?? "warn",
      CLUSTER_FAST_TIMINGS: "1",
      CLUSTER_PROCESS_ID: id,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const logFile = process.env.CLUSTER_LOG_DIR ? join(process.env.CLUSTER_LOG_DIR, `${id}.log`) : null;
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-50_000);
    if (logFile) appendFileSync(logFile, chunk);
  };
  child.stdout!.on("data", (chunk: Buffer) => {
    keep(chunk);
  });
  child.stderr!.on("data", keep);
  const exited = once(child, "exit");
  const node: ClusterNode = {
    id,
    url: "",
    child,
    logs: () => output,
    async stop(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
  started.push(node);
  const port = await eventually(
    () => {
      const match = /^READY (\d+)$/m.exec(output);
      if (match) return Number(match[1]);
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${output.slice(-2_000)}`);
      return null;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: `process ${id} ready` },
  );
  node.url = `http://127.0.0.1:${port}`;
  return node;
}

/** SIGKILLs every process still running (afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all(started.splice(0).map((node) => node.stop("SIGKILL")));
}

// ---------------------------------------------------------------------------------------------------------------
// Chatwoot side: one account and one administrator per integration, so that each integration is one user's
// socket with one RoomChannel subscription (the hub shares a socket per Chatwoot user).

export interface Tenant {
  instance: string;
  /** The instance's caller token (RYZE_INSTANCES). */
  token: string;
  accountId: number;
  userId: number;
  accessToken: string;
  pubsubToken: string;
  /** Set by `activateAll`. */
  integrationId: string;
}

export function createTenants(sim: ChatwootSimulator, count: number): Tenant[] {
  return Array.from({ length: count }, (_, n) => {
    const instance = `wa${String(n + 1).padStart(2, "0")}`;
    const accountId = sim.createAccount({ name: `Tenant ${instance}` }).id;
    const user = sim.createUser({
      name: `Admin ${instance}`,
      accounts: [{ accountId, role: "administrator" }],
    });
    return {
      instance,
      token: randomBytes(18).toString("base64url"),
      accountId,
      userId: user.id,
      accessToken: user.accessToken,
      pubsubToken: user.pubsubToken,
      integrationId: "",
    };
  });
}

/** Runs `task` over `items` with at most `limit` at a time. */
export async function inParallel<T, R>(
  items: T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
) {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await task(items[index]!, index);
      }
    }),
  );
  return results;
}

/**
 * Activates every tenant over HTTP, round-robin over the processes (`POST /api/chatwoot/set/:instance`). Returns
 * the failed activations (an integration that failed after it was persisted is still looked up, so the ownership
 * checks can go on).
 */
export async function activateAll(
  sim: ChatwootSimulator,
  nodes: ClusterNode[],
  tenants: Tenant[],
  accountToken: string,
): Promise<string[]> {
  const failures: string[] = [];
  await inParallel(tenants, 10, async (tenant, index) => {
    const node = nodes[index % nodes.length]!;
    const response = await fetch(`${node.url}/api/chatwoot/set/${tenant.instance}`, {
      method: "POST",
      headers: { token: accountToken, "content-type": "application/json" },
      body: JSON.stringify({
        chatwootBaseUrl: sim.url,
        chatwootAccountId: tenant.accountId,
        chatwootApiToken: tenant.accessToken,
      }),
    });
    const body = (await response.json()) as { bridge_integration_id?: string };
    if (response.status === 201 && body.bridge_integration_id) {
      tenant.integrationId = body.bridge_integration_id;
      return;
    }
    failures.push(`${tenant.instance} on ${node.id}: ${response.status} ${JSON.stringify(body)}`);
    const listed = await getJson<{ bridge_integration_id?: string }>(
      `${node.url}/api/chatwoot/list/${tenant.instance}`,
      accountToken,
    );
    tenant.integrationId = listed.body.bridge_integration_id ?? "";
  });
  return failures;
}

// ---------------------------------------------------------------------------------------------------------------
// Ownership, seen from both sides: the simulator's cable subscriptions and the leases table.

export interface OwnershipSnapshot {
  at: number;
  /** pubsub token → subscriptions on the simulator (any socket, confirmed or not). */
  subscriptions: Map<string, { total: number; confirmed: number }>;
  /** integration id → lease owner (null once released) and expiry (epoch ms). */
  leases: Map<string, { owner: string | null; expiresAt: number }>;
}

export async function snapshot(sim: ChatwootSimulator, db: Knex): Promise<OwnershipSnapshot> {
  const rows = (await db.raw(
    "select name, owner, expires_at from chatwoot_leases where name like 'realtime:%'",
  )) as { rows: Array<Record<string, unknown>> } | [Array<Record<string, unknown>>, unknown];
  const list = Array.isArray(rows) ? rows[0] : rows.rows;
  const at = Date.now();
  const subscriptions = new Map<string, { total: number; confirmed: number }>();
  for (const subscription of sim.cable.subscriptions()) {
    if (!subscription.pubsubToken) continue;
    const entry = subscriptions.get(subscription.pubsubToken) ?? { total: 0, confirmed: 0 };
    entry.total += 1;
    if (subscription.confirmed) entry.confirmed += 1;
    subscriptions.set(subscription.pubsubToken, entry);
  }
  const leases = new Map(
    list.map((row) => [
      String(row.name).slice("realtime:".length),
      { owner: row.owner === null ? null : String(row.owner), expiresAt: Number(row.expires_at) },
    ]),
  );
  return { at, subscriptions, leases };
}

/** Subscriptions held twice at once (two processes listening for one integration): must never happen. */
export function doubleOwners(tenants: Tenant[], seen: OwnershipSnapshot): string[] {
  return tenants
    .filter((tenant) => (seen.subscriptions.get(tenant.pubsubToken)?.total ?? 0) > 1)
    .map(
      (tenant) => `${tenant.instance} subscribed ${seen.subscriptions.get(tenant.pubsubToken)?.total} times`,
    );
}

/**
 * What keeps a settled cluster from being settled: each integration must have exactly one confirmed subscription
 * and a live lease held by one of `owners`. Empty when settled.
 */
export function unsettled(tenants: Tenant[], seen: OwnershipSnapshot, owners: string[]): string[] {
  const problems = doubleOwners(tenants, seen);
  for (const tenant of tenants) {
    const subscription = seen.subscriptions.get(tenant.pubsubToken);
    if (subscription?.confirmed !== 1)
      problems.push(`${tenant.instance}: ${subscription?.confirmed ?? 0} confirmed`);
    const lease = seen.leases.get(tenant.integrationId);
    if (!lease?.owner || !owners.includes(lease.owner)) {
      problems.push(`${tenant.instance}: lease owner ${lease?.owner ?? "none"}`);
    } else if (lease.expiresAt <= seen.at) {
      problems.push(`${tenant.instance}: lease of ${lease.owner} expired`);
    }
  }
  return problems;
}

/** How many of the tenants' leases each owner holds. */
export function leaseCounts(tenants: Tenant[], seen: OwnershipSnapshot): Map<string, number> {
  const counts = new Map<string, number>();
  for (const tenant of tenants) {
    const owner = seen.leases.get(tenant.integrationId)?.owner;
    if (owner) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  return counts;
}

/** Samples ownership every `everyMs` for `forMs`; returns every violation seen (settledness required throughout). */
export async function sampleOwnership(
  sim: ChatwootSimulator,
  db: Knex,
  tenants: Tenant[],
  owners: string[],
  { forMs, everyMs = 100 }: { forMs: number; everyMs?: number },
): Promise<{ samples: number; violations: string[]; last: OwnershipSnapshot }> {
  const until = Date.now() + forMs;
  const violations: string[] = [];
  let samples = 0;
  let last: OwnershipSnapshot;
  do {
    last = await snapshot(sim, db);
    samples++;
    const counts = leaseCounts(tenants, last);
    const problems = unsettled(tenants, last, owners);
    if (counts.size !== owners.length) problems.push(`leases held by ${counts.size} processes`);
    for (const problem of problems) violations.push(`+${forMs - (until - last.at)}ms ${problem}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  } while (Date.now() < until);
  return { samples, violations, last };
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP helpers

export async function getJson<T>(url: string, token: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url, { headers: { token } });
  return { status: response.status, body: (await response.json()) as T };
}

/** A WhatsApp `message.exchange` envelope of a private chat (`docs/events.md`). */
export function textEvent(id: string, phone: string, text: string) {
  return whatsappText({ id, phone, text });
}
