/**
 * Child process: the Chatwoot simulator, standing in for Chatwoot on its own core. Besides the simulator's
 * own controls it records when each incoming message was stored: the moment the simulator answers a message
 * create (`POST …/messages`, or `POST …/conversations` carrying the first message), keyed by the WhatsApp id in the
 * answer's `source_id` (`WAID:<id>`).
 */
import { subscribe } from "node:diagnostics_channel";
import type { IncomingMessage, ServerResponse } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { type ChatwootSimulator, type RequestFilter, startChatwootSimulator } from "@ryze/chatwoot-testkit";
import { serve } from "./rpc.js";
import { now, sleep } from "./stats.js";

/** Running simulators by handle; a bench usually runs one at a time. */
const sims = new Map<number, ChatwootSimulator>();
let nextHandle = 0;
/** WhatsApp message id → child time at which the simulator answered its create. */
const stored = new Map<string, number>();
const SOURCE_ID = /"source_id":"WAID:([^"]+)"/;
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();

subscribe("http.server.request.start", (message) => {
  const { request, response } = message as { request: IncomingMessage; response: ServerResponse };
  // A message create, or a conversation create that carries the first message (the cold path).
  if (request.method !== "POST" || !/\/(messages|conversations)$/.test(request.url ?? "")) return;
  const end = response.end as (...args: unknown[]) => ServerResponse;
  response.end = function (this: ServerResponse, ...args: unknown[]) {
    const chunk = args[0];
    if (this.statusCode === 200 && (typeof chunk === "string" || Buffer.isBuffer(chunk))) {
      const match = SOURCE_ID.exec(chunk.toString());
      if (match && !stored.has(match[1]!)) stored.set(match[1]!, now());
    }
    return end.apply(this, args);
  } as ServerResponse["end"];
});

function current(handle: number): ChatwootSimulator {
  const sim = sims.get(handle);
  if (!sim) throw new Error(`no simulator ${handle}`);
  return sim;
}

const methods = {
  /** Starts a fresh simulator (empty state); returns its handle and URL. */
  async start(options: { messageFloodLimit?: number; cablePingIntervalMs?: number } = {}) {
    stored.clear();
    const sim = await startChatwootSimulator({
      // Far above the bench's rate: the flood guard (200 per conversation per minute) is not what we measure.
      messageFloodLimit: options.messageFloodLimit ?? 1_000_000_000,
      ...(options.cablePingIntervalMs ? { cablePingIntervalMs: options.cablePingIntervalMs } : {}),
    });
    const handle = ++nextHandle;
    sims.set(handle, sim);
    return { handle, url: sim.url };
  },

  /** One account with one administrator (the token user of the integrations). */
  createAccountWithAdmin(handle: number, name: string) {
    const s = current(handle);
    const accountId = s.createAccount({ name }).id;
    const user = s.createUser({ name: `${name} admin`, accounts: [{ accountId, role: "administrator" }] });
    return { accountId, userId: user.id, accessToken: user.accessToken };
  },

  /** `count` accounts, each with its own administrator: distinct token users. */
  createAccountsWithAdmins(handle: number, prefix: string, count: number) {
    return Array.from({ length: count }, (_, index) =>
      methods.createAccountWithAdmin(handle, `${prefix} ${index}`),
    );
  },

  /** Display ids of the account's conversations, oldest first. */
  conversationIds(handle: number, accountId: number): number[] {
    return current(handle)
      .conversations(accountId)
      .map((conversation) => conversation["id"] as number);
  },

  /** Conversations of the account as `{ id, inboxId }`. */
  conversationsByInbox(handle: number, accountId: number): Array<{ id: number; inboxId: number }> {
    return current(handle)
      .conversations(accountId)
      .map((conversation) => ({
        id: conversation["id"] as number,
        inboxId: conversation["inbox_id"] as number,
      }));
  },

  /** Every conversation of the given accounts as `{ accountId, id }` (display id). */
  conversationsOf(handle: number, accountIds: number[]) {
    const s = current(handle);
    return accountIds.flatMap((accountId) =>
      s.conversations(accountId).map((conversation) => ({ accountId, id: conversation["id"] as number })),
    );
  },

  resetStored() {
    stored.clear();
  },
  storedCount: () => stored.size,
  storedTimes: () => new Map(stored),

  countRequests(handle: number, filter: RequestFilter = {}) {
    return current(handle).countRequests(filter);
  },
  /** Requests since the last clear, by method and path with ids replaced by `:id`. */
  requestBreakdown(handle: number): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const request of current(handle).requests) {
      const key = `${request.method} ${request.path.replace(/\/\d+(?=\/|$)/g, "/:id")}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  },
  clearRequests(handle: number) {
    current(handle).clearRequests();
  },
  cableConnections: (handle: number) => current(handle).cable.connections(),

  /**
   * Agents reply in the dashboard, one every `intervalMs`: each `content` must be unique. Returns the child
   * time at which each reply was created (just before its broadcast goes out).
   */
  async postAgentReplies(
    handle: number,
    replies: Array<{ accountId: number; conversationId: number; userId: number; content: string }>,
    intervalMs: number,
  ) {
    const s = current(handle);
    const posted: Array<{ content: string; messageId: number; at: number }> = [];
    const started = now();
    for (const [index, reply] of replies.entries()) {
      const due = started + index * intervalMs;
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      const at = now();
      const message = s.postAgentMessage(reply);
      posted.push({ content: reply.content, messageId: message["id"] as number, at });
    }
    return posted;
  },

  /** Event-loop delay since the last reset (ms). */
  loopDelay(reset: boolean) {
    const figures = {
      p50: loopDelay.percentile(50) / 1e6,
      p99: loopDelay.percentile(99) / 1e6,
      max: loopDelay.max / 1e6,
    };
    if (reset) loopDelay.reset();
    return figures;
  },

  /** CPU time used by the simulator process so far (ms, user + system). */
  cpuMs: () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  },

  /** Memory of the simulator process (for the record; the library's is measured elsewhere). */
  rss: () => process.memoryUsage().rss,

  /**
   * A simulator as it stands after a pre-warm: one account and administrator, an API inbox, `chats` contacts
   * each with a conversation holding one incoming message (seeded without HTTP).
   */
  seedConversations(handle: number, chats: number) {
    const s = current(handle);
    const admin = methods.createAccountWithAdmin(handle, "Direct");
    const inbox = s.createInbox(admin.accountId, { name: "Direct", channel: { type: "api" } });
    const inboxId = inbox["id"] as number;
    const conversations: number[] = [];
    for (let chat = 0; chat < chats; chat++) {
      const sourceId = `direct-${chat}`;
      const contact = s.createContact(admin.accountId, {
        name: `Customer ${chat}`,
        inbox_id: inboxId,
        source_id: sourceId,
      });
      const conversation = s.createConversation(
        admin.accountId,
        { source_id: sourceId, inbox_id: inboxId, contact_id: contact["id"] },
        { userId: admin.userId },
      );
      conversations.push(conversation["id"] as number);
    }
    return { ...admin, inboxId, conversations };
  },

  async stop(handle: number) {
    await sims.get(handle)?.close();
    sims.delete(handle);
    stored.clear();
  },
};

export type SimHostMethods = typeof methods;

serve(methods, async () => {
  for (const sim of sims.values()) await sim.close();
});
