/**
 * Helpers for the simulator's own tests: a JSON/multipart HTTP client, a seeded account, an
 * ActionCable client on the `ws` package, and a webhook receiver. Nothing here sleeps: every wait
 * is for an event, with a timeout.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket from "ws";
import type { ChatwootSimulator, SimulatedUser } from "./server.js";

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

/** A JSON (or multipart) call with an `api_access_token`. */
export async function call(
  sim: ChatwootSimulator,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; form?: FormData; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers["api_access_token"] = options.token;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  Object.assign(headers, options.headers);
  const body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  const res = await fetch(sim.url + path, {
    method,
    headers,
    body: options.form ?? (options.body === undefined ? undefined : body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** The §1.2 body a bridge sends to create its API inbox. */
export const bridgeInboxBody = {
  name: "WhatsApp +1 555 0100",
  lock_to_single_conversation: true,
  allow_messages_after_resolved: true,
  enable_auto_assignment: true,
  channel: {
    type: "api",
    webhook_url: "https://bridge.example/chatwoot/webhook/abc",
    hmac_mandatory: false,
    additional_attributes: { agent_reply_time_window: 24 },
  },
};

/** Any JSON object, for reading answers in tests. */
// biome-ignore lint/suspicious/noExplicitAny: test convenience for deep JSON access
export type AnyJson = any;

export interface Seed {
  accountId: number;
  otherAccountId: number;
  admin: SimulatedUser;
  /** A plain agent, member of `inboxId`. */
  agent: SimulatedUser;
  /** A plain agent that is a member of no inbox. */
  outsider: SimulatedUser;
  inboxId: number;
  path(suffix: string): string;
}

/** One account with an administrator, two agents and an API inbox (optionally with a webhook URL). */
export function seed(sim: ChatwootSimulator, inbox: Record<string, unknown> = {}): Seed {
  const accountId = sim.createAccount({ name: "Acme" }).id;
  const otherAccountId = sim.createAccount({ name: "Other" }).id;
  const admin = sim.createUser({
    name: "Jane Doe",
    availableName: "Jane",
    accounts: [{ accountId, role: "administrator" }],
  });
  const agent = sim.createUser({ name: "Sam Agent", accounts: [{ accountId, role: "agent" }] });
  const outsider = sim.createUser({ name: "Olga Outside", accounts: [{ accountId, role: "agent" }] });
  const created = sim.createInbox(accountId, {
    name: "WhatsApp",
    ...inbox,
    channel: { type: "api", ...((inbox["channel"] as object | undefined) ?? {}) },
  });
  const inboxId = created["id"] as number;
  sim.addInboxMember(inboxId, agent.id);
  return {
    accountId,
    otherAccountId,
    admin,
    agent,
    outsider,
    inboxId,
    path: (suffix) => `/api/v1/accounts/${accountId}${suffix}`,
  };
}

/** Creates a contact with a contact inbox and a conversation over HTTP; returns their ids. */
export async function openConversation(
  sim: ChatwootSimulator,
  s: Seed,
  sourceId = "15550100@s.whatsapp.net",
  extra: Record<string, unknown> = {},
) {
  const contact = await call(sim, "POST", s.path("/contacts"), {
    token: s.admin.accessToken,
    body: { name: "Alice", inbox_id: s.inboxId, source_id: sourceId },
  });
  const contactId = (contact.json as AnyJson).payload.contact.id as number;
  const conversation = await call(sim, "POST", s.path("/conversations"), {
    token: s.admin.accessToken,
    body: { inbox_id: s.inboxId, contact_id: contactId, source_id: sourceId, ...extra },
  });
  return { contactId, conversationId: (conversation.json as AnyJson).id as number };
}

/** An ActionCable client frame. */
export type CableFrame = Record<string, unknown> & { type?: string; identifier?: string; message?: AnyJson };

/** A minimal ActionCable client over `ws` that keeps every frame it receives. */
export class CableClient {
  readonly frames: CableFrame[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data) => {
      this.frames.push(JSON.parse(data.toString()) as CableFrame);
      this.notify();
    });
    socket.on("close", () => {
      this.closed = true;
      this.notify();
    });
  }

  /** Connects with the `actioncable-v1-json` subprotocol and waits for the socket to open. */
  static async connect(baseUrl: string): Promise<CableClient> {
    const socket = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/cable`, ["actioncable-v1-json"]);
    const client = new CableClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    return client;
  }

  private notify() {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Resolves when `count` frames match (frames already received count), or rejects after `timeoutMs`. */
  waitFor(
    match: (frame: CableFrame) => boolean,
    { count = 1, timeoutMs = 3000 } = {},
  ): Promise<CableFrame[]> {
    return new Promise((resolve, reject) => {
      const waiter = () => {
        const found = this.frames.filter(match);
        if (found.length < count) return;
        finish();
        resolve(found);
      };
      const finish = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`cable: fewer than ${count} matching frame(s) after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
      waiter();
    });
  }

  /** Resolves when the socket is closed. */
  waitClosed(timeoutMs = 3000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) return resolve();
      const timer = setTimeout(() => reject(new Error("cable: socket still open")), timeoutMs);
      this.socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  send(frame: unknown) {
    this.socket.send(JSON.stringify(frame));
  }

  /** Sends `subscribe` for RoomChannel and returns the identifier string. */
  subscribe(params: { pubsub_token: string; account_id: number; user_id: number }): string {
    const identifier = JSON.stringify({ channel: "RoomChannel", ...params });
    this.send({ command: "subscribe", identifier });
    return identifier;
  }

  /** Subscribes as `user` to `accountId` and waits for the confirmation. */
  async subscribeAs(user: SimulatedUser, accountId: number): Promise<string> {
    const identifier = this.subscribe({
      pubsub_token: user.pubsubToken,
      account_id: accountId,
      user_id: user.id,
    });
    await this.waitFor((f) => f.type === "confirm_subscription" && f.identifier === identifier);
    return identifier;
  }

  /** The `{event, data}` messages received so far, optionally of one event name. */
  events(name?: string): AnyJson[] {
    return this.frames
      .filter((f) => f.message && typeof f.message === "object" && "event" in f.message)
      .map((f) => f.message)
      .filter((m) => name === undefined || m.event === name);
  }

  close() {
    this.socket.terminate();
  }
}

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  json: AnyJson;
}

/** An HTTP server that records POSTs; `respond` decides the status and an optional delay. */
export async function startWebhookReceiver(
  respond: (hook: ReceivedWebhook) => { status?: number; delayMs?: number } = () => ({}),
) {
  const received: ReceivedWebhook[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const hook: ReceivedWebhook = { headers: req.headers, body, json: JSON.parse(body) };
      received.push(hook);
      const { status = 200, delayMs = 0 } = respond(hook);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!res.destroyed) res.writeHead(status).end();
      }, delayMs);
      timers.add(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
