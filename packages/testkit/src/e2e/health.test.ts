import type { StoragePort } from "@ryze/chatwoot-core";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness } from "./harness.js";

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A memory store whose database can be "unplugged": every read of the integrations then fails. */
function pluggableStore(): { store: StoragePort; unplug(): void } {
  const inner = createMemoryStore();
  let down = false;
  const store: StoragePort = {
    ...inner,
    integrations: {
      ...inner.integrations,
      list: (options) =>
        down
          ? Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:5432"))
          : inner.integrations.list(options),
    },
  };
  return { store, unplug: () => (down = true) };
}

describe("bridge.health()", () => {
  it("is ok when the store answers, the dispatcher runs and the realtime link is confirmed", async () => {
    h = await startRoutingHarness();
    await eventually(() => h!.sim.cable.subscriptions().some((subscription) => subscription.confirmed));
    expect(await h.bridge.health()).toEqual({
      status: "ok",
      checks: { store: { status: "ok" }, dispatcher: { status: "ok" }, realtime: { status: "ok" } },
    });
    expect(await h.bridge.health("liveness")).toEqual({ status: "ok", checks: { store: { status: "ok" } } });
  });

  it("fails readiness for a realtime link down longer than its budget, and recovers with it", async () => {
    // Budget: 2 × maxReconnectDelayMs + 2 × subscribeTimeoutMs = 2 s here.
    h = await startRoutingHarness({
      bridge: { realtime: { subscribeTimeoutMs: 500, maxReconnectDelayMs: 500 } },
    });
    const [integration] = await h.store.integrations.list();
    await eventually(async () => (await h!.bridge.health()).status === "ok");
    await h.sim.closePort();
    const failed = await eventually(async () => {
      const report = await h!.bridge.health();
      return report.status === "fail" ? report : null;
    });
    expect(failed.checks.realtime).toEqual({
      status: "fail",
      detail: expect.stringContaining(
        `1 of 1 realtime links unconfirmed for longer than 2 s: ${integration!.id}`,
      ),
    });
    expect(failed.checks.store).toEqual({ status: "ok" });
    expect(failed.checks.dispatcher).toEqual({ status: "ok" });
    // Liveness does not depend on Chatwoot: restarting the process would not help.
    expect((await h.bridge.health("liveness")).status).toBe("ok");
    await h.sim.reopenPort();
    await eventually(async () => (await h!.bridge.health()).status === "ok", { timeoutMs: 15_000 });
  });

  it("fails liveness and readiness when the store is unreachable, naming it", async () => {
    const { store, unplug } = pluggableStore();
    h = await startRoutingHarness({ store });
    unplug();
    const report = await h.bridge.health("liveness");
    expect(report).toEqual({
      status: "fail",
      checks: {
        store: { status: "fail", detail: "the store is unreachable: connect ECONNREFUSED 127.0.0.1:5432" },
      },
    });
    expect((await h.bridge.health()).checks.store?.status).toBe("fail");
  });

  it("fails readiness once the bridge is stopped (the dispatcher no longer runs)", async () => {
    h = await startRoutingHarness({ bridge: { delivery: "webhook", publicUrl: "http://127.0.0.1:9" } });
    expect((await h.bridge.health()).checks).toEqual({
      store: { status: "ok" },
      dispatcher: { status: "ok" },
    });
    await h.bridge.stop();
    expect(await h.bridge.health()).toEqual({
      status: "fail",
      checks: {
        store: { status: "ok" },
        dispatcher: {
          status: "fail",
          detail: "the outbox dispatcher is not running (bridge.start() not called, or stopped)",
        },
      },
    });
  });
});
