import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "@ryze/chatwoot-core";
import type { HttpHandler } from "@ryze/chatwoot-core/adapter";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type RoutingHarness, startRoutingHarness, textEvent } from "./harness.js";
import { conversationsOf, totalMessages } from "./inspect.js";

// docs/http-api.md: secrets (the Chatwoot API token, pubsub tokens, webhook secrets, caller tokens) never appear in
// logs. Every logger call is captured, at every level, through the paths that handle them.

let h: RoutingHarness | undefined;
let server: Server | undefined;
afterEach(async () => {
  await h?.close();
  server?.closeAllConnections();
  server?.close();
  h = undefined;
  server = undefined;
});

/** Captures every call, serialised as a host's JSON logger would write it. */
function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (obj: object, msg?: string) => {
    lines.push(JSON.stringify({ level, ...obj, msg }));
  };
  return { logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") }, lines };
}

/** The log lines that contain any of `secrets` (each secret named, never printed). */
function leaks(lines: string[], secrets: Record<string, string>): string[] {
  return Object.entries(secrets).flatMap(([name, secret]) =>
    lines
      .filter((line) => line.includes(secret))
      .map((line) => `${name} in: ${line.replaceAll(secret, "<secret>")}`),
  );
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

describe("secrets never appear in logs (docs/http-api.md)", () => {
  it("pubsub tokens: activation, a rotated token (subscription not confirmed, profile re-read), resubscribe, failures, deactivation", async () => {
    const { logger, lines } = capture();
    h = await startRoutingHarness({ bridge: { logger } });
    const first = h.sim.getUser(h.agent.id)!.pubsubToken;
    await eventually(() => h!.sim.cable.subscriptions().some((s) => s.pubsubToken === first && s.confirmed));
    // A password change rotates the pubsub token; the next subscription with the old one is met with silence.
    const second = h.sim.rotatePubsubToken(h.agent.id);
    h.sim.cable.dropAll();
    await eventually(
      () => h!.sim.cable.subscriptions().some((s) => s.pubsubToken === second && s.confirmed),
      {
        timeoutMs: 20_000,
        what: "the subscription with the new pubsub token",
      },
    );
    expect(lines.some((line) => line.includes("re-reading the profile"))).toBe(true);
    // A failed activation and a deactivation log too.
    const refused = await h.bridge.activate("vendas", {
      chatwootBaseUrl: h.sim.url,
      chatwootAccountId: h.accountId,
      chatwootApiToken: "not-a-chatwoot-token",
    });
    expect(refused.status).toBe("error");
    await h.bridge.deactivate("suporte");
    const messages = lines.map((line) => (JSON.parse(line) as { msg?: string }).msg);
    expect(messages).toEqual(
      expect.arrayContaining(["chatwoot: activated", "chatwoot: activation failed", "chatwoot: deactivated"]),
    );
    expect(
      leaks(lines, {
        "the first pubsub token": first,
        "the rotated pubsub token": second,
        "the Chatwoot API token": h.agent.accessToken,
      }),
    ).toEqual([]);
  });

  it("webhook secrets: activation, accepted and refused deliveries, re-activation, deactivation", async () => {
    const { logger, lines } = capture();
    const site = await host();
    h = await startRoutingHarness({ bridge: { logger, delivery: "webhook", publicUrl: site.url } });
    site.mount(h.bridge.http);
    const registered = new URL(
      (h.sim.getInbox(h.accountId, h.inboxId) as { webhook_url: string }).webhook_url,
    );
    const secret = registered.searchParams.get("secret")!;
    // Chatwoot 4.13 (the simulator's default) signs the deliveries with the inbox's secret, which the bridge keeps.
    const signingSecret = (h.sim.getInbox(h.accountId, h.inboxId) as { secret: string }).secret;
    // Real deliveries (a customer message comes back as a webhook), and an agent reply through the webhook.
    await h.ingest(textEvent({ phone: "5511911112222", text: "hello" }));
    await eventually(() => totalMessages(h!) === 1);
    h.sim.postAgentMessage({
      accountId: h.accountId,
      conversationId: conversationsOf(h)[0]!.id,
      userId: h.agent.id,
      content: "hi",
    });
    await eventually(() => h!.gateway.sent("suporte").length === 1);
    // Refused deliveries: a prefix of the secret, the secret for another integration, a broken body.
    const path = `${site.url}${registered.pathname}`;
    const post = (url: string, body: string) =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect((await post(`${path}?secret=${secret.slice(0, 20)}`, "{}")).status).toBe(401);
    // An unknown integration is answered like a wrong secret.
    expect(
      (await post(`${site.url}/api/chatwoot/webhook/int_unknownunknown?secret=${secret}`, "{}")).status,
    ).toBe(401);
    expect((await post(`${path}?secret=${secret}`, '{"event":')).status).toBe(400);
    // Re-activation keeps the secret; deactivation removes the inbox.
    const again = await h.bridge.activate("suporte", {
      chatwootBaseUrl: h.sim.url,
      chatwootAccountId: h.accountId,
      chatwootApiToken: h.agent.accessToken,
      inboxName: "Renamed",
    });
    expect(again.status).toBe("active");
    // A failed re-activation (a wrong token) keeps the integration and its secret, and logs why.
    const refused = await h.bridge.activate("suporte", {
      chatwootBaseUrl: h.sim.url,
      chatwootAccountId: h.accountId,
      chatwootApiToken: "not-a-chatwoot-token",
    });
    expect(refused.status).toBe("error");
    await h.bridge.deactivate("suporte", { deleteInbox: true });
    const messages = lines.map((line) => (JSON.parse(line) as { msg?: string }).msg);
    expect(messages).toEqual(
      expect.arrayContaining(["chatwoot: activated", "chatwoot: activation failed", "chatwoot: deactivated"]),
    );
    expect(
      leaks(lines, {
        "the webhook secret": secret,
        "the inbox signing secret": signingSecret,
        "the Chatwoot API token": h.agent.accessToken,
      }),
    ).toEqual([]);
  });
});
