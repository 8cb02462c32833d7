import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { conversationsOf, totalMessages } from "./inspect.js";
import { startWebhookHost, type WebhookHost } from "./modes.js";

let h: RoutingHarness | undefined;
let host: WebhookHost | undefined;
afterEach(async () => {
  host?.close();
  await h?.close();
  h = host = undefined;
});

const PHONE = "5511944443333";

/** The value of one sample of the Prometheus text format, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    const wanted = Object.entries(labels);
    if (wanted.length !== Object.keys(found).length) continue;
    if (wanted.every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

describe("metrics", () => {
  it("a scrape of /metrics after a scripted run shows each metric with the expected values", async () => {
    h = await startRoutingHarness({ bridge: { rateLimit: { points: 2, durationSeconds: 60 } } });
    const harness = h;
    host = await startWebhookHost();
    // The host serves the bridge's routes and its registry, as the example apps do.
    host.mount({
      async handle(request) {
        if (request.path === "/metrics") {
          return {
            status: 200,
            headers: { "content-type": harness.bridge.metrics.contentType },
            body: await harness.bridge.metrics.metrics(),
          };
        }
        return harness.bridge.http.handle(request);
      },
    });
    const scrape = async () => {
      const answer = await fetch(`${host!.url}/metrics`);
      expect(answer.status).toBe(200);
      expect(answer.headers.get("content-type")).toMatch(/^text\/plain/);
      return answer.text();
    };
    const p = "chatwoot_bridge_";

    // A failed activation (a token Chatwoot rejects) next to the harness's successful one.
    const refused = await h.bridge.activate("vendas", {
      chatwootBaseUrl: h.sim.url,
      chatwootAccountId: h.accountId,
      chatwootApiToken: "not-a-chatwoot-token",
    });
    expect(refused.status).toBe("error");

    // WhatsApp → Chatwoot.
    await h.ingest(textEvent({ phone: PHONE, text: "hello" }));
    await eventually(() => totalMessages(harness) === 1);
    const conversationId = conversationsOf(h)[0]!.id;

    // A Chatwoot outage: messages#create answers 503 (slowly) until it is lifted; the message waits in the outbox,
    // due, meanwhile.
    const outage = h.sim.faults.inject({ method: "POST", path: /\/messages$/, status: 503, delayMs: 300 });
    await h.ingest(textEvent({ phone: PHONE, text: "during the outage" }));
    const during = await eventually(async () => {
      const text = await scrape();
      const retried = sample(text, `${p}retries_total`, { direction: "inbound" }) ?? 0;
      return retried >= 2 && (sample(text, `${p}outbox_oldest_due_age_seconds`) ?? 0) > 0 ? text : null;
    });
    expect(sample(during, `${p}outbox_depth`)).toBe(1);
    expect(
      sample(during, `${p}chatwoot_requests_total`, { operation: "createMessage", status_class: "5xx" }),
    ).toBeGreaterThanOrEqual(2);
    outage.remove();
    await eventually(() => totalMessages(harness) === 2, { what: "the message after the outage" });

    // Chatwoot → WhatsApp, then a reply WhatsApp refuses three times: a dead letter.
    await eventually(() => harness.sim.cable.subscriptions().some((subscription) => subscription.confirmed));
    const reply = (content: string) =>
      harness.sim.postAgentMessage({
        accountId: harness.accountId,
        conversationId,
        userId: harness.agent.id,
        content,
      });
    reply("how can I help?");
    await eventually(() => harness.gateway.sent("suporte").length === 1, { what: "the reply" });
    h.gateway.failNext("suporte", 3, "phone offline");
    reply("are you there?");
    await eventually(
      async () => sample(await scrape(), `${p}dead_letters_total`, { direction: "outbound" }) === 1,
      {
        what: "the dead letter",
      },
    );

    // A realtime outage: a reply posted meanwhile is fetched after the reconnect.
    await h.sim.closePort();
    reply("sent while you were away");
    await h.sim.reopenPort();
    await eventually(
      () => harness.gateway.sent("suporte").some((sent) => sent.text === "sent while you were away"),
      {
        timeoutMs: 15_000,
        what: "the backfilled reply",
      },
    );

    // The per-token quota (2 a minute here): the third call is refused.
    const statuses: number[] = [];
    for (let call = 0; call < 3; call++) {
      const answer = await fetch(`${host.url}/api/chatwoot/list/suporte`, { headers: { token: "i" } });
      statuses.push(answer.status);
      await answer.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 429]);

    const text = await eventually(async () => {
      const scraped = await scrape();
      return sample(scraped, `${p}realtime_links`, { state: "connected" }) === 1 ? scraped : null;
    });
    // Activations by outcome.
    expect(sample(text, `${p}activations_total`, { outcome: "active" })).toBe(1);
    expect(sample(text, `${p}activations_total`, { outcome: "CHATWOOT_TOKEN_REJECTED" })).toBe(1);
    // Messages routed by direction and kind: two inbound messages, two replies sent (the dead one is not routed).
    expect(sample(text, `${p}messages_routed_total`, { direction: "inbound", kind: "message" })).toBe(2);
    expect(sample(text, `${p}messages_routed_total`, { direction: "outbound", kind: "agent-message" })).toBe(
      2,
    );
    // Retries: the outage's (at least two) and the three refused sends; one dead letter.
    expect(sample(text, `${p}retries_total`, { direction: "inbound" })).toBeGreaterThanOrEqual(2);
    expect(sample(text, `${p}retries_total`, { direction: "outbound" })).toBe(3);
    expect(sample(text, `${p}dead_letters_total`, { direction: "outbound" })).toBe(1);
    expect(sample(text, `${p}dead_letters_total`, { direction: "inbound" })).toBeUndefined();
    // Chatwoot requests by operation and status class, with their latency.
    // Two WhatsApp messages created in Chatwoot: the first may travel inside the conversation create (the cold
    // path), so the two operations together count them.
    const created = (operation: string) =>
      sample(text, `${p}chatwoot_requests_total`, { operation, status_class: "2xx" }) ?? 0;
    expect(created("createMessage") + created("createConversation")).toBeGreaterThanOrEqual(2);
    expect(
      sample(text, `${p}chatwoot_requests_total`, { operation: "getProfile", status_class: "4xx" }),
    ).toBe(1);
    expect(
      sample(text, `${p}chatwoot_request_duration_seconds_count`, { operation: "createMessage" }),
    ).toBeGreaterThanOrEqual(4);
    // The outbox: nothing left to do, the dead letter kept.
    expect(sample(text, `${p}outbox_depth`)).toBe(0);
    expect(sample(text, `${p}outbox_oldest_due_age_seconds`)).toBe(0);
    expect(sample(text, `${p}outbox_dead_letters`)).toBe(1);
    // The realtime link: connected again after one reconnect, and the reply it missed was backfilled.
    expect(sample(text, `${p}realtime_reconnects_total`)).toBeGreaterThanOrEqual(1);
    expect(sample(text, `${p}realtime_backfilled_replies_total`)).toBeGreaterThanOrEqual(1);
    expect(sample(text, `${p}realtime_links`, { state: "disconnected" })).toBe(0);
    // Rate-limit refusals.
    expect(sample(text, `${p}rate_limit_refusals_total`)).toBe(1);
    // Low cardinality: no instance names unless the host asks for them.
    expect(text).not.toContain("suporte");
  }, 60_000);
});
