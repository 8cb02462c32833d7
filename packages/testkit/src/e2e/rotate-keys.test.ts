import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ChatwootBridge,
  createChatwootBridge,
  createKeyring,
  createStaticDirectory,
  type RotateKeysResult,
  type StoragePort,
} from "@ryze/chatwoot-core";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import { createKnexStore, migrate } from "@ryze/chatwoot-knex";
import knexFactory, { type Knex } from "knex";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ChatwootSimulator, startChatwootSimulator } from "../simulator/index.js";
import { eventually } from "./harness.js";

// Issue 15, row 10: `rotateKeys` answers { resealed, alreadyCurrent, busy }, so that a host can rotate until it is
// done: `do { r = await bridge.rotateKeys() } while (r.busy > 0)` ends with every stored secret on the new key, even
// while activations hold rows or write them during the passes (docs/security.md, "Rotating keys").

const INSTANCES = ["i0", "i1", "i2", "i3", "i4", "i5"];
const k1 = { id: "k1", key: randomBytes(32).toString("base64") };
const k2 = { id: "k2", key: randomBytes(32).toString("base64") };

let sim: ChatwootSimulator;
beforeAll(async () => {
  sim = await startChatwootSimulator();
});
afterAll(async () => {
  await sim.close();
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function bridgeOn(store: StoragePort, encryption: { current: typeof k1; previous?: (typeof k1)[] }) {
  const bridge = createChatwootBridge({
    store,
    directory: createStaticDirectory({
      accounts: [
        { id: "a", token: "t", instances: INSTANCES.map((name) => ({ name, token: `tok-${name}` })) },
      ],
    }),
    encryption,
    // Webhook mode: every row holds all three sealed secrets (API token, URL secret, inbox signing secret).
    delivery: "webhook",
    publicUrl: "http://127.0.0.1:9",
  });
  cleanups.push(() => bridge.stop());
  return bridge;
}

async function sqliteStore(): Promise<StoragePort> {
  const dir = mkdtempSync(join(tmpdir(), "rotate-keys-"));
  const knex: Knex = knexFactory({
    client: "better-sqlite3",
    connection: { filename: join(dir, "rotate.sqlite") },
    useNullAsDefault: true,
  });
  await migrate(knex, { tablePrefix: "rk_" });
  cleanups.push(async () => {
    await knex.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  return createKnexStore(knex, { tablePrefix: "rk_" });
}

const stores: Array<[string, () => Promise<StoragePort>]> = [
  ["memory", async () => createMemoryStore()],
  ["SQLite (knex)", sqliteStore],
];

describe.each(stores)("rotateKeys on the %s store", (_name, makeStore) => {
  it("rotates until busy is 0 while activations run, and ends with every secret on the new key", async () => {
    const store = await makeStore();
    const accountId = sim.createAccount({ name: "Acme" }).id;
    const admin = sim.createUser({ name: "Jane", accounts: [{ accountId, role: "administrator" }] });
    const body = (token: string) => ({
      chatwootBaseUrl: sim.url,
      chatwootAccountId: accountId,
      chatwootApiToken: token,
    });

    // Everything stored under k1.
    const before = bridgeOn(store, { current: k1 });
    for (const instance of INSTANCES) {
      expect(await before.activate(instance, body(admin.accessToken))).toMatchObject({ status: "active" });
    }

    // The new key is current; k1 opens what is still under it.
    const after: ChatwootBridge = bridgeOn(store, { current: k2, previous: [k1] });
    // Activations that hold their rows for a while during the rotation: half succeed (they write the row again),
    // half are refused by Chatwoot (their claim is released and the row keeps what it had, under k1).
    const slow = sim.faults.inject({ method: "GET", path: "/api/v1/profile", delayMs: 400 });
    const activations = INSTANCES.slice(0, 4).map((instance, index) =>
      after.activate(instance, body(index % 2 === 0 ? admin.accessToken : "revoked-token")),
    );
    await eventually(
      async () => {
        const rows = await store.integrations.list({ limit: 100 });
        const now = Date.now();
        return (
          rows.filter((row) => row.provisioningUntil && row.provisioningUntil.getTime() > now).length === 4
        );
      },
      { what: "the four activations to hold their rows" },
    );

    const passes: RotateKeysResult[] = [];
    let result: RotateKeysResult;
    do {
      result = await after.rotateKeys({ batchSize: 2 });
      passes.push(result);
      if (result.busy > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    } while (result.busy > 0 && passes.length < 200);

    const outcomes = await Promise.all(activations);
    slow.remove();
    expect(outcomes.map((outcome) => outcome.status)).toEqual(["active", "error", "active", "error"]);
    // The first pass found the held rows busy, so the loop went on until they were free.
    expect(passes[0]!.busy).toBeGreaterThan(0);
    expect(result).toMatchObject({ busy: 0 });

    const keyring = createKeyring({ current: k2, previous: [k1] });
    const rows = await store.integrations.list({ limit: 100 });
    expect(rows).toHaveLength(INSTANCES.length);
    const keyIds = rows.flatMap((row) =>
      [row.apiToken, row.webhookSecret, row.signingSecret]
        .filter((sealed): sealed is string => sealed !== null)
        .map((sealed) => `${row.instance}:${keyring.keyIdOf(sealed)}`),
    );
    expect(keyIds.filter((entry) => !entry.endsWith(":k2"))).toEqual([]);
    expect(keyIds.length).toBeGreaterThanOrEqual(INSTANCES.length * 2);
    // Still usable: every integration opens with the new keyring alone.
    const only = bridgeOn(store, { current: k2 });
    expect(await only.rotateKeys()).toEqual({ resealed: 0, alreadyCurrent: INSTANCES.length, busy: 0 });
  });
});
