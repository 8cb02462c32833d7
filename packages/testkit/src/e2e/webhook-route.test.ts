import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { HttpHandler } from "@ryze/chatwoot-core/adapter";
import { afterEach, describe, expect, it } from "vitest";
import { type RoutingHarness, startRoutingHarness } from "./harness.js";

// The webhook receiver's own guards, over a real socket: the capability secret of the registered URL (issue 19,
// bug 4), the route's 1 MiB body cap, and the intended per-integration limit for message events.

async function host(): Promise<{ server: Server; url: string; mount(handler: HttpHandler): void }> {
  let handler: HttpHandler | null = null;
  const server = createServer((req, res) => {
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
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    mount(next) {
      handler = next;
    },
  };
}

let h: RoutingHarness | undefined;
let server: Server | undefined;
afterEach(async () => {
  await h?.close();
  server?.closeAllConnections();
  server?.close();
  h = undefined;
  server = undefined;
});

/**
 * A webhook-mode bridge behind a node:http host; answers the registered URL (path + secret) of its inbox. Chatwoot 4.12:
 * unsigned deliveries, which the URL secret alone authenticates (signatures: webhook.test.ts, webhook-route.test.ts
 * in core).
 */
async function webhookBridge() {
  const site = await host();
  server = site.server;
  h = await startRoutingHarness({ version: "4.12", bridge: { delivery: "webhook", publicUrl: site.url } });
  site.mount(h.bridge.http);
  const registered = new URL((h.sim.getInbox(h.accountId, h.inboxId) as { webhook_url: string }).webhook_url);
  const secret = registered.searchParams.get("secret")!;
  expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
  const base = `${site.url}${registered.pathname}`;
  return { base, secret, url: `${base}?secret=${encodeURIComponent(secret)}` };
}

const post = (url: string, body: string | ReadableStream<Uint8Array>) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    ...(typeof body === "string" ? {} : { duplex: "half" as const }),
  });

/** A JSON body of exactly `bytes` bytes that is a Chatwoot event needing no work (typing indicator). */
function bodyOfSize(bytes: number): string {
  const head = '{"event":"conversation_typing_on","padding":"';
  const tail = '"}';
  const body = `${head}${"x".repeat(bytes - head.length - tail.length)}${tail}`;
  expect(Buffer.byteLength(body)).toBe(bytes);
  return body;
}

/** The same bytes as a stream of unknown length (`Transfer-Encoding: chunked`, no `Content-Length`). */
function streamed(body: string): ReadableStream<Uint8Array> {
  return new Blob([body]).stream();
}

const MiB = 1024 * 1024;

describe("webhook route: the URL secret must match exactly (issue 19, bug 4)", () => {
  it("refuses every prefix of the registered secret, and the secret with extra characters, with 401", async () => {
    const { base, secret, url } = await webhookBridge();
    const body = JSON.stringify({ event: "conversation_typing_on" });
    const wrong = [
      secret.slice(0, -1),
      secret.slice(0, secret.length / 2),
      secret.slice(0, 1),
      `${secret}x`,
      `${secret}${secret}`,
    ];
    for (const candidate of wrong) {
      const answer = await post(`${base}?secret=${encodeURIComponent(candidate)}`, body);
      expect(answer.status, `secret of ${candidate.length} characters`).toBe(401);
      expect(await answer.json()).toEqual({ success: false, error: { message: "invalid webhook secret" } });
    }
    // The registered secret itself is accepted.
    const accepted = await post(url, body);
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toEqual({ received: true });
  });
});

describe("webhook route: 1 MiB body cap (docs/http-api.md)", () => {
  it("accepts a delivery of exactly 1 MiB and refuses one byte more with 413, with a declared length or streamed", async () => {
    const { url } = await webhookBridge();
    const atCap = bodyOfSize(MiB);
    const overCap = bodyOfSize(MiB + 1);

    const declared = await post(url, atCap);
    expect(declared.status, "exactly 1 MiB, Content-Length").toBe(200);
    expect(await declared.json()).toEqual({ received: true });
    const chunked = await post(url, streamed(atCap));
    expect(chunked.status, "exactly 1 MiB, chunked").toBe(200);

    for (const [what, body] of [
      ["1 MiB + 1, Content-Length", overCap],
      ["1 MiB + 1, chunked", streamed(overCap)],
    ] as const) {
      const answer = await post(url, body);
      expect(answer.status, what).toBe(413);
      expect(await answer.json()).toEqual({ success: false, error: { message: "request body too large" } });
    }
    // Far more than the set/list/delete cap (64 KiB), well under 1 MiB: accepted too.
    expect((await post(url, bodyOfSize(900 * 1024))).status).toBe(200);
  });
});

describe("webhook route: message events and the per-integration limit", () => {
  // Chatwoot sends a webhook for every message of the inbox, ours included: a busy inbox easily exceeds 600 a
  // minute, and a refused delivery marks the agent's reply failed. Message events must never be refused for volume.
  // Message events are never counted against the per-integration limit (docs/http-api.md).
  it("never answers 429 to a message event, even in a burst of 1,000 deliveries within a minute", async () => {
    const { url } = await webhookBridge();
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const id = 10_000 + batch * 50 + i;
          const answer = await post(
            url,
            JSON.stringify({
              event: "message_created",
              id,
              content: `customer message ${id}`,
              message_type: "incoming",
              private: false,
              source_id: `WAID:3EB0BURST${id}`,
              inbox: { id: h!.inboxId },
              conversation: { id: 1, inbox_id: h!.inboxId },
              sender: { id: 1, type: "contact" },
            }),
          );
          await answer.arrayBuffer();
          return answer.status;
        }),
      );
      for (const status of answers) statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 200: 1_000 });
  }, 60_000);
});

describe("webhook route of a realtime-mode integration", () => {
  // Moved here from the HTTP conformance case "… with its own 1 MiB cap", which now runs in webhook mode.
  it("refuses every secret with 401: realtime mode registers no webhook secret", async () => {
    const site = await host();
    server = site.server;
    h = await startRoutingHarness();
    site.mount(h.bridge.http);
    const id = (await h.store.integrations.get("suporte"))!.id;
    for (const secret of ["guess", "", "null", "undefined"]) {
      const answer = await post(
        `${site.url}/api/chatwoot/webhook/${id}?secret=${secret}`,
        JSON.stringify({ event: "message_created" }),
      );
      expect(answer.status, `secret "${secret}"`).toBe(401);
      expect(await answer.json()).toEqual({ success: false, error: { message: "invalid webhook secret" } });
    }
  });
});
