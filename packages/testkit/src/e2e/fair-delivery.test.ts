import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { chatMessages, conversationsOf } from "./inspect.js";

// Fair delivery (issue 15, item 3): one integration stuck on attachments that never arrive must not stall the
// others; an item that runs past its deadline is retried, not given up; a reply carries at most so many
// attachments.

/**
 * A storage server on 127.0.0.1 that accepts every request and never answers it; with `once`, only the first request
 * for each path hangs and the next ones get a small PNG. `release()` answers the held ones 404 and every later one
 * too.
 */
async function storage(options: { once?: boolean } = {}) {
  const held: ServerResponse[] = [];
  const seen = new Set<string>();
  let requests = 0;
  let released = false;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    if (released) return void res.writeHead(404).end();
    const first = !seen.has(req.url ?? "");
    seen.add(req.url ?? "");
    if (!options.once || first) return void held.push(res);
    const png = randomBytes(300);
    res.writeHead(200, { "content-type": "image/png", "content-length": png.length }).end(png);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    /** Requests accepted and never answered so far (still open). */
    hanging: () => held.filter((res) => !res.writableEnded && !res.destroyed).length,
    release() {
      released = true;
      for (const res of held.splice(0)) if (!res.destroyed) res.writeHead(404).end();
    },
    async close() {
      this.release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Storage = Awaited<ReturnType<typeof storage>>;

let h: RoutingHarness | undefined;
let store: Storage | undefined;
afterEach(async () => {
  // Answer the held downloads first, so that stopping the bridge does not wait for them.
  store?.release();
  await h?.close();
  await store?.close();
  h = undefined;
  store = undefined;
});

/** The `data_url` (ActiveStorage's redirect) of each attachment named `photo-<n>.png` leads to the storage server. */
function attachmentsLeadTo(harness: RoutingHarness, target: Storage, count: number) {
  for (let n = 0; n < count; n++) {
    harness.sim.faults.inject({
      path: new RegExp(`^/rails/active_storage/blobs/redirect/.*/photo-${n}\\.png$`),
      status: 302,
      headers: { location: `${target.url}/bucket/photo-${n}` },
    });
  }
}

/** One customer conversation per phone in the harness's instance (`suporte`), in order. */
async function conversations(harness: RoutingHarness, phones: string[], inboxId = harness.inboxId) {
  for (const phone of phones) await harness.ingest(textEvent({ phone, text: `hello from ${phone}` }));
  return eventually(
    () => {
      const found = (conversationsOf(harness) as Array<{ id: number; inbox_id?: number }>).filter(
        (conversation) => conversation.inbox_id === inboxId,
      );
      return found.length === phones.length ? found.map((conversation) => conversation.id) : null;
    },
    { what: `${phones.length} conversations`, timeoutMs: 20_000 },
  );
}

const phones = (count: number, prefix: string) =>
  Array.from({ length: count }, (_, i) => `55119${prefix}${String(i).padStart(5, "0")}`);

const photo = (n: number) => ({ data: randomBytes(200), mimetype: "image/png", fileName: `photo-${n}.png` });

function reply(
  harness: RoutingHarness,
  conversationId: number,
  content: string,
  attachments: ReturnType<typeof photo>[] = [],
) {
  return harness.sim.postAgentMessage({
    accountId: harness.accountId,
    conversationId,
    userId: harness.agent.id,
    content,
    attachments,
  }) as { id: number };
}

/** The agent's room subscribed (one for both integrations of the user), so that agent replies reach the bridge. */
async function subscribed(harness: RoutingHarness) {
  await eventually(() => harness.sim.cable.subscriptions().some((subscription) => subscription.confirmed), {
    what: "a confirmed subscription",
  });
}

describe("fair delivery", () => {
  it("delivers another integration's text within 5 s while 20 replies of one integration hang on their attachments", async () => {
    store = await storage();
    // The dispatcher's defaults (16 slots, 2 minute item deadline, 60 s media deadline): the outbound retry
    // timings alone are the harness's.
    h = await startRoutingHarness();
    const vendas = await h.bridge.activate("vendas", {
      chatwootBaseUrl: h.sim.url,
      chatwootAccountId: h.accountId,
      chatwootApiToken: h.agent.accessToken,
    });
    if (vendas.status !== "active") throw new Error(vendas.error);
    await h.bridge.ingest("vendas", textEvent({ phone: "5511977770000", text: "hi sales" }));
    const [salesConversation] = await eventually(() => {
      const found = (conversationsOf(h!) as Array<{ id: number; inbox_id?: number }>).filter(
        (conversation) => conversation.inbox_id === vendas.inboxId,
      );
      return found.length === 1 ? found.map((conversation) => conversation.id) : null;
    });
    const support = await conversations(h, phones(20, "1"));
    await subscribed(h);

    attachmentsLeadTo(h, store, support.length);
    for (const [n, conversationId] of support.entries()) reply(h, conversationId, `file ${n}`, [photo(n)]);
    // The dispatcher's slots fill with replies of `suporte`, each waiting for its attachment (a claim waits for a
    // batch of free slots, so a few may stay free): every reply claimed is stuck, the others wait behind them.
    const supportIntegration = (await h.store.integrations.get("suporte"))!;
    const stuck = await eventually(
      async () => {
        const { claimed } = await h!.store.outbox.count(supportIntegration.id);
        const settled = store!.hanging() === claimed && h!.gateway.sent("suporte").length === claimed;
        return claimed >= 12 && settled ? claimed : null;
      },
      { what: "the dispatcher full of hanging replies", timeoutMs: 20_000 },
    );

    reply(h, salesConversation!, "plain text on another instance");
    await eventually(() => h!.gateway.sent("vendas").length === 1, {
      timeoutMs: 5_000,
      what: "the other instance's text sent to WhatsApp",
    });
    expect(h.gateway.sent("vendas").map((sent) => [sent.type, sent.text])).toEqual([
      ["text", "plain text on another instance"],
    ]);
    // The stuck replies are still stuck: the text did not wait for one of them to give up.
    expect(store.hanging()).toBe(stuck);
  });

  it("stops an item at its deadline and retries it later instead of giving it up", async () => {
    // The first download of each file hangs (past the item deadline, well within the 60 s media deadline); the
    // retries get the file.
    store = await storage({ once: true });
    h = await startRoutingHarness({ bridge: { dispatcher: { pollIntervalMs: 20, itemTimeoutMs: 1_000 } } });
    const support = await conversations(h, phones(3, "2"));
    await subscribed(h);
    attachmentsLeadTo(h, store, support.length);
    const replies = support.map((conversationId, n) => reply(h!, conversationId, `file ${n}`, [photo(n)]));
    await eventually(() => store!.hanging() === 3, { what: "3 downloads hanging" });

    // Each reply is retried after its deadline: the text went out once, the photo on the next attempt.
    await eventually(() => h!.gateway.sent("suporte").length === 6, {
      what: "3 texts and 3 photos",
      timeoutMs: 15_000,
    });
    const sent = h.gateway.sent("suporte");
    // Each reply's text went out once (the conversations are served in parallel, in any order).
    expect(
      sent
        .filter((entry) => entry.type === "text")
        .map((entry) => entry.text)
        .sort(),
    ).toEqual(["file 0", "file 1", "file 2"]);
    expect(sent.filter((entry) => entry.type === "image")).toHaveLength(3);
    expect(store.requests()).toBe(6);

    const integration = (await h.store.integrations.get("suporte"))!;
    await eventually(async () => (await h!.store.outbox.count(integration.id)).claimed === 0);
    expect(await h.store.outbox.count(integration.id)).toMatchObject({ pending: 0, dead: 0 });
    for (const [n, message] of replies.entries()) {
      const item = (await h.store.outbox.find(integration.id, `cw:${message.id}`))!;
      // One attempt spent on the deadline (a transient failure), the second one went through.
      expect(item).toMatchObject({ status: "done", attempts: 1 });
      expect(item.lastError).toMatch(/timed out after 1s/);
      const seen = chatMessages(h, support[n]!).find((m) => m.id === message.id)!;
      expect(seen.status).not.toBe("failed");
    }
  });

  it("sends at most 10 attachments of a reply and marks it failed with a note naming the cap", async () => {
    h = await startRoutingHarness();
    const [conversationId] = await conversations(h, phones(1, "3"));
    await subscribed(h);
    const photos = Array.from({ length: 12 }, (_, n) => photo(n));
    const message = reply(h, conversationId!, "twelve photos", photos);
    const failed = await eventually(() => {
      const seen = chatMessages(h!, conversationId!).find((m) => m.id === message.id);
      return seen?.status === "failed" ? seen : null;
    });
    expect(failed.content_attributes).toMatchObject({
      external_error: expect.stringMatching(/attachments 11 to 12 not sent: a reply carries at most 10/),
    });
    await eventually(() =>
      chatMessages(h!, conversationId!).some((m) => m.private && m.content?.includes("at most 10")),
    );
    // The text and the first 10 went out, once; the last 2 never.
    const sent = h.gateway.sent("suporte");
    expect(sent.map((entry) => entry.type)).toEqual(["text", ...Array(10).fill("image")]);
    expect(sent.slice(1).map((entry) => entry.media!.size)).toEqual(
      photos.slice(0, 10).map((p) => p.data.length),
    );
  });
});
