import { randomBytes } from "node:crypto";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createChatwootBridge } from "../bridge.js";
import { createStaticDirectory } from "../directory/index.js";
import { createMemoryStore } from "../store/memory.js";
import { createBridgeMetrics } from "./metrics.js";

const sources = {
  outbox: async () => ({ depth: 3, dead: 1, oldestDueAt: new Date(10_000), now: new Date(25_000) }),
  realtime: () => null,
};

describe("bridge metrics", () => {
  it("labels the per-message counters by instance only when the host opts in", async () => {
    const plain = createBridgeMetrics({}, sources);
    plain.attempt("inbound", "message", "done", "suporte");
    expect(await plain.registry.metrics()).toContain(
      'chatwoot_bridge_messages_routed_total{direction="inbound",kind="message"} 1',
    );
    expect(await plain.registry.metrics()).not.toContain("suporte");

    const labelled = createBridgeMetrics({ instanceLabels: true, prefix: "wa_" }, sources);
    labelled.attempt("inbound", "message", "done", "suporte");
    labelled.deadLetter("outbound", "vendas");
    const text = await labelled.registry.metrics();
    expect(text).toContain(
      'wa_messages_routed_total{direction="inbound",kind="message",instance="suporte"} 1',
    );
    expect(text).toContain('wa_dead_letters_total{direction="outbound",instance="vendas"} 1');
    // The outbox read at scrape time: depth, dead letters, the oldest due item's age.
    expect(text).toContain("wa_outbox_depth 3");
    expect(text).toContain("wa_outbox_dead_letters 1");
    expect(text).toContain("wa_outbox_oldest_due_age_seconds 15");
  });

  it("registers on the host's registry, and refuses a prefix Prometheus cannot take, naming the field", async () => {
    const registry = new Registry();
    const options = {
      store: createMemoryStore(),
      directory: createStaticDirectory({ accounts: [] }),
      encryption: { current: { id: "k1", key: randomBytes(32).toString("base64") } },
    };
    const bridge = createChatwootBridge({ ...options, metrics: { registry } });
    expect(bridge.metrics).toBe(registry);
    expect(await registry.metrics()).toContain("# TYPE chatwoot_bridge_chatwoot_requests_total counter");
    expect(() => createChatwootBridge({ ...options, metrics: { prefix: "bad-prefix" } })).toThrow(
      /invalid options: metrics\.prefix: must be a Prometheus metric name prefix/,
    );
  });
});
