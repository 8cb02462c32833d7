import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { StoragePort } from "@ryze/chatwoot-core";
import type { HttpHandler } from "@ryze/chatwoot-core/adapter";
import type { MessageMapping } from "@ryze/chatwoot-core/store";
import { createMemoryStore, type MemoryStore } from "@ryze/chatwoot-core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf, totalMessages } from "./inspect.js";

// Issue 19, bug 2 (loop prevention): a message sent from the phone is mirrored into Chatwoot as an outgoing
// message with our `WAID:` source id, and Chatwoot reports it back (realtime event or webhook) like an agent
// reply. It must be recognised as ours from the event itself: no outbound work is queued for it, and it is
// never sent to WhatsApp, even when the mapping of the mirrored message is written late (a slow store, or the
// event winning the race against the write).

const PHONE = "5511922221111";

let h: RoutingHarness | undefined;
let server: Server | undefined;
let releaseMappings: (() => void) | undefined;
afterEach(async () => {
  releaseMappings?.();
  await h?.close();
  server?.closeAllConnections();
  server?.close();
  h = undefined;
  server = undefined;
  releaseMappings = undefined;
});

/**
 * A memory store whose inbound message mappings (the record "this WhatsApp message is that Chatwoot message")
 * can be held back: `hold()` makes the next writes wait until `release()`, as a slow database would.
 */
function storeWithSlowMappings(): { store: StoragePort; memory: MemoryStore; hold(): void } {
  const memory = createMemoryStore();
  let gate: Promise<void> | null = null;
  const store: StoragePort = {
    ...memory,
    mappings: {
      ...memory.mappings,
      async putMessage(mapping: MessageMapping) {
        if (gate && mapping.direction === "inbound") await gate;
        return memory.mappings.putMessage(mapping);
      },
    },
  };
  return {
    store,
    memory,
    hold() {
      gate = new Promise<void>((resolve) => {
        releaseMappings = () => {
          gate = null;
          resolve();
        };
      });
    },
  };
}

async function host(): Promise<{ url: string; mount(handler: HttpHandler): void }> {
  let handler: HttpHandler | null = null;
  const started = createServer((req, res) => {
    void (async () => {
      const answer = await handler?.handle({
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers: req.headers,
        stream: req,
      });
      if (!answer) return void res.writeHead(404).end();
      res.writeHead(answer.status, answer.headers).end(answer.body ?? undefined);
    })();
  });
  server = started;
  started.listen(0, "127.0.0.1");
  await once(started, "listening");
  return {
    url: `http://127.0.0.1:${(started.address() as AddressInfo).port}`,
    mount(next) {
      handler = next;
    },
  };
}

const outboundItems = (memory: MemoryStore) =>
  [...memory.raw.outbox.values()].filter((item) => item.direction === "outbound");

/**
 * Mirrors a phone-typed message while its mapping write is held, then posts an agent reply as a barrier and
 * checks that only the barrier was queued and sent.
 */
async function mirrorWhileMappingIsHeld(mode: "realtime" | "webhook") {
  const { store, memory, hold } = storeWithSlowMappings();
  const site = mode === "webhook" ? await host() : null;
  h = await startRoutingHarness({
    store,
    ...(site ? { bridge: { delivery: "webhook" as const, publicUrl: site.url } } : {}),
  });
  site?.mount(h.bridge.http);
  await h.ingest(textEvent({ phone: PHONE, text: "hello" }));
  await eventually(() => totalMessages(h!) === 1);
  const conversationId = conversationsOf(h)[0]!.id;
  const integrationId = (await h.store.integrations.get("suporte"))!.id;
  // The first message's item is finished (its mapping written) before mappings are held.
  await eventually(async () => (await h!.store.outbox.count(integrationId)).done === 1);

  hold();
  await h.ingest(textEvent({ phone: PHONE, text: "typed on the phone", direction: "outgoing" }));
  await eventually(() => totalMessages(h!) === 2, { what: "the mirrored message in Chatwoot" });
  const mirrored = chatMessages(h, conversationId)[1]!;
  expect(mirrored).toMatchObject({ content: "typed on the phone", message_type: 1 });
  expect(mirrored.source_id).toMatch(/^WAID:/);
  // Chatwoot told us about it (our socket got the broadcast, or our webhook route answered the delivery).
  if (mode === "realtime") {
    await eventually(
      () =>
        h!.sim.broadcasts.some(
          (entry) => entry.event === "message.created" && entry.data["id"] === mirrored.id && entry.sent,
        ),
      { what: "the mirrored message's broadcast sent to our socket" },
    );
  } else {
    const [delivery] = await h.sim.waitForWebhookDeliveries({
      event: "message_created",
      messageId: mirrored.id,
    });
    expect(delivery!.status).toBe(200);
  }

  // A barrier: an agent reply in the same conversation, queued on the same chat key after anything the mirrored
  // message may have queued.
  const barrier = h.sim.postAgentMessage({
    accountId: h.accountId,
    conversationId,
    userId: h.agent.id,
    content: "barrier",
  })["id"] as number;
  await eventually(() => h!.gateway.sent("suporte").some((sent) => sent.text === "barrier"), {
    what: "the barrier reply sent",
  });
  await eventually(async () => {
    const counts = await h!.store.outbox.count(integrationId);
    return counts.claimed <= 1 && counts.pending === 0; // the held inbound item is the only one in flight
  });

  expect(h.gateway.sent("suporte").map((sent) => sent.text)).toEqual(["barrier"]);
  expect(outboundItems(memory).map((item) => item.dedupeKey)).toEqual([`cw:${barrier}`]);

  releaseMappings!();
  await eventually(async () => (await h!.store.outbox.count(integrationId)).claimed === 0);
  expect(h.bridge.counters().outbound_duplicate_skipped).toBeUndefined();
}

describe("loop prevention: our own mirrored messages are never agent replies (issue 19, bug 2)", () => {
  it("a message sent from the phone, mirrored into Chatwoot, queues no outbound item (realtime)", async () => {
    const { store, memory } = storeWithSlowMappings();
    h = await startRoutingHarness({ store });
    await h.ingest(textEvent({ phone: PHONE, text: "hello" }));
    await h.ingest(textEvent({ phone: PHONE, text: "typed on the phone", direction: "outgoing" }));
    await eventually(() => totalMessages(h!) === 2);
    const conversationId = conversationsOf(h)[0]!.id;
    const mirrored = chatMessages(h, conversationId)[1]!;
    await eventually(
      () =>
        h!.sim.broadcasts.some(
          (entry) => entry.event === "message.created" && entry.data["id"] === mirrored.id && entry.sent,
        ),
      { what: "the mirrored message's broadcast sent to our socket" },
    );
    const barrier = h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId,
      userId: h.agent.id,
      content: "barrier",
    })["id"] as number;
    await eventually(() => h!.gateway.sent("suporte").length >= 1, { what: "the barrier reply sent" });
    const integrationId = (await h.store.integrations.get("suporte"))!.id;
    await eventually(async () => {
      const counts = await h!.store.outbox.count(integrationId);
      return counts.pending === 0 && counts.claimed === 0;
    });
    // One outbound item: the agent's reply. The mirrored message got none (not even one skipped later).
    expect(outboundItems(memory).map((item) => item.dedupeKey)).toEqual([`cw:${barrier}`]);
    expect(h.gateway.sent("suporte").map((sent) => sent.text)).toEqual(["barrier"]);
    expect(h.bridge.counters().outbound_duplicate_skipped).toBeUndefined();
  });

  it("a mirrored message is not sent back to WhatsApp even when its mapping is written after Chatwoot's realtime event", async () => {
    await mirrorWhileMappingIsHeld("realtime");
  });

  it("a mirrored message is not sent back to WhatsApp even when its mapping is written after Chatwoot's webhook", async () => {
    await mirrorWhileMappingIsHeld("webhook");
  });
});
