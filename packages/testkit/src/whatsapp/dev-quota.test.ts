import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "../e2e/harness.js";
import { totalMessages } from "../e2e/inspect.js";
import { startWebhookHost, type WebhookHost } from "../e2e/modes.js";
import { createDevWhatsApp } from "./index.js";

let h: RoutingHarness | undefined;
let host: WebhookHost | undefined;
afterEach(async () => {
  host?.close();
  await h?.close();
  h = host = undefined;
});

// The harness's instance token is "i" (instance "suporte"); the account token is "t".
describe("the simulated WhatsApp side (/dev/whatsapp)", () => {
  it("takes a burst of a few hundred messages without spending the 100-per-minute quota of the API", async () => {
    h = await startRoutingHarness();
    const dev = createDevWhatsApp({
      guard: h.bridge.guard,
      gateway: h.gateway,
      ingest: (instance, event) => h!.bridge.ingest(instance, event),
    });
    host = await startWebhookHost();
    // One server for both, as the example apps mount them: the dev routes first, then the bridge's.
    host.mount({
      handle: async (request) => (await dev.http.handle(request)) ?? h!.bridge.http.handle(request),
    });
    const burst = 300;
    const statuses: number[] = [];
    for (let index = 0; index < burst; index++) {
      const answer = await fetch(`${host.url}/dev/whatsapp/suporte/events`, {
        method: "POST",
        headers: { token: "i", "content-type": "application/json" },
        body: JSON.stringify(textEvent({ phone: `55119000000${index % 10}`, text: `burst ${index}` })),
      });
      statuses.push(answer.status);
      await answer.arrayBuffer();
    }
    // Every one accepted (a spent quota would answer 429 from the 101st on).
    expect(statuses.filter((status) => status !== 202)).toEqual([]);
    await eventually(() => totalMessages(h!) === burst, { timeoutMs: 60_000 });
    // The token's quota for the Chatwoot endpoints is untouched: the first API call spends the first point.
    const list = await fetch(`${host.url}/api/chatwoot/list/suporte`, { headers: { token: "i" } });
    expect(list.status).toBe(200);
    expect(list.headers.get("x-ratelimit-remaining")).toBe("99");
  }, 90_000);

  it("still refuses a wrong token, and a token of another instance", async () => {
    h = await startRoutingHarness();
    const dev = createDevWhatsApp({
      guard: h.bridge.guard,
      gateway: h.gateway,
      ingest: (instance, event) => h!.bridge.ingest(instance, event),
    });
    host = await startWebhookHost();
    host.mount(dev.http);
    const post = (token: string) =>
      fetch(`${host!.url}/dev/whatsapp/suporte/events`, {
        method: "POST",
        headers: { token, "content-type": "application/json" },
        body: JSON.stringify(textEvent({ phone: "5511900000001", text: "hi" })),
      });
    expect((await post("wrong")).status).toBe(401);
    expect((await post("v")).status).toBe(403);
    expect((await post("t")).status).toBe(202);
  });
});
