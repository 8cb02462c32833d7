/**
 * The benchmark runs its servers in child processes (the simulator, the framework apps, the 1,000 integrations),
 * so that the side being measured and the side generating load each have a core of the 2, and so that memory
 * is measured in a process holding nothing else. Calls go over the IPC channel with structured clone.
 */
import { type ChildProcess, fork } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { now } from "./stats.js";

const here = fileURLToPath(new URL(".", import.meta.url));

/** The flags every child runs with: the TypeScript sources of the workspace, and `gc()` for memory figures. */
export const CHILD_EXEC_ARGV = ["--conditions=@ryze/source", "--import", "tsx", "--expose-gc"];

type Methods = Record<string, (...args: never[]) => unknown>;

interface Request {
  id: number;
  method: string;
  args: unknown[];
}

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

export interface Child<M extends Methods> {
  readonly pid: number;
  /** Child clock minus parent clock (ms), from the round trip with the smallest delay. */
  readonly offsetMs: number;
  /** Round trip of the calibration call that set `offsetMs` (its uncertainty is half of this). */
  readonly calibrationRttMs: number;
  call<K extends keyof M & string>(method: K, ...args: Parameters<M[K]>): Promise<Awaited<ReturnType<M[K]>>>;
  /** A child timestamp on the parent's clock. */
  toParentTime(childTime: number): number;
  close(): Promise<void>;
}

/** Starts `bench/<file>` as a child process serving its methods; calibrates the clocks of both sides. */
export async function spawnChild<M extends Methods>(file: string, args: string[] = []): Promise<Child<M>> {
  // Diagnosis only: BENCH_CPU_PROF=<dir> profiles the children, BENCH_CHILD_FLAGS adds node flags (e.g. --trace-gc).
  const profile = process.env.BENCH_CPU_PROF
    ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  profile.push(...(process.env.BENCH_CHILD_FLAGS?.split(" ").filter(Boolean) ?? []));
  const child: ChildProcess = fork(join(here, file), args, {
    execArgv: [...CHILD_EXEC_ARGV, ...profile],
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let sequence = 0;
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let exited = false;
  child.on("message", (message: Reply) => {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.ok) waiter.resolve(message.value);
    else waiter.reject(new Error(`${file}: ${message.error}`));
  });
  const exit = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true;
      for (const waiter of pending.values())
        waiter.reject(new Error(`${file} exited (code ${code}, signal ${signal})`));
      pending.clear();
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once("message", () => resolve()); // the child's "ready"
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`${file} exited before it was ready (code ${code})`)));
  });

  const call = (method: string, ...args: unknown[]): Promise<unknown> => {
    if (exited) return Promise.reject(new Error(`${file} has exited`));
    const id = ++sequence;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      child.send({ id, method, args } satisfies Request);
    });
  };

  // Clock calibration: the round trip with the smallest delay bounds the offset best.
  let offsetMs = 0;
  let calibrationRttMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 40; i++) {
    const sent = now();
    const childTime = (await call("__now")) as number;
    const received = now();
    if (received - sent < calibrationRttMs) {
      calibrationRttMs = received - sent;
      offsetMs = childTime - (sent + received) / 2;
    }
  }

  return {
    pid: child.pid ?? -1,
    offsetMs,
    calibrationRttMs,
    call: call as Child<M>["call"],
    toParentTime: (childTime) => childTime - offsetMs,
    async close() {
      if (exited) return;
      await call("__exit").catch(() => undefined);
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** The child side: serves `methods` over IPC until the parent says `__exit` or disconnects. */
export function serve(methods: Methods, onExit?: () => Promise<void>): void {
  const send = (reply: Reply) => {
    if (process.connected) process.send?.(reply);
  };
  const shutdown = async () => {
    try {
      await onExit?.();
    } finally {
      if (process.connected) process.disconnect?.();
      process.exit(0);
    }
  };
  process.on("message", (message: Request) => {
    if (message.method === "__now") return send({ id: message.id, ok: true, value: now() });
    if (message.method === "__exit") {
      send({ id: message.id, ok: true });
      void shutdown();
      return;
    }
    const method = methods[message.method] as ((...args: unknown[]) => unknown) | undefined;
    if (!method) return send({ id: message.id, ok: false, error: `no method ${message.method}` });
    Promise.resolve()
      .then(() => method(...message.args))
      .then(
        (value) => send({ id: message.id, ok: true, value }),
        (error: unknown) =>
          send({
            id: message.id,
            ok: false,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          }),
      );
  });
  process.on("disconnect", () => void shutdown());
  process.send?.({ id: 0, ok: true, value: "ready" });
}
