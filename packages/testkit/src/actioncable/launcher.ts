/**
 * Starts a real Rails ActionCable server (Debian's `ruby-actioncable` under `puma`) hosting our port of
 * Chatwoot's `RoomChannel` (packages/testkit/actioncable/), so that realtime tests can check the client against
 * ActionCable itself instead of our simulator's reading of it. The server binds 127.0.0.1 on a port the
 * kernel picks; its control API (`/control/*`) manages users, broadcasts and fault switches.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";

/** packages/testkit/actioncable, from src/actioncable (sources) or dist/actioncable (build). */
export const RAILS_CABLE_APP_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "actioncable");

export interface RailsCableExecutables {
  /** Default `ruby` (from PATH). */
  ruby?: string;
  /** Default `puma` (from PATH). */
  puma?: string;
}

const availability = new Map<string, boolean>();

/** Whether Ruby, ActionCable and puma are installed (checked once per set of executables). */
export function railsCableAvailable(executables: RailsCableExecutables = {}): boolean {
  const ruby = executables.ruby ?? "ruby";
  const puma = executables.puma ?? "puma";
  const key = `${ruby}\0${puma}`;
  let known = availability.get(key);
  if (known === undefined) {
    const run = (command: string, args: string[]) =>
      spawnSync(command, args, { stdio: "ignore", timeout: 15_000 }).status === 0;
    known =
      existsSync(join(RAILS_CABLE_APP_DIR, "config.ru")) &&
      run(ruby, [
        "-e",
        "require 'action_cable'; require 'puma'; require 'websocket/driver'; require 'nio'",
      ]) &&
      run(puma, ["--version"]);
    availability.set(key, known);
  }
  return known;
}

/** What a test file does about the real server: run, skip (loudly), or fail because CI requires it. */
export interface RailsCableGate {
  mode: "run" | "skip" | "fail";
  /** The banner to print (skip) or the failure message (fail); empty when running. */
  message: string;
}

/**
 * Decides whether ActionCable tests run. Missing Ruby/ActionCable/puma skips them with a banner, unless
 * `CI_REQUIRE_ACTIONCABLE=1`, where they must fail instead: a skip would hide that CI tests nothing.
 */
export function railsCableGate(
  available: boolean = railsCableAvailable(),
  env: NodeJS.ProcessEnv = process.env,
): RailsCableGate {
  if (available) return { mode: "run", message: "" };
  const missing =
    "Ruby with ActionCable and puma is not installed, so the realtime tests against a real Rails ActionCable " +
    "server cannot run. Install them with: apt-get install -y ruby-actioncable puma";
  if (env["CI_REQUIRE_ACTIONCABLE"] === "1")
    return { mode: "fail", message: `${missing} (required here: CI_REQUIRE_ACTIONCABLE=1)` };
  const line = "!".repeat(100);
  return {
    mode: "skip",
    message: `\n${line}\n!! SKIPPED: ${missing}\n!! Set CI_REQUIRE_ACTIONCABLE=1 to make this a failure.\n${line}\n`,
  };
}

export interface RailsCableUser {
  id: number;
  pubsubToken: string;
  /** Account memberships (Chatwoot's account_users). Role defaults to `agent`, availability to `online`. */
  accounts: { id: number; role?: "administrator" | "agent"; availability?: string; autoOffline?: boolean }[];
}

/** Counters of RoomChannel#subscribed calls (`subscribed`), successes, raised faults and unsubscribes. */
export interface RailsCableStats {
  subscribed?: number;
  subscribed_ok?: number;
  raised?: number;
  unsubscribed?: number;
  pending_failures: number;
}

export interface RailsCable {
  /** `ws://127.0.0.1:P/cable` */
  readonly url: string;
  /** `http://127.0.0.1:P`: what a Chatwoot base URL would be (the hub appends `/cable`). */
  readonly httpUrl: string;
  /** Inserts or replaces a user (a new token for a known id is a rotation). */
  upsertUser(user: RailsCableUser): Promise<void>;
  deleteUser(id: number): Promise<void>;
  /** `ActionCable.server.broadcast(token, message)`, as Chatwoot broadcasts events to a user's pubsub token. */
  broadcast(token: string, message: unknown): Promise<void>;
  /** Broadcasts to any stream, e.g. `account_<id>`. */
  broadcastTo(stream: string, message: unknown): Promise<void>;
  /**
   * Makes the next `count` RoomChannel#subscribed calls raise: at the user lookup, before any stream (`lookup`,
   * a database hiccup, the default), or in the presence update after the streams (`presence`, a Redis hiccup).
   */
  failNextSubscribes(count: number, options?: { at?: "lookup" | "presence" }): Promise<void>;
  /** `ActionCable.server.restart`: every socket gets `disconnect` (server_restart, reconnect true) and is closed. */
  restart(): Promise<void>;
  /** The subscription identifiers Rails holds, per open connection (failed subscriptions included). */
  connections(): Promise<{ identifiers: string[] }[]>;
  stats(): Promise<RailsCableStats>;
  /** Forgets users, presence, faults and counters. */
  reset(): Promise<void>;
  /** The server's log so far (puma and Rails, newest last). */
  logs(): string;
  /** Stops puma (SIGTERM, then SIGKILL after 3 s). */
  close(): Promise<void>;
}

export interface StartRailsCableOptions extends RailsCableExecutables {
  /** Rails log level: debug, info (default), warn, error. */
  logLevel?: "debug" | "info" | "warn" | "error";
  /** Default 20 s. */
  startTimeoutMs?: number;
}

const running = new Set<ChildProcess>();
let exitHook = false;

function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once("exit", () => running.delete(child));
  if (exitHook) return;
  exitHook = true;
  process.once("exit", () => {
    for (const server of running) server.kill("SIGKILL");
  });
}

/** Opens a socket, waits for ActionCable's welcome frame, closes it. */
function welcome(url: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, ["actioncable-v1-json"]);
    const timer = setTimeout(
      () => finish(new Error(`no welcome on ${url} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on("error", () => {});
      socket.terminate();
      if (error) reject(error);
      else resolve();
    };
    socket.on("message", (data) => {
      if ((JSON.parse(data.toString()) as { type?: string }).type === "welcome") finish();
    });
    socket.on("error", (error) => finish(error));
    socket.on("close", () => finish(new Error(`${url} closed before its welcome`)));
  });
}

/** Starts puma with the ActionCable app on 127.0.0.1 (a free port) and resolves once it serves requests. */
export async function startRailsCable(options: StartRailsCableOptions = {}): Promise<RailsCable> {
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const child = spawn(
    options.puma ?? "puma",
    ["--bind", "tcp://127.0.0.1:0", "--threads", "1:8", "--environment", "test", "config.ru"],
    {
      cwd: RAILS_CABLE_APP_DIR,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CABLE_LOG_LEVEL: options.logLevel ?? "info", CABLE_EXIT_WITH_PARENT: "1" },
    },
  );
  killOnExit(child);
  const log: string[] = [];
  const logs = () => log.join("");
  const keep = (chunk: Buffer) => {
    log.push(chunk.toString());
    if (log.length > 2_000) log.splice(0, log.length - 2_000);
  };
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const port = await new Promise<number>((resolve, reject) => {
    let seen = "";
    const done = () => {
      clearTimeout(timer);
      child.off("error", fail);
      child.off("exit", onExit);
      child.stdout?.off("data", onData);
      child.stdout?.on("data", keep);
    };
    const fail = (error: Error) => {
      done();
      child.kill("SIGKILL");
      reject(new Error(`${error.message}\n--- server log ---\n${logs()}`));
    };
    const onExit = (code: number | null) => fail(new Error(`puma exited with code ${code} before listening`));
    const onData = (chunk: Buffer) => {
      keep(chunk);
      seen += chunk.toString();
      const match = /Listening on (?:http|tcp):\/\/127\.0\.0\.1:(\d+)/.exec(seen);
      if (!match) return;
      done();
      resolve(Number(match[1]));
    };
    const timer = setTimeout(
      () => fail(new Error(`puma did not start within ${startTimeoutMs} ms`)),
      startTimeoutMs,
    );
    child.once("error", fail);
    child.once("exit", onExit);
    child.stdout?.on("data", onData);
  });

  const httpUrl = `http://127.0.0.1:${port}`;
  const control = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${httpUrl}/control${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    if (!response.ok)
      throw new Error(`ActionCable control ${method} ${path}: HTTP ${response.status} ${text}`);
    return JSON.parse(text);
  };

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    try {
      await control("GET", "/health");
      break;
    } catch (error) {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill("SIGKILL");
        throw new Error(
          `ActionCable server not ready: ${(error as Error).message}\n--- server log ---\n${logs()}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  // Ready means /cable answers: the first socket starts ActionCable's event loop and worker pool (about a second).
  try {
    await welcome(`ws://127.0.0.1:${port}/cable`, Math.max(1_000, deadline - Date.now()));
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(
      `ActionCable server not ready: ${(error as Error).message}\n--- server log ---\n${logs()}`,
    );
  }

  return {
    url: `ws://127.0.0.1:${port}/cable`,
    httpUrl,
    async upsertUser(user) {
      await control("POST", "/users", {
        id: user.id,
        pubsub_token: user.pubsubToken,
        accounts: user.accounts.map((account) => ({
          id: account.id,
          role: account.role ?? "agent",
          availability: account.availability ?? "online",
          auto_offline: account.autoOffline ?? true,
        })),
      });
    },
    async deleteUser(id) {
      await control("DELETE", `/users/${id}`);
    },
    async broadcast(token, message) {
      await control("POST", "/broadcast", { token, message });
    },
    async broadcastTo(stream, message) {
      await control("POST", "/broadcast", { stream, message });
    },
    async failNextSubscribes(count, failOptions = {}) {
      await control("POST", "/fail-subscribe", { count, at: failOptions.at ?? "lookup" });
    },
    async restart() {
      await control("POST", "/restart");
    },
    connections: () => control("GET", "/connections") as Promise<{ identifiers: string[] }[]>,
    stats: () => control("GET", "/stats") as Promise<RailsCableStats>,
    async reset() {
      await control("POST", "/reset");
    },
    logs,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
