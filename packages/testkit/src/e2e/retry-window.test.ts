import { createMemoryStore, type MemoryOutboxRecord } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

// docs/routing.md, docs/architecture.md: a message Chatwoot does not take (network errors, 5xx, 429) is retried
// for 24 h; only then is it a dead letter, named in the integration's last_error.

let h: RoutingHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const HOUR = 60 * 60 * 1000;
const PHONE = "5511955557777";

describe("inbound retry window (docs/routing.md)", () => {
  it("retries a message Chatwoot keeps refusing with 503 for 24 hours, then makes it a dead letter named in last_error", async () => {
    // The bridge's clock, moved forward by hand: retries are scheduled on it, and the window is counted on it.
    let offsetMs = 0;
    const clock = { now: () => new Date(Date.now() + offsetMs) };
    const store = createMemoryStore();
    h = await startRoutingHarness({ store, bridge: { clock } });
    await h.ingest(textEvent({ phone: PHONE, text: "before" }));
    await eventually(() => totalMessages(h!) === 1);
    const integrationId = (await h.store.integrations.get("suporte"))!.id;
    await eventually(async () => (await h!.store.outbox.count(integrationId)).done === 1);

    const refusing = h.sim.faults.inject({ method: "POST", path: /\/messages$/, status: 503, body: "busy" });
    await h.ingest(textEvent({ phone: PHONE, text: "stuck", id: "3EB0STUCK00000001" }));
    const item = (): MemoryOutboxRecord =>
      [...store.raw.outbox.values()].find((record) => record.dedupeKey === "wa:3EB0STUCK00000001")!;
    await eventually(() => item().attempts >= 2, { what: "two refused attempts" });

    // 23 h 59 min later: still being retried, not given up.
    offsetMs = 24 * HOUR - 60_000;
    const before = item().attempts;
    await eventually(
      () => {
        const now = item();
        if (now.status === "dead") throw new Error(`it was given up before 24 h: ${now.lastError}`);
        return now.attempts > before + 1;
      },
      { what: "more attempts close to the end of the window" },
    );
    expect(item().status === "pending" || item().status === "claimed").toBe(true);
    expect((await h.store.outbox.count(integrationId)).dead).toBe(0);
    expect((await h.store.integrations.get("suporte"))!.lastError).toBe("");

    // Past 24 h: the next refused attempt gives it up.
    offsetMs = 24 * HOUR + 1_000;
    await eventually(
      () => {
        const now = item();
        if (now.status !== "dead") throw new Error(`still ${now.status} after ${now.attempts} attempts`);
        return true;
      },
      { what: "the dead letter after 24 h" },
    );
    const answer = await h.bridge.http.handle({
      method: "GET",
      path: "/api/chatwoot/list/suporte",
      headers: { token: "t" },
    });
    expect(JSON.parse(answer!.body!).last_error).toMatch(
      // Chatwoot's answer was not JSON: nothing of it is shown (docs/security.md).
      /^WhatsApp message 3EB0STUCK00000001 could not be delivered to Chatwoot: .*HTTP 503$/,
    );

    // The chat is not blocked behind it.
    refusing.remove();
    await h.ingest(textEvent({ phone: PHONE, text: "after" }));
    await eventually(() => totalMessages(h!) === 2);
    expect(chatMessages(h, conversationsOf(h)[0]!.id).map((message) => message.content)).toEqual([
      "before",
      "after",
    ]);
  });
});
