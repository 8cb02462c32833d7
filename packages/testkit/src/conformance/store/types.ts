import type { StoragePort } from "@ryze/chatwoot-core";

/** One stored row as column (or field) name → stored value. */
export type RawRow = Record<string, unknown>;

/**
 * Side channel that reads what a store really wrote, bypassing the store: plain SQL for the knex store,
 * the internal maps for the memory store.
 */
export interface StoreRaw {
  /** The stored integration row (every column), or null when absent. */
  integrationRow(id: string): Promise<RawRow | null>;
  /** Every row of every table the store owns, by table name. */
  dump(): Promise<Record<string, RawRow[]>>;
}

export interface StoreCheckContext {
  store: StoragePort;
  raw: StoreRaw;
  /** How many callers the concurrency checks run in parallel. */
  concurrency: number;
}

/** One conformance check: resolves when the store conforms, throws (an `expect` failure) when it does not. */
export type StoreCheck = (context: StoreCheckContext) => Promise<void>;

/** The checks of one capability; `runStoreConformance` turns each entry into an `it`. */
export interface StoreCheckGroup {
  title: string;
  checks: Readonly<Record<string, StoreCheck>>;
}

export interface StoreConformanceOptions<S extends StoragePort> {
  /** Shown in the describe block, e.g. `"knex (PostgreSQL)"`. */
  name: string;
  /**
   * Gives a store. Without `reset` it is called before every test and must return an empty store; with
   * `reset` it is called once and `reset` empties the store before every test.
   */
  createStore: () => S | Promise<S>;
  reset?: (store: S) => void | Promise<void>;
  raw: (store: S) => StoreRaw;
  /** Parallel callers in concurrency checks (default 8). SQL stores need a pool at least this large. */
  concurrency?: number;
  /** Per-test timeout in milliseconds (default 30 000). */
  timeoutMs?: number;
}
