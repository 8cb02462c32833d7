/**
 * 5. Secrets: seal and open operations per second with the default keyring (AES-256-GCM), and the share of
 * `open` in the list endpoint's time, measured in-process through `bridge.http.handle` (no framework, no
 * socket) with the live check cached. The opens per list call are counted by wrapping the keyring.
 */
import { type Cipher, createChatwootBridge, createKeyring, type StoragePort } from "@ryze/chatwoot-core";
import { createMemoryStore, secretAad } from "@ryze/chatwoot-core/testing";
import { benchDirectory, ENCRYPTION, openStore } from "./fixtures.js";
import type { Child } from "./rpc.js";
import type { SimHostMethods } from "./sim-host.js";
import { type Figure, figure, now } from "./stats.js";

export interface SecretsConfig {
  runs: number;
  /** Seal (and open) operations per run. */
  operations: number;
  /** In-process list calls per run. */
  listCalls: number;
}

export interface ListShare {
  store: string;
  /** Mean time of one in-process list call (µs). */
  listUs: Figure;
  opensPerList: number;
  /** `opensPerList × open time / list time`. */
  share: Figure;
}

export interface SecretsResult {
  seal: Figure;
  open: Figure;
  sealUs: Figure;
  openUs: Figure;
  list: ListShare[];
}

const TOKEN = "yjM1pE2xqvGLt4gk8bZHa6Wn"; // the length of a Chatwoot access token
const AAD = secretAad("chatwoot_integrations", "api_token", "int_AbCdEfGhIjKlMnOp");
const INSTANCE = "suporte";

function timeOps(operations: number, op: (i: number) => void): number {
  const started = now();
  for (let i = 0; i < operations; i++) op(i);
  return (now() - started) / operations; // ms per operation
}

async function listShare(
  sim: Child<SimHostMethods>,
  label: string,
  store: StoragePort,
  openMs: number[],
  config: SecretsConfig,
): Promise<ListShare> {
  const keyring = createKeyring(ENCRYPTION);
  let opens = 0;
  const cipher: Cipher = {
    currentKeyId: keyring.currentKeyId,
    seal: (plaintext, aad) => keyring.seal(plaintext, aad),
    open: (sealed, aad) => {
      opens++;
      return keyring.open(sealed, aad);
    },
    keyIdOf: (sealed) => keyring.keyIdOf(sealed),
  };
  const { handle, url } = await sim.call("start", {});
  const bridge = createChatwootBridge({
    store,
    directory: benchDirectory([INSTANCE]),
    cipher,
    rateLimit: { points: 1e9 },
  });
  try {
    const admin = await sim.call("createAccountWithAdmin", handle, "Secrets");
    await bridge.start();
    const activated = await bridge.activate(INSTANCE, {
      chatwootBaseUrl: url,
      chatwootAccountId: admin.accountId,
      chatwootApiToken: admin.accessToken,
      inboxName: "Bench secrets",
    });
    if (activated.status !== "active") throw new Error(`activation failed: ${activated.error}`);
    const list = {
      method: "GET",
      path: `/api/chatwoot/list/${INSTANCE}`,
      headers: { token: `token-${INSTANCE}` },
    };
    const call = async () => {
      const response = await bridge.http.handle(list);
      if (response?.status !== 200) throw new Error(`list answered ${response?.status}: ${response?.body}`);
    };
    for (let i = 0; i < 200; i++) await call(); // fills the live-check cache, warms the JIT
    const listUs: number[] = [];
    const share: number[] = [];
    let opensPerList = 0;
    for (let run = 0; run < config.runs; run++) {
      opens = 0;
      const started = now();
      for (let i = 0; i < config.listCalls; i++) await call();
      const perCall = (now() - started) / config.listCalls;
      opensPerList = opens / config.listCalls;
      listUs.push(perCall * 1000);
      share.push((opensPerList * openMs[run]!) / perCall);
    }
    return { store: label, listUs: figure(listUs, "µs"), opensPerList, share: figure(share, "") };
  } finally {
    await bridge.stop();
    await sim.call("stop", handle);
  }
}

export async function benchSecrets(
  sim: Child<SimHostMethods>,
  config: SecretsConfig,
  log: (line: string) => void,
): Promise<SecretsResult> {
  const keyring = createKeyring(ENCRYPTION);
  const sealed = keyring.seal(TOKEN, AAD);
  // JIT warm-up.
  timeOps(2_000, () => keyring.open(keyring.seal(TOKEN, AAD), AAD));
  const sealMs: number[] = [];
  const openMs: number[] = [];
  for (let run = 0; run < config.runs; run++) {
    sealMs.push(timeOps(config.operations, () => keyring.seal(TOKEN, AAD)));
    openMs.push(timeOps(config.operations, () => keyring.open(sealed, AAD)));
  }
  log(
    `  seal ${(1000 / sealMs[0]!).toFixed(0)}/s, open ${(1000 / openMs[0]!).toFixed(0)}/s (first run; ${config.runs} runs)`,
  );
  const list: ListShare[] = [];
  const memory = await listShare(sim, "memory store", createMemoryStore(), openMs, config);
  list.push(memory);
  const opened = await openStore("sqlite-wal");
  if (!("unreachable" in opened)) {
    try {
      list.push(await listShare(sim, "SQLite store (WAL)", opened.store, openMs, config));
    } finally {
      await opened.close();
    }
  }
  for (const entry of list)
    log(
      `  list in-process (${entry.store}): ${entry.listUs.median.toFixed(1)} µs per call, ` +
        `${entry.opensPerList} open(s) per call, open's share ${(entry.share.median * 100).toFixed(1)} %`,
    );
  return {
    seal: figure(
      sealMs.map((ms) => 1000 / ms),
      "ops/s",
    ),
    open: figure(
      openMs.map((ms) => 1000 / ms),
      "ops/s",
    ),
    sealUs: figure(
      sealMs.map((ms) => ms * 1000),
      "µs",
    ),
    openUs: figure(
      openMs.map((ms) => ms * 1000),
      "µs",
    ),
    list,
  };
}
