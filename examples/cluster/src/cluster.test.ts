import { randomBytes } from "node:crypto";
import { type ChatwootSimulator, eventually, startChatwootSimulator } from "@ryze/chatwoot-testkit";
import type { Knex } from "knex";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import {
  activateAll,
  type ClusterDatabase,
  type ClusterNode,
  createClusterDatabase,
  createTenants,
  doubleOwners,
  getJson,
  inParallel,
  killAll,
  leaseCounts,
  sampleOwnership,
  snapshot,
  startNode,
  type Tenant,
  textEvent,
  unsettled,
} from "./harness.js";

// Three processes of the Express example on one database and one simulated Chatwoot, with short timings
// (server.ts, CLUSTER_FAST_TIMINGS=1): leases of 3 s renewed every second, outbox claims of 10 s.
const PROCESSES = 3;
const TENANTS = 50;
const LEASE_TTL_MS = 3_000;
const TAKEOVER_BUDGET_MS = LEASE_TTL_MS + 5_000;
const KEY = randomBytes(32).toString("base64");
const ACCOUNT_TOKEN = randomBytes(18).toString("base64url");
/** A caller token used only by the quota test, so that nothing else has consumed from its budget. */
const QUOTA_TOKEN = randomBytes(18).toString("base64url");

function clusterEnv(db: ClusterDatabase, tenants: Tenant[]): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    CHATWOOT_ENCRYPTION_KEY: KEY,
    RYZE_ACCOUNT_TOKEN: ACCOUNT_TOKEN,
    RYZE_INSTANCES: [
      ...tenants.map((tenant) => `${tenant.instance}:${tenant.token}`),
      `quota:${QUOTA_TOKEN}`,
    ].join(","),
    RATE_LIMIT_STORE: "database",
  };
}

const [postgres, mariadb] = await Promise.all([
  createClusterDatabase("postgres"),
  createClusterDatabase("mariadb"),
]);

afterAll(async () => {
  await killAll();
  await postgres?.drop();
  await mariadb?.drop();
});

/** Prints the processes' logs when a test fails. */
function reportLogsOnFailure(nodes: ClusterNode[]): void {
  onTestFailed(() => {
    for (const node of nodes) console.error(`--- ${node.id} (stderr) ---\n${node.logs().slice(-4_000)}`);
  });
}

/**
 * Waits until every integration has exactly one subscription and a live lease held by one of `nodes`, and no
 * process holds more than its fair share.
 */
async function settledOn(
  sim: ChatwootSimulator,
  db: Knex,
  tenants: Tenant[],
  nodes: ClusterNode[],
  timeoutMs: number,
) {
  const owners = nodes.map((node) => node.id);
  const doubles: string[] = [];
  const settled = await eventually(
    async () => {
      const seen = await snapshot(sim, db);
      doubles.push(...doubleOwners(tenants, seen));
      const problems = unsettled(tenants, seen, owners);
      // Settled includes the fair share: a process above it hands its oldest subscriptions back in its next
      // rounds (by design there is a gap until another process takes each), which must not happen mid-sampling.
      // A process can get above its share while the activations run, by taking a lease in its round between
      // another process's persist and that process's own lease.
      const share = Math.ceil(tenants.length / owners.length);
      for (const [owner, count] of leaseCounts(tenants, seen))
        if (count > share) problems.push(`${owner} holds ${count} leases, above its share of ${share}`);
      if (problems.length > 0)
        throw new Error(`${problems.length} problems, e.g. ${problems.slice(0, 3).join("; ")}`);
      return seen;
    },
    { timeoutMs, intervalMs: 50, what: "ownership settled" },
  );
  // Never two subscribers for one integration, not even while ownership moved.
  expect(doubles).toEqual([]);
  return settled;
}

/** (a): sampled for a few seconds, each subscription has exactly one owner, and the leases are spread. */
async function expectOneOwnerEach(sim: ChatwootSimulator, db: Knex, tenants: Tenant[], nodes: ClusterNode[]) {
  await settledOn(sim, db, tenants, nodes, 20_000);
  const owners = nodes.map((node) => node.id);
  const { samples, violations, last } = await sampleOwnership(sim, db, tenants, owners, { forMs: 3_000 });
  expect(violations).toEqual([]);
  expect(samples).toBeGreaterThanOrEqual(10);
  const counts = leaseCounts(tenants, last);
  expect([...counts.keys()].sort()).toEqual([...owners].sort());
  // Fair share: nobody above ⌈50 / 3⌉ = 17 (so nobody owns all), everybody some.
  for (const count of counts.values()) {
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThanOrEqual(Math.ceil(TENANTS / owners.length));
  }
  return last;
}

/**
 * (b): stops one process (SIGKILL: a crash; SIGTERM: a rolling deploy); its subscriptions are owned again by the
 * survivors within TTL + 5 s. `inGap` runs once nobody listens for the orphaned integrations any more.
 */
async function stopAndTakeOver(
  sim: ChatwootSimulator,
  db: Knex,
  tenants: Tenant[],
  nodes: ClusterNode[],
  victim: ClusterNode,
  signal: "SIGKILL" | "SIGTERM",
  inGap?: (orphans: Tenant[]) => Promise<void>,
) {
  const before = await snapshot(sim, db);
  const orphans = tenants.filter((tenant) => before.leases.get(tenant.integrationId)?.owner === victim.id);
  expect(orphans.length).toBeGreaterThan(0);
  const stopping = victim.stop(signal);
  const stoppedAt = Date.now();
  // The simulator sees the subscriptions go at once (sockets closed, or unsubscribed on a graceful stop).
  const orphanTokens = new Set(orphans.map((tenant) => tenant.pubsubToken));
  await eventually(
    () => !sim.cable.subscriptions().some((subscription) => orphanTokens.has(subscription.pubsubToken ?? "")),
    {
      timeoutMs: 5_000,
      intervalMs: 5,
      what: `the ${signal === "SIGKILL" ? "killed" : "stopped"} process's subscriptions gone`,
    },
  );
  await inGap?.(orphans);
  await stopping;
  const survivors = nodes.filter((node) => node !== victim);
  const settled = await settledOn(sim, db, tenants, survivors, TAKEOVER_BUDGET_MS + 2_000);
  const takeoverMs = Date.now() - stoppedAt;
  console.info(`takeover of ${orphans.length} subscriptions after ${signal}: ${takeoverMs} ms`);
  expect(takeoverMs).toBeLessThanOrEqual(TAKEOVER_BUDGET_MS);
  const counts = leaseCounts(tenants, settled);
  expect([...counts.keys()].sort()).toEqual(survivors.map((node) => node.id).sort());
  for (const count of counts.values())
    expect(count).toBeLessThanOrEqual(Math.ceil(TENANTS / survivors.length));
  return { orphans, survivors, takeoverMs };
}

type Replies = Map<number, { tenant: Tenant; text: string }>;

/**
 * Posts one agent reply per orphaned integration while nobody listens, and checks that it really was the gap: no
 * survivor holds the lease yet, and Chatwoot's broadcast of each reply reached no socket.
 */
async function postGapReplies(
  sim: ChatwootSimulator,
  db: Knex,
  orphans: Tenant[],
  survivors: ClusterNode[],
  label: string,
  /** After SIGKILL the gap lasts until the leases expire; after SIGTERM a survivor may take over at once. */
  requireGap = true,
): Promise<Replies> {
  const replies: Replies = new Map();
  for (const tenant of orphans) {
    const [conversation] = chatMessages(sim, tenant);
    const text = `${label} reply for ${tenant.instance}`;
    const message = sim.postAgentMessage({
      accountId: tenant.accountId,
      conversationId: conversation!.conversationId,
      userId: tenant.userId,
      content: text,
    });
    replies.set(Number(message.id), { tenant, text });
  }
  if (!requireGap) return replies;
  const during = await snapshot(sim, db);
  const survivorIds = survivors.map((node) => node.id);
  for (const tenant of orphans) {
    expect(survivorIds).not.toContain(during.leases.get(tenant.integrationId)?.owner);
  }
  const created = await eventually(
    () => {
      const list = sim.broadcasts.filter(
        (broadcast) => broadcast.event === "message.created" && replies.has(Number(broadcast.data.id)),
      );
      return list.length === orphans.length && list.every((broadcast) => broadcast.sent) ? list : null;
    },
    { timeoutMs: 2_000, what: "gap reply broadcasts sent" },
  );
  expect(created.map((broadcast) => broadcast.frames)).toEqual(orphans.map(() => 0));
  return replies;
}

/** Waits until every reply went through the outbox, then checks it was sent to WhatsApp exactly once. */
async function expectSentOnce(db: Knex, survivors: ClusterNode[], replies: Replies, timeoutMs = 15_000) {
  const ids = [...replies.keys()];
  await eventually(
    async () => {
      const status = await outboxStatus(db, ids);
      return ids.every((id) => status.get(id)?.join() === "done");
    },
    { timeoutMs, intervalMs: 100, what: `${ids.length} replies sent (outbox rows done)` },
  );
  for (const { tenant, text } of replies.values()) {
    expect(await timesSent(survivors, tenant, text), text).toBe(1);
  }
}

/** Outbox rows of these Chatwoot messages (agent replies are deduplicated on `cw:<message id>`). */
async function outboxStatus(db: Knex, messageIds: number[]): Promise<Map<number, string[]>> {
  const rows = (await db("chatwoot_outbox")
    .whereIn(
      "dedupe_key",
      messageIds.map((id) => `cw:${id}`),
    )
    .select("dedupe_key", "status")) as Array<{ dedupe_key: string; status: string }>;
  const byMessage = new Map<number, string[]>();
  for (const row of rows) {
    const id = Number(row.dedupe_key.slice(3));
    byMessage.set(id, [...(byMessage.get(id) ?? []), row.status]);
  }
  return byMessage;
}

/** How often `text` was sent to WhatsApp for the tenant, summed over the processes' simulated gateways. */
async function timesSent(nodes: ClusterNode[], tenant: Tenant, text: string): Promise<number> {
  let total = 0;
  for (const node of nodes) {
    const { status, body } = await getJson<{ sent: Array<{ text?: string }> }>(
      `${node.url}/dev/whatsapp/${tenant.instance}/sent`,
      tenant.token,
    );
    expect(status).toBe(200);
    total += body.sent.filter((record) => record.text === text).length;
  }
  return total;
}

interface SeenMessage {
  id: number;
  content: string | null;
  message_type: number;
  source_id: string | null;
}

const chatMessages = (sim: ChatwootSimulator, tenant: Tenant) =>
  (sim.conversations(tenant.accountId) as Array<{ id: number }>).map((conversation) => ({
    conversationId: conversation.id,
    messages: (sim.messages(tenant.accountId, conversation.id) as unknown as SeenMessage[]).filter(
      (message) => message.message_type === 0,
    ),
  }));

describe.skipIf(!postgres)("three processes on PostgreSQL", () => {
  const db = postgres!;
  let sim: ChatwootSimulator;
  let tenants: Tenant[];
  let nodes: ClusterNode[];
  let activationFailures: string[] = [];
  const CHATS = 4;
  const MESSAGES = 5;
  /** Gap replies: Chatwoot message id → tenant and text. */
  const gapReplies = new Map<number, { tenant: Tenant; text: string }>();

  beforeAll(async () => {
    sim = await startChatwootSimulator({ cablePingIntervalMs: 500 });
    tenants = createTenants(sim, TENANTS);
    const env = clusterEnv(db, tenants);
    nodes = await Promise.all(["pg-a", "pg-b", "pg-c"].map((id) => startNode(id, env)));
    expect(nodes).toHaveLength(PROCESSES);
    activationFailures = await activateAll(sim, nodes, tenants, ACCOUNT_TOKEN);
  }, 60_000);

  afterAll(async () => {
    await killAll();
    await sim?.close();
  });

  it("(a) gives each of the 50 subscriptions exactly one owner, spread over the processes", async () => {
    reportLogsOnFailure(nodes);
    // Every activation answers 201 (each one confirms its subscription while the ownership rounds run).
    expect.soft(activationFailures).toEqual([]);
    await expectOneOwnerEach(sim, db.knex, tenants, nodes);
  }, 30_000);

  it("(d) delivers a burst of 1,000 inbound messages exactly once, in per-chat order", async () => {
    reportLogsOnFailure(nodes);
    const chats = tenants.flatMap((tenant, t) =>
      Array.from({ length: CHATS }, (_, c) => ({
        tenant,
        phone: `5511${String(900_000_000 + t * 100 + c)}`,
      })),
    );
    let request = 0;
    const statuses = await inParallel(chats, 50, async ({ tenant, phone }) => {
      const answers: number[] = [];
      // One chat's messages in order (each stored before the next is sent); chats in parallel.
      for (let n = 0; n < MESSAGES; n++) {
        const node = nodes[request++ % nodes.length]!;
        const id = `3EB0${phone}${String(n).padStart(4, "0")}`;
        const response = await fetch(`${node.url}/dev/whatsapp/${tenant.instance}/events`, {
          method: "POST",
          headers: { token: tenant.token, "content-type": "application/json" },
          body: JSON.stringify(textEvent(id, phone, `${phone} #${n}`)),
        });
        await response.arrayBuffer();
        answers.push(response.status);
      }
      return answers;
    });
    expect(statuses.flat().filter((status) => status !== 202)).toEqual([]);
    const total = () =>
      tenants.reduce(
        (sum, tenant) => sum + chatMessages(sim, tenant).reduce((n, chat) => n + chat.messages.length, 0),
        0,
      );
    const started = Date.now();
    await eventually(() => total() >= TENANTS * CHATS * MESSAGES, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: "1,000 messages",
    });
    console.info(`1,000 inbound messages delivered ${Date.now() - started} ms after the last was accepted`);
    for (const tenant of tenants) {
      const conversations = chatMessages(sim, tenant);
      expect(conversations).toHaveLength(CHATS);
      for (const { messages } of conversations) {
        const phone = messages[0]?.content?.split(" ")[0];
        expect(messages.map((message) => message.content)).toEqual(
          Array.from({ length: MESSAGES }, (_, n) => `${phone} #${n}`),
        );
        expect(new Set(messages.map((message) => message.source_id)).size).toBe(MESSAGES);
      }
    }
  }, 90_000);

  it("(e) lets exactly 100 of 300 requests with one token through in the minute, across the processes", async () => {
    reportLogsOnFailure(nodes);
    const statuses = await inParallel(
      Array.from({ length: 300 }, (_, n) => nodes[n % nodes.length]!),
      30,
      async (node) => {
        const response = await fetch(`${node.url}/api/chatwoot/list/quota`, {
          headers: { token: QUOTA_TOKEN },
        });
        await response.arrayBuffer();
        return response.status;
      },
    );
    const limited = statuses.filter((status) => status === 429).length;
    expect(statuses.filter((status) => status >= 500)).toEqual([]);
    expect(limited).toBe(200);
    expect(statuses.length - limited).toBe(100);
  }, 30_000);

  it("(b, c) takes a killed process's subscriptions over within TTL + 5 s; replies posted in the gap are sent once", async () => {
    reportLogsOnFailure(nodes);
    const victim = nodes[2]!;
    const survivors = nodes.filter((node) => node !== victim);
    const { orphans } = await stopAndTakeOver(
      sim,
      db.knex,
      tenants,
      nodes,
      victim,
      "SIGKILL",
      async (orphans) => {
        for (const [id, reply] of await postGapReplies(sim, db.knex, orphans, survivors, "crash"))
          gapReplies.set(id, reply);
      },
    );
    // The survivors fetch what they missed (takeover backfill) and send each reply once.
    await expectSentOnce(db.knex, survivors, gapReplies);

    // And they listen: a reply after the takeover goes out through the realtime link.
    const tenant = orphans[0]!;
    const [conversation] = chatMessages(sim, tenant);
    const text = `after takeover for ${tenant.instance}`;
    const after = sim.postAgentMessage({
      accountId: tenant.accountId,
      conversationId: conversation!.conversationId,
      userId: tenant.userId,
      content: text,
    });
    await expectSentOnce(db.knex, survivors, new Map([[Number(after.id), { tenant, text }]]), 10_000);
  }, 60_000);

  it("still has every message exactly once at the end", async () => {
    reportLogsOnFailure(nodes);
    const survivors = nodes.filter((node) => node.child.exitCode === null && node.child.signalCode === null);
    let total = 0;
    for (const tenant of tenants) {
      for (const { messages } of chatMessages(sim, tenant)) total += messages.length;
    }
    expect(total).toBe(TENANTS * CHATS * MESSAGES);
    expect(gapReplies.size).toBeGreaterThan(0);
    for (const { tenant, text } of gapReplies.values())
      expect(await timesSent(survivors, tenant, text)).toBe(1);
    const dead = await db.knex("chatwoot_outbox").where({ status: "dead" }).count({ n: "*" });
    expect(Number(dead[0]?.n)).toBe(0);
  }, 30_000);

  it("(g) hands a gracefully stopped process's subscriptions over without losing replies posted meanwhile", async () => {
    reportLogsOnFailure(nodes);
    // A rolling deploy: SIGTERM releases the leases at once, and the last process takes everything over. A
    // released lease names no previous owner, yet the taker must still fetch what was posted since the release.
    const alive = nodes.filter((node) => node.child.exitCode === null && node.child.signalCode === null);
    expect(alive).toHaveLength(2);
    const [survivor, victim] = alive as [ClusterNode, ClusterNode];
    let replies: Replies = new Map();
    await stopAndTakeOver(sim, db.knex, tenants, alive, victim, "SIGTERM", async (orphans) => {
      replies = await postGapReplies(sim, db.knex, orphans, [survivor], "handover", false);
    });
    await expectSentOnce(db.knex, [survivor], replies);
  }, 60_000);
});

describe.skipIf(!mariadb)("three processes on MariaDB", () => {
  const db = mariadb!;
  let sim: ChatwootSimulator;
  let tenants: Tenant[];
  let nodes: ClusterNode[];
  let activationFailures: string[] = [];

  beforeAll(async () => {
    sim = await startChatwootSimulator({ cablePingIntervalMs: 500 });
    tenants = createTenants(sim, TENANTS);
    const env = clusterEnv(db, tenants);
    nodes = await Promise.all(["my-a", "my-b", "my-c"].map((id) => startNode(id, env)));
    activationFailures = await activateAll(sim, nodes, tenants, ACCOUNT_TOKEN);
  }, 60_000);

  afterAll(async () => {
    await killAll();
    await sim?.close();
  });

  it("(f, a) gives each of the 50 subscriptions exactly one owner, spread over the processes", async () => {
    reportLogsOnFailure(nodes);
    // Every activation answers 201 (each one confirms its subscription while the ownership rounds run).
    expect.soft(activationFailures).toEqual([]);
    await expectOneOwnerEach(sim, db.knex, tenants, nodes);
  }, 30_000);

  it("(f, b) takes a killed process's subscriptions over within TTL + 5 s", async () => {
    reportLogsOnFailure(nodes);
    await stopAndTakeOver(sim, db.knex, tenants, nodes, nodes[0]!, "SIGKILL");
  }, 30_000);
});
