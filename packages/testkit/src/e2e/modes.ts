import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { HttpHandler } from "@ryze/chatwoot-core/adapter";
import { type RoutingHarness, type RoutingHarnessOptions, startRoutingHarness } from "./harness.js";

export type DeliveryMode = "realtime" | "webhook";

/** How our endpoint misbehaves for a webhook POST (`WebhookHost.override`). */
export type HostFault =
  /** Answers this status without passing the request on. */
  | { status: number }
  /** Never answers, nor passes the request on (Chatwoot times out). */
  | { hang: true }
  /** Passes the request on to the bridge, but answers only after `delayMs` (Chatwoot may have timed out). */
  | { lateMs: number };

/** A bare node:http host for the bridge's handler, whose answers a test can spoil, or that it can take down. */
export interface WebhookHost {
  url: string;
  server: Server;
  mount(handler: HttpHandler): void;
  /** Decides each next POST: a fault, or null to pass it on normally. */
  override(fault: (() => HostFault | null) | null): void;
  /** Stops listening (Chatwoot's POSTs are refused) until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): void;
}

export async function startWebhookHost(): Promise<WebhookHost> {
  let handler: HttpHandler | null = null;
  let override: (() => HostFault | null) | null = null;
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    void (async () => {
      const fault = override?.() ?? null;
      if (fault && "hang" in fault) return void req.resume();
      if (fault && "status" in fault) {
        // Answered once the body is read, so the connection stays reusable (no reset of the next POST).
        req.resume();
        req.once("end", () => res.writeHead(fault.status).end());
        return;
      }
      const answer = await handler?.handle({
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers: req.headers,
        stream: req,
      });
      const send = () => {
        if (res.destroyed) return;
        if (!answer) return void res.writeHead(404).end();
        res.writeHead(answer.status, answer.headers).end(answer.body ?? undefined);
      };
      if (!fault) return send();
      const timer = setTimeout(() => {
        timers.delete(timer);
        send();
      }, fault.lateMs);
      timers.add(timer);
    })();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    mount(next) {
      handler = next;
    },
    override(next) {
      override = next;
    },
    async down() {
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
    async up() {
      server.listen(port, "127.0.0.1");
      await once(server, "listening");
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      if (server.listening) server.close();
    },
  };
}

/** The routing harness in one delivery mode: realtime (ActionCable), or webhook through a local host. */
export async function startModeHarness(
  mode: DeliveryMode,
  options: RoutingHarnessOptions = {},
): Promise<{ h: RoutingHarness; host: WebhookHost | null; close(): Promise<void> }> {
  if (mode === "realtime") {
    const h = await startRoutingHarness(options);
    return { h, host: null, close: () => h.close() };
  }
  const host = await startWebhookHost();
  const h = await startRoutingHarness({
    ...options,
    bridge: { delivery: "webhook", publicUrl: host.url, ...options.bridge },
  });
  host.mount(h.bridge.http);
  return {
    h,
    host,
    async close() {
      await h.close();
      host.close();
    },
  };
}

/** Changes the integration's inbox as an administrator does in the inbox settings (`PATCH …/inboxes/:id`). */
export async function updateInbox(h: RoutingHarness, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${h.sim.url}/api/v1/accounts/${h.accountId}/inboxes/${h.inboxId}`, {
    method: "PATCH",
    headers: { "content-type": "application/json", api_access_token: h.agent.accessToken },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`inbox update failed: ${res.status} ${await res.text()}`);
}
