/**
 * The node:http adapter around the simulator core: request log, faults, port control, the
 * ActionCable upgrade, and the seeding/inspection API integrators use in their tests.
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createCableServer } from "./cable.js";
import { ChatwootHttpError } from "./errors.js";
import {
  createFaultRegistry,
  type FaultAction,
  matchesPath,
  type PathPattern,
  type SimulatorFaults,
} from "./faults.js";
import { createCableListener, createWebhookListener } from "./listeners.js";
import { type ChatwootMessagingApi, createMessagingApi } from "./messaging-api.js";
import { type ChatwootResponse, createChatwootHandler } from "./router.js";
import { apiRoutes } from "./routes/api.js";
import { contactRoutes } from "./routes/contacts.js";
import { conversationRoutes } from "./routes/conversations.js";
import { byName, createApiInbox, inboxRoutes } from "./routes/inboxes.js";
import { messageRoutes } from "./routes/messages.js";
import { profileRoutes } from "./routes/profile.js";
import { storageRoutes } from "./routes/storage.js";
import { createRuntime, type EventListener } from "./runtime.js";
import {
  type AccountRole,
  type AccountStatus,
  accountUsersOf,
  canSeeInbox,
  createSimulatorStore,
  findAccountUser,
  findConversation,
  generateSecureToken,
  type SimulatorStore,
  type UserRecord,
  type WebhookSigning,
} from "./store.js";
import { createCsatSurveyListener } from "./templates.js";
import { type ChatwootVersion, checkVersion, featuresOf, NEWEST_CHATWOOT_VERSION } from "./versions.js";
import { renderInbox } from "./views.js";
import { createWaiters } from "./waiters.js";
import { createWebhookSender, type SimulatorWebhooks } from "./webhooks.js";

/** Options of `startChatwootSimulator`. */
export interface ChatwootSimulatorOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Interval of ActionCable pings (`{"type":"ping"}`). Default 3000 (Rails' `BEAT_INTERVAL`). */
  cablePingIntervalMs?: number;
  /**
   * The Chatwoot version to play (default the newest, `"4.13"`): `GET /api`'s answer, the webhook headers and
   * signing, the `secret` of API inboxes, webhook `content` normalisation and contact search semantics follow it
   * (`docs/chatwoot-versions.md`).
   */
  version?: ChatwootVersion;
  /**
   * Default signing of API-inbox webhooks: `"secret"` from 4.13 (HMAC with the inbox `secret`, shown to
   * administrators in inbox JSON), `"off"` before (no signature headers). `"hmac_token"` signs with the channel's
   * `hmac_token` instead (upstream issue #13809). Per inbox: `setWebhookSigning`.
   */
  webhookSigning?: WebhookSigning;
  /** Webhook timeout (Chatwoot's `WEBHOOK_TIMEOUT`). Default 5000. */
  webhookTimeoutMs?: number;
  /** Redirects from an attachment's `data_url` to its bytes. Default 1 (ActiveStorage redirect mode). */
  attachmentRedirects?: number;
  /** Messages per conversation per minute (`CONVERSATION_MESSAGE_PER_MINUTE_LIMIT`). Default 200. */
  messageFloodLimit?: number;
}

/** An account as created by `createAccount`. */
export interface SimulatedAccount {
  id: number;
  name: string;
  status: AccountStatus;
}

/** A user's role in one account. */
export interface AccountMembership {
  accountId: number;
  role: AccountRole;
}

/** Options of `createUser`. */
export interface CreateUserOptions {
  name: string;
  /** Login email (also `uid`); default `user<id>@chatwoot-simulator.test`. Must be unique. */
  email?: string;
  /** Sets `display_name`, which becomes `available_name`. Default: none (available_name = name). */
  availableName?: string;
  messageSignature?: string | null;
  uiSettings?: Record<string, unknown>;
  /** Rendered in the profile only when non-empty, as Chatwoot does. */
  customAttributes?: Record<string, unknown>;
  /** Account memberships, in order. The last one is the user's active account. */
  accounts?: AccountMembership[];
}

/** A snapshot of a user: its current tokens and memberships. */
export interface SimulatedUser {
  id: number;
  name: string;
  email: string;
  availableName: string;
  /** The `api_access_token` value. */
  accessToken: string;
  /** The ActionCable `pubsub_token`. */
  pubsubToken: string;
  accounts: AccountMembership[];
}

/** One entry of the request log. Headers (and so the access token) are never recorded. */
export interface RecordedRequest {
  method: string;
  /** Path without query string, as sent. */
  path: string;
  /** Query parameters (the last value wins for repeated names). */
  query: Record<string, string>;
  /** Status answered; `null` while in flight, or when the connection was reset or dropped. */
  status: number | null;
  /** When the request arrived. */
  at: Date;
  /** The body: parsed JSON when it is JSON, otherwise its text; `undefined` when empty. */
  body: unknown;
  /** Whether an injected fault applied to this request. */
  faulted: boolean;
}

/** Selects requests in the log. Every given field must match. */
export interface RequestFilter {
  method?: string;
  /** Exact path (string) or a RegExp tested against the path. */
  path?: PathPattern;
  status?: number;
}

/** Input of `sim.toggleTyping`. */
export interface TypingInput {
  accountId: number;
  /** The conversation's display id. */
  conversationId: number;
  /** The agent typing (or stopping); must see the conversation's inbox. */
  userId: number;
  /** `on` (`conversation_typing_on`) or `off` (`conversation_typing_off`). */
  status: "on" | "off";
  /** Typing a private note. Default false. */
  isPrivate?: boolean;
}

/** A running simulator. */
export interface ChatwootSimulator extends ChatwootMessagingApi {
  /** The Chatwoot version played (`startChatwootSimulator({ version })`). */
  readonly version: ChatwootVersion;
  /** Base URL, e.g. `http://127.0.0.1:41234`; stays the same across `closePort`/`reopenPort`. */
  readonly url: string;
  readonly port: number;
  /** Creates an account (`status` defaults to `active`; suspended accounts answer 401 "Account is suspended"). */
  createAccount(options: { name: string; status?: AccountStatus }): SimulatedAccount;
  /** Suspends or reactivates an account. */
  setAccountStatus(accountId: number, status: AccountStatus): void;
  /** Creates a user with random `access_token` and `pubsub_token`, member of the given accounts. */
  createUser(options: CreateUserOptions): SimulatedUser;
  /** The user's current state, or `undefined` if unknown. */
  getUser(userId: number): SimulatedUser | undefined;
  /** Adds the user to the account with this role, or changes its role there. */
  setAccountRole(accountId: number, userId: number, role: AccountRole): void;
  /**
   * Creates an inbox as `POST /api/v1/accounts/{accountId}/inboxes` would with this body, without
   * HTTP and without authorization, and returns its JSON. Throws if Chatwoot would refuse the body.
   */
  createInbox(accountId: number, body: Record<string, unknown>): Record<string, unknown>;
  /** Makes an agent a member of an inbox (`inbox_members`), so it can see it. */
  addInboxMember(inboxId: number, userId: number): void;
  /** Removes an agent from an inbox: it no longer sees it, and Chatwoot stops broadcasting the inbox's events to it. */
  removeInboxMember(inboxId: number, userId: number): void;
  /** The account's inboxes as Chatwoot JSON (administrator view, ordered by name). */
  inboxes(accountId: number): Record<string, unknown>[];
  /** One inbox as Chatwoot JSON (administrator view), or `undefined`. */
  getInbox(accountId: number, inboxId: number): Record<string, unknown> | undefined;
  /** Every request received, oldest first. */
  readonly requests: readonly RecordedRequest[];
  /** Number of logged requests matching the filter (all when omitted). */
  countRequests(filter?: RequestFilter): number;
  /**
   * Resolves once `count` (default 1) logged requests match the filter, with those requests;
   * rejects after `timeoutMs` (default 5000). Requests already in the log count.
   */
  waitForRequests(
    filter: RequestFilter,
    options?: { count?: number; timeoutMs?: number },
  ): Promise<RecordedRequest[]>;
  /** Empties the request log. */
  clearRequests(): void;
  /**
   * An agent starts or stops typing in a conversation (`POST …/conversations/{id}/toggle_typing_status`): the
   * `conversation.typing_on|off` broadcast (to everyone but the typer) and the `conversation_typing_on|off` webhook.
   */
  toggleTyping(input: TypingInput): void;
  /** Gives the user a new `pubsub_token` (as a password change does) and returns it. */
  rotatePubsubToken(userId: number): string;
  /**
   * Replaces the user's access token (as `POST /api/v1/profile/reset_access_token` does) and returns
   * the new one; the old token then gets 401 `{"error":"Invalid Access Token"}`.
   */
  revokeAccessToken(userId: number): string;
  /** Fault injection. */
  readonly faults: SimulatorFaults;
  /** Webhook delivery faults: duplicate and late deliveries. */
  readonly webhooks: SimulatorWebhooks;
  /**
   * Stops listening and drops open connections, cable sockets included (clients get
   * ECONNREFUSED); all state is kept.
   */
  closePort(): Promise<void>;
  /** Listens again on the same host and port (HTTP and `/cable`). */
  reopenPort(): Promise<void>;
  /** Stops the simulator for good. */
  close(): Promise<void>;
}

function snapshotUser(store: SimulatorStore, user: UserRecord): SimulatedUser {
  return {
    id: user.id,
    name: user.name,
    email: user.email,
    availableName: user.displayName?.trim() ? user.displayName : user.name,
    accessToken: user.accessToken,
    pubsubToken: user.pubsubToken,
    accounts: accountUsersOf(store, user.id).map((au) => ({ accountId: au.accountId, role: au.role })),
  };
}

function requestMatches(request: RecordedRequest, filter: RequestFilter): boolean {
  return (
    (filter.method === undefined || filter.method.toUpperCase() === request.method) &&
    (filter.path === undefined || matchesPath(filter.path, request.path)) &&
    (filter.status === undefined || filter.status === request.status)
  );
}

function bodyForLog(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of req) chunks.push(chunk as Buffer);
  } catch {
    return undefined; // the client went away
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, response: ChatwootResponse) {
  if (res.destroyed) return;
  res.writeHead(response.status, { ...response.headers, "content-length": Buffer.byteLength(response.body) });
  res.end(response.body);
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Cancellable timers for `delayMs` faults, so closing the port does not wait for them. */
function createSleeper() {
  const pending = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  return {
    sleep(ms: number) {
      return new Promise<void>((resolve) => {
        const entry = {
          timer: setTimeout(() => {
            pending.delete(entry);
            resolve();
          }, ms),
          resolve,
        };
        pending.add(entry);
      });
    },
    wakeAll() {
      for (const entry of pending) {
        clearTimeout(entry.timer);
        entry.resolve();
      }
      pending.clear();
    },
  };
}

/**
 * Starts an in-memory Chatwoot double on 127.0.0.1 (random port by default), of the version given
 * (default the newest, 4.13). It serves `GET /api` and the Application API routes the bridge uses
 * (profile, inboxes, contacts, conversations, messages) with Chatwoot's JSON, status codes and
 * error bodies, ActionCable at `/cable`, and API-inbox webhooks; see the testkit README.
 */
export async function startChatwootSimulator(
  options: ChatwootSimulatorOptions = {},
): Promise<ChatwootSimulator> {
  const host = options.host ?? "127.0.0.1";
  const version = checkVersion(options.version ?? NEWEST_CHATWOOT_VERSION);
  const store = createSimulatorStore();
  store.settings.version = version;
  store.settings.features = featuresOf(version);
  store.settings.webhookSigning =
    options.webhookSigning ?? (store.settings.features.inboxSecret ? "secret" : "off");
  const { faults, take } = createFaultRegistry();
  const sleeper = createSleeper();
  const sockets = new Set<Socket>();
  const waiters = createWaiters();
  const cable = createCableServer({ store, pingIntervalMs: options.cablePingIntervalMs ?? 3000 });
  let log: RecordedRequest[] = [];
  let listening = false;
  let closed = false;
  let handle: ReturnType<typeof createChatwootHandler> | undefined;

  const notify = () => waiters.notify();

  async function applyFault(
    action: FaultAction,
    req: IncomingMessage,
    res: ServerResponse,
    entry: RecordedRequest,
  ) {
    if (action.delayMs > 0) await sleeper.sleep(action.delayMs);
    if (req.socket.destroyed) return true;
    if (action.reset) {
      req.socket.resetAndDestroy();
      return true;
    }
    if (!action.answer) return false;
    send(res, action.answer);
    entry.status = action.answer.status;
    return true;
  }

  async function serve(req: IncomingMessage, res: ServerResponse) {
    const rawBody = await readBody(req);
    if (rawBody === undefined) return;
    const url = new URL(req.url ?? "/", "http://simulator.invalid");
    const method = (req.method ?? "GET").toUpperCase();
    const entry: RecordedRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: null,
      at: new Date(),
      body: bodyForLog(rawBody),
      faulted: false,
    };
    log.push(entry);
    notify();
    const action = take(method, url.pathname);
    if (action && !action.afterHandling) {
      entry.faulted = true;
      const done = await applyFault(action, req, res, entry);
      if (done || req.socket.destroyed) {
        notify();
        return;
      }
    }
    if (!handle) throw new Error("chatwoot simulator: not started");
    const response = await handle({
      method,
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      rawBody,
    });
    if (action?.afterHandling) {
      // The request did its work; only its answer is replaced, delayed or lost.
      entry.faulted = true;
      const done = await applyFault(action, req, res, entry);
      if (done || req.socket.destroyed) {
        notify();
        return;
      }
    }
    send(res, response);
    entry.status = response.status;
    notify();
  }

  const server = createServer((req, res) => {
    serve(req, res).catch((error: unknown) => {
      console.error("[chatwoot-simulator] request failed:", error);
      if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  /** WebSocket upgrades: logged and subject to faults like requests; only `/cable` is served. */
  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const url = new URL(req.url ?? "/", "http://simulator.invalid");
    const entry: RecordedRequest = {
      method: "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: null,
      at: new Date(),
      body: undefined,
      faulted: false,
    };
    log.push(entry);
    notify();
    const reject = (status: number, headers: Record<string, string> = {}, body: string | Buffer = "") => {
      const lines = Object.entries({ ...headers, "content-length": String(Buffer.byteLength(body)) }).map(
        ([name, value]) => `${name}: ${value}\r\n`,
      );
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n${lines.join("")}connection: close\r\n\r\n${body}`,
      );
      entry.status = status;
      notify();
    };
    const action = take("GET", url.pathname);
    if (action) {
      entry.faulted = true;
      if (action.delayMs > 0) await sleeper.sleep(action.delayMs);
      if (socket.destroyed) return notify();
      if (action.reset) {
        (socket as Socket).resetAndDestroy();
        return notify();
      }
      if (action.answer) return reject(action.answer.status, action.answer.headers, action.answer.body);
    }
    if (url.pathname.replace(/\/$/, "") !== "/cable") return reject(404);
    cable.handleUpgrade(req, socket, head);
    entry.status = 101;
    notify();
  }
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrade(req, socket, head).catch((error: unknown) => {
      console.error("[chatwoot-simulator] upgrade failed:", error);
      socket.destroy();
    });
  });

  const port = await listen(server, options.port ?? 0, host);
  listening = true;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

  const listeners: EventListener[] = [];
  const runtime = createRuntime({
    store,
    baseUrl: url,
    messageFloodLimit: options.messageFloodLimit ?? 200,
    attachmentRedirects: options.attachmentRedirects ?? 1,
    listeners,
  });
  const messaging = createMessagingApi(runtime, cable.controls, waiters);
  const webhookTimeoutMs = options.webhookTimeoutMs ?? 5000;
  const webhooks = createWebhookSender({
    rt: runtime,
    timeoutMs: () => webhookTimeoutMs,
    record: messaging.recordDelivery,
    changed: notify,
  });
  listeners.push(
    createCableListener(runtime, { send: cable.broadcast, record: messaging.recordBroadcast, sent: notify }),
    createWebhookListener(runtime, webhooks),
    createCsatSurveyListener(runtime),
  );
  handle = createChatwootHandler(runtime, [
    ...apiRoutes,
    ...storageRoutes,
    ...profileRoutes,
    ...inboxRoutes,
    ...contactRoutes,
    ...conversationRoutes,
    ...messageRoutes,
  ]);

  async function closePort() {
    if (!listening) return;
    listening = false;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    cable.controls.dropAll();
    for (const socket of sockets) socket.destroy();
    sleeper.wakeAll();
    await stopped;
  }

  const requireUser = (userId: number) => {
    const user = store.users.get(userId);
    if (!user) throw new Error(`chatwoot simulator: no user ${userId}`);
    return user;
  };
  const requireAccount = (accountId: number) => {
    const account = store.accounts.get(accountId);
    if (!account) throw new Error(`chatwoot simulator: no account ${accountId}`);
    return account;
  };
  let membershipSeq = 0;
  const setAccountRole = (accountId: number, userId: number, role: AccountRole) => {
    requireAccount(accountId);
    requireUser(userId);
    if (role !== "administrator" && role !== "agent")
      throw new Error(`chatwoot simulator: unknown role ${role}`);
    const existing = findAccountUser(store, accountId, userId);
    if (existing) {
      existing.role = role;
      return;
    }
    store.accountUsers.push({
      accountId,
      userId,
      role,
      inviterId: null,
      activeAt: new Date(),
      availability: "online",
      availabilityStatus: "online",
      autoOffline: true,
      seq: ++membershipSeq,
    });
  };

  return {
    ...messaging.api,
    version,
    url,
    port,
    faults,
    webhooks: webhooks.controls,
    get requests() {
      return log;
    },

    createAccount({ name, status = "active" }) {
      const account = {
        id: store.nextId("accounts"),
        name,
        status,
        createdAt: new Date(),
        lastConversationDisplayId: 0,
      };
      store.accounts.set(account.id, account);
      return { id: account.id, name, status };
    },

    setAccountStatus(accountId, status) {
      requireAccount(accountId).status = status;
    },

    createUser(userOptions) {
      const id = store.nextId("users");
      const email = (userOptions.email ?? `user${id}@chatwoot-simulator.test`).toLowerCase();
      if ([...store.users.values()].some((u) => u.email === email)) {
        throw new Error(`chatwoot simulator: email ${email} is already taken`);
      }
      for (const membership of userOptions.accounts ?? []) requireAccount(membership.accountId);
      const user: UserRecord = {
        id,
        name: userOptions.name,
        displayName: userOptions.availableName ?? null,
        email,
        messageSignature: userOptions.messageSignature ?? null,
        uiSettings: userOptions.uiSettings ?? {},
        customAttributes: userOptions.customAttributes ?? {},
        type: null,
        pubsubToken: generateSecureToken(),
        accessToken: generateSecureToken(),
        createdAt: new Date(),
      };
      store.users.set(id, user);
      store.accessTokens.set(user.accessToken, { ownerType: "User", ownerId: id });
      for (const membership of userOptions.accounts ?? [])
        setAccountRole(membership.accountId, id, membership.role);
      return snapshotUser(store, user);
    },

    getUser(userId) {
      const user = store.users.get(userId);
      return user ? snapshotUser(store, user) : undefined;
    },

    setAccountRole,

    createInbox(accountId, body) {
      try {
        const inbox = createApiInbox(store, requireAccount(accountId), body);
        return renderInbox(store, inbox, { administrator: true });
      } catch (error) {
        if (error instanceof ChatwootHttpError) {
          throw new Error(`chatwoot simulator: Chatwoot would refuse this inbox: ${error.message}`);
        }
        throw error;
      }
    },

    addInboxMember(inboxId, userId) {
      const inbox = store.inboxes.get(inboxId);
      if (!inbox) throw new Error(`chatwoot simulator: no inbox ${inboxId}`);
      requireUser(userId);
      inbox.memberUserIds.add(userId);
    },

    removeInboxMember(inboxId, userId) {
      const inbox = store.inboxes.get(inboxId);
      if (!inbox) throw new Error(`chatwoot simulator: no inbox ${inboxId}`);
      requireUser(userId);
      inbox.memberUserIds.delete(userId);
    },

    inboxes(accountId) {
      return [...store.inboxes.values()]
        .filter((inbox) => inbox.accountId === accountId)
        .sort(byName)
        .map((inbox) => renderInbox(store, inbox, { administrator: true }));
    },

    getInbox(accountId, inboxId) {
      const inbox = store.inboxes.get(inboxId);
      return inbox && inbox.accountId === accountId
        ? renderInbox(store, inbox, { administrator: true })
        : undefined;
    },

    countRequests(filter = {}) {
      return log.filter((request) => requestMatches(request, filter)).length;
    },

    waitForRequests(filter, { count = 1, timeoutMs = 5000 } = {}) {
      return waiters.until(
        () => {
          const matching = log.filter((request) => requestMatches(request, filter));
          return matching.length >= count ? matching : undefined;
        },
        timeoutMs,
        () => `fewer than ${count} matching request(s)`,
      );
    },

    clearRequests() {
      log = [];
    },

    toggleTyping({ accountId, conversationId, userId, status, isPrivate = false }) {
      const user = requireUser(userId);
      if (!findAccountUser(store, accountId, userId))
        throw new Error(`chatwoot simulator: user ${userId} is not a member of account ${accountId}`);
      const conversation = findConversation(store, accountId, conversationId);
      if (!conversation)
        throw new Error(`chatwoot simulator: no conversation ${conversationId} in account ${accountId}`);
      const inbox = store.inboxes.get(conversation.inboxId);
      if (!inbox || !canSeeInbox(store, userId, inbox))
        throw new Error(`chatwoot simulator: user ${userId} cannot see inbox ${conversation.inboxId}`);
      if (status !== "on" && status !== "off")
        throw new TypeError(`typing status must be on or off, got ${status}`);
      runtime.emit({
        name: status === "on" ? "conversation.typing_on" : "conversation.typing_off",
        conversation,
        performer: user,
        isPrivate,
      });
    },

    rotatePubsubToken(userId) {
      const user = requireUser(userId);
      user.pubsubToken = generateSecureToken();
      return user.pubsubToken;
    },

    revokeAccessToken(userId) {
      const user = requireUser(userId);
      store.accessTokens.delete(user.accessToken);
      user.accessToken = generateSecureToken();
      store.accessTokens.set(user.accessToken, { ownerType: "User", ownerId: user.id });
      return user.accessToken;
    },

    closePort,

    async reopenPort() {
      if (closed) throw new Error("chatwoot simulator: already closed");
      if (listening) return;
      await listen(server, port, host);
      listening = true;
    },

    async close() {
      closed = true;
      webhooks.abortAll();
      await closePort();
      cable.close();
    },
  };
}
