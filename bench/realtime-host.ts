/**
 * Child process: one bridge (one realtime hub) that activates many instances against the simulator, in a
 * process of its own so that its memory is measured alone. The WhatsApp gateway is the testkit's double,
 * wrapped to timestamp every send.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { ChatwootBridge, WhatsAppGateway } from "@ryze/chatwoot-core";
import { createSimulatedWhatsAppGateway } from "@ryze/chatwoot-testkit";
import { benchBridge, messageId, type OpenedStore, openStore, textEvent } from "./fixtures.js";
import { serve } from "./rpc.js";
import { now, pool, sleep } from "./stats.js";

let opened: OpenedStore | null = null;
let bridge: ChatwootBridge | null = null;
let baseUrl = "";
/** Text sent to WhatsApp → child time of the send. */
const sends = new Map<string, number>();
/** Outbox dedupe key of an agent reply (`cw:<Chatwoot message id>`) → child time it was queued. */
const queued = new Map<string, number>();

function ready<T>(value: T | null, what: string): T {
  if (value === null) throw new Error(`${what} not set up`);
  return value;
}

const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();

const instanceName = (index: number) => `inst-${index}`;

async function settle(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 4; i++) {
    gc?.();
    await sleep(50);
  }
  return process.memoryUsage();
}

const methods = {
  /**
   * Builds the bridge for `count` instances plus a warm-up one, and runs the warm-up instance once
   * (activation, an inbound message) so that the code paths are loaded before memory is measured.
   */
  async setup(options: { url: string; count: number; warm: { accountId: number; accessToken: string } }) {
    baseUrl = options.url;
    const store = await openStore("sqlite-wal");
    if ("unreachable" in store) throw new Error(store.unreachable);
    opened = store;
    // Timestamps when each agent reply reaches the outbox: splits reply → send into the realtime leg (socket,
    // event routing, bridge read) and the dispatch leg (claim, send).
    const enqueue = store.store.outbox.enqueue.bind(store.store.outbox);
    store.store.outbox.enqueue = async (input, at) => {
      const result = await enqueue(input, at);
      if (input.dedupeKey.startsWith("cw:") && !result.duplicate) queued.set(input.dedupeKey, now());
      return result;
    };
    const inner = createSimulatedWhatsAppGateway();
    const gateway: WhatsAppGateway = {
      ...inner,
      async send(message) {
        const at = now();
        if (message.text !== undefined) sends.set(message.text, at);
        return inner.send(message);
      },
    };
    const names = ["warm", ...Array.from({ length: options.count }, (_, index) => instanceName(index))];
    bridge = benchBridge(store.store, names, { gateway });
    await bridge.start();
    const warm = await bridge.activate("warm", {
      chatwootBaseUrl: baseUrl,
      chatwootAccountId: options.warm.accountId,
      chatwootApiToken: options.warm.accessToken,
      inboxName: "Warm-up",
    });
    if (warm.status !== "active") throw new Error(`warm-up activation failed: ${warm.error}`);
    await bridge.ingest("warm", textEvent(messageId(), 1, "warm-up"));
    await sleep(300);
    return { pid: process.pid };
  },

  memory: () => settle(),

  /** Activates instance `i` with `targets[i]` (its account and token user), `concurrency` at a time. */
  async activateAll(targets: Array<{ accountId: number; accessToken: string }>, concurrency: number) {
    const current = ready(bridge, "bridge");
    const failures: string[] = [];
    const started = now();
    await pool(targets.length, concurrency, async (index) => {
      const target = targets[index]!;
      const result = await current.activate(instanceName(index), {
        chatwootBaseUrl: baseUrl,
        chatwootAccountId: target.accountId,
        chatwootApiToken: target.accessToken,
        inboxName: `Inbox ${index}`,
      });
      if (result.status !== "active") failures.push(`${instanceName(index)}: ${result.error}`);
    });
    return { ms: now() - started, failures: failures.slice(0, 5), failed: failures.length };
  },

  /** One customer message into each of the given instances (opens their conversations). */
  async ingestOne(indices: number[]) {
    const current = ready(bridge, "bridge");
    const ids: string[] = [];
    await pool(indices.length, 16, async (k) => {
      const index = indices[k]!;
      const id = messageId();
      ids.push(id);
      await current.ingest(
        instanceName(index),
        textEvent(id, 200_000 + index, `hello from customer ${index}`),
      );
    });
    return ids;
  },

  /** Child time of the WhatsApp send of each text (undefined when not sent yet). */
  sendTimes: (texts: string[]) => texts.map((text) => sends.get(text)),
  /** Child time at which each agent reply (by Chatwoot message id) was queued in the outbox. */
  queuedTimes: (messageIds: number[]) => messageIds.map((id) => queued.get(`cw:${id}`)),

  /** Event-loop delay since the last reset (ms): how long ready work waited behind other work. */
  loopDelay(reset: boolean) {
    const figures = {
      p50: loopDelay.percentile(50) / 1e6,
      p99: loopDelay.percentile(99) / 1e6,
      max: loopDelay.max / 1e6,
    };
    if (reset) loopDelay.reset();
    return figures;
  },

  cpuMs: () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  },
};

export type RealtimeHostMethods = typeof methods;

serve(methods, async () => {
  await bridge?.stop();
  await opened?.close();
});
