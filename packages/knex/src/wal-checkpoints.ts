import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

export interface WalCheckpointOptions {
  /** How often the worker checkpoints. Default 1,000 ms. */
  intervalMs?: number;
  /** Called when a checkpoint fails (the worker keeps trying). Default: ignored. */
  onError?(error: Error): void;
}

export interface WalCheckpoints {
  /** Stops the worker and closes its connection. */
  close(): Promise<void>;
}

const DEFAULT_INTERVAL_MS = 1_000;

// Plain CommonJS for an `eval` worker: no file to ship or resolve, whatever loader the host runs under.
const WORKER_SOURCE = `
(() => {
const { parentPort, workerData } = require("node:worker_threads");
const message = (error) => (error instanceof Error ? error.message : String(error));
let db;
try {
  const Database = require(workerData.driver);
  db = new Database(workerData.filename, { fileMustExist: true });
} catch (error) {
  parentPort.postMessage({ failed: message(error) });
  parentPort.close();
  return;
}
const checkpoint = () => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch (error) {
    parentPort.postMessage({ error: message(error) });
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.postMessage({ ready: true });
parentPort.on("message", () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
})();
`;

/**
 * Checkpoints a WAL-mode SQLite file from a worker thread with a connection of its own, so that copying the WAL
 * back into the database no longer runs inside a commit on the event loop. better-sqlite3 is synchronous: an
 * automatic checkpoint stalls the process for as long as it takes (4-20 ms on the benchmark machine, every 1,000
 * pages of WAL), and took a fifth of the routing rate. A PASSIVE checkpoint never waits for the store's connection
 * nor blocks it.
 *
 * Keep automatic checkpoints on the store's connection as a safety net, set high enough not to run while the
 * worker keeps up: `connection.pragma("wal_autocheckpoint = 10000")` in `pool.afterCreate`.
 */
export async function startWalCheckpoints(
  filename: string,
  options: WalCheckpointOptions = {},
): Promise<WalCheckpoints> {
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  if (!Number.isInteger(intervalMs) || intervalMs < 1)
    throw new RangeError(
      `startWalCheckpoints: intervalMs must be a positive integer, got ${String(intervalMs)}`,
    );
  const driver = createRequire(import.meta.url).resolve("better-sqlite3");
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, filename, intervalMs } });
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  // Ready once the worker has opened the file; until then an error (no such file, no driver) fails the start.
  await new Promise<void>((resolve, reject) => {
    worker.once("error", reject);
    worker.on("message", (message: { ready?: boolean; failed?: string; error?: string }) => {
      if (message.failed !== undefined) {
        reject(new Error(`startWalCheckpoints: cannot open ${filename}: ${message.failed}`));
      } else if (message.ready) {
        worker.off("error", reject);
        worker.on("error", (error) => options.onError?.(error));
        resolve();
      } else if (message.error !== undefined) {
        options.onError?.(new Error(`WAL checkpoint failed: ${message.error}`));
      }
    });
  });
  return {
    async close() {
      worker.postMessage("close");
      await exited;
    },
  };
}
