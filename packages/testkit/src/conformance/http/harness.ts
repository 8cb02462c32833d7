import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import {
  type ChatwootBridge,
  type ChatwootBridgeOptions,
  createChatwootBridge,
  createStaticDirectory,
  type Logger,
  type StoragePort,
} from "@ryze/chatwoot-core";
import type { HttpHandler } from "@ryze/chatwoot-core/adapter";
import { createMemoryStore } from "@ryze/chatwoot-core/testing";
import { checkHttpAnswer, registerSecret, secretCheckingLogger } from "../../secrets.js";
import {
  type ChatwootSimulator,
  type ChatwootVersion,
  startChatwootSimulator,
} from "../../simulator/index.js";

/** How a framework adapter is started for the suite: a real server on 127.0.0.1, port 0. */
export interface AdapterMount {
  name: string;
  /**
   * Starts the framework with `handlers` mounted in order, then the host's own routes: `GET /host/ping` answers
   * 200 `pong` as text, and anything unanswered gets the host's 404 with the JSON body `{"host":"not found"}`.
   * With `hostBodyParser`, the host's JSON body parser runs before the adapter (for every path).
   */
  start(options: { handlers: Array<{ http: HttpHandler }>; hostBodyParser: boolean }): Promise<StartedServer>;
}

export interface StartedServer {
  url: string;
  close(): Promise<void>;
}

export const ACCOUNT_TOKEN = "acct-token-conformance-0001";
export const INSTANCE_TOKEN = "inst-token-suporte-0001";
export const OTHER_INSTANCE_TOKEN = "inst-token-vendas-0001";
export const FOREIGN_ACCOUNT_TOKEN = "acct-token-foreign-0001";
for (const token of [ACCOUNT_TOKEN, INSTANCE_TOKEN, OTHER_INSTANCE_TOKEN, FOREIGN_ACCOUNT_TOKEN]) {
  registerSecret(token, "a caller token");
}

export interface Harness {
  sim: ChatwootSimulator;
  bridge: ChatwootBridge;
  store: StoragePort;
  server: StartedServer;
  accountId: number;
  /** An administrator's Chatwoot token. */
  adminToken: string;
  /** An agent's Chatwoot token (not an administrator). */
  agentToken: string;
  /** A token of a user who is not a member of the account. */
  strangerToken: string;
  /** What the bridge logged (unless the case passed its own `logger`). */
  logs: LogLine[];
  close(): Promise<void>;
}

/** One call of the bridge's logger. */
export interface LogLine {
  level: keyof Logger;
  msg: string | undefined;
  obj: Record<string, unknown>;
}

function recordingLogger(lines: LogLine[]): Logger {
  const at =
    (level: keyof Logger) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, msg, obj: { ...obj } });
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

export interface HarnessOptions {
  mount: AdapterMount;
  hostBodyParser?: boolean;
  bridge?: Partial<ChatwootBridgeOptions>;
  /** Wraps the store, e.g. to make persisting fail. */
  wrapStore?: (store: StoragePort) => StoragePort;
  /** The Chatwoot version the simulator plays (default the newest). */
  version?: ChatwootVersion;
}

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const sim = await startChatwootSimulator(options.version ? { version: options.version } : {});
  const account = sim.createAccount({ name: "Acme" });
  const otherAccount = sim.createAccount({ name: "Other" });
  const admin = sim.createUser({
    name: "Jane Doe",
    accounts: [{ accountId: account.id, role: "administrator" }],
  });
  const agent = sim.createUser({ name: "Agent Smith", accounts: [{ accountId: account.id, role: "agent" }] });
  const stranger = sim.createUser({
    name: "Stranger",
    accounts: [{ accountId: otherAccount.id, role: "administrator" }],
  });
  const base = createMemoryStore();
  const store = options.wrapStore ? options.wrapStore(base) : base;
  const logs: LogLine[] = [];
  const key = randomBytes(32).toString("base64");
  registerSecret(key, "an encryption key");
  const bridge = createChatwootBridge({
    store,
    directory: createStaticDirectory({
      accounts: [
        {
          id: "acme",
          token: ACCOUNT_TOKEN,
          instances: [
            { name: "suporte", token: INSTANCE_TOKEN },
            { name: "vendas", token: OTHER_INSTANCE_TOKEN },
          ],
        },
        { id: "foreign", token: FOREIGN_ACCOUNT_TOKEN, instances: [] },
      ],
    }),
    encryption: { current: { id: "k1", key } },
    rateLimit: { points: 10_000 },
    // Every line is checked for the secrets the tests use (secrets.ts), then recorded for the case.
    logger: secretCheckingLogger(recordingLogger(logs)),
    ...options.bridge,
  });
  const server = await options.mount.start({
    handlers: [bridge],
    hostBodyParser: options.hostBodyParser ?? false,
  });
  return {
    sim,
    bridge,
    store,
    server,
    accountId: account.id,
    adminToken: admin.accessToken,
    agentToken: agent.accessToken,
    strangerToken: stranger.accessToken,
    logs,
    async close() {
      await server.close();
      await bridge.stop();
      await sim.close();
    },
  };
}

/** An answer as a client sees it. */
export interface Answer {
  status: number;
  /** Only the headers we own: content-type, x-ratelimit-*, retry-after. */
  headers: Record<string, string>;
  body: string;
}

const OWNED_HEADERS = [
  "content-type",
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
  "retry-after",
];

export async function send(
  server: StartedServer,
  path: string,
  init: {
    method?: string;
    token?: string | null;
    headers?: Record<string, string>;
    body?: unknown;
    raw?: string;
    /** Sends the body as a stream of unknown length (`Transfer-Encoding: chunked`, no `Content-Length`). */
    chunked?: boolean;
    /** Connects from this local address (e.g. `127.0.0.2`: another client of the same machine). */
    localAddress?: string;
  } = {},
): Promise<Answer> {
  if (init.localAddress !== undefined) return sendFrom(server, path, init, init.localAddress);
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers.token = init.token;
  let body: string | undefined;
  if (init.raw !== undefined) body = init.raw;
  else if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetch(`${server.url}${path}`, {
    method: init.method ?? "GET",
    headers,
    ...(init.chunked && body !== undefined
      ? { body: new Blob([body]).stream(), duplex: "half" as const }
      : { body }),
  });
  const owned: Record<string, string> = {};
  for (const name of OWNED_HEADERS) {
    const value = response.headers.get(name);
    if (value !== null) owned[name] = value;
  }
  const answer = { status: response.status, headers: owned, body: await response.text() };
  checkHttpAnswer(answer, `the answer to ${init.method ?? "GET"} ${path.replace(/\?.*$/, "")}`);
  return answer;
}

/** `send` over node:http from a given local address (fetch cannot choose it). */
async function sendFrom(
  server: StartedServer,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown; raw?: string },
  localAddress: string,
): Promise<Answer> {
  const body = init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body));
  const headers: Record<string, string> = { ...init.headers };
  if (init.body !== undefined) headers["content-type"] ??= "application/json";
  return new Promise<Answer>((resolve, reject) => {
    const request = httpRequest(
      new URL(path, server.url),
      { method: init.method ?? "GET", headers, localAddress, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("error", reject);
        response.on("end", () => {
          const owned: Record<string, string> = {};
          for (const name of OWNED_HEADERS) {
            const value = response.headers[name];
            if (typeof value === "string") owned[name] = value;
          }
          const answer = {
            status: response.statusCode ?? 0,
            headers: owned,
            body: Buffer.concat(chunks).toString("utf8"),
          };
          checkHttpAnswer(answer, `the answer to ${init.method ?? "GET"} ${path.replace(/\?.*$/, "")}`);
          resolve(answer);
        });
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

export function activateBody(h: Harness, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    chatwootBaseUrl: h.sim.url,
    chatwootAccountId: h.accountId,
    chatwootApiToken: h.adminToken,
    inboxName: "WhatsApp - Orion",
    signMessages: true,
    ignoreGroups: false,
    startAsPending: false,
    reopenResolved: true,
    ...overrides,
  };
}

export function errorOf(answer: Answer): string {
  const parsed = JSON.parse(answer.body) as { success?: unknown; error?: { message?: unknown } };
  if (
    parsed.success !== false ||
    typeof parsed.error?.message !== "string" ||
    Object.keys(parsed).length !== 2
  ) {
    throw new Error(`not the contract's error body: ${answer.body}`);
  }
  return parsed.error.message;
}
