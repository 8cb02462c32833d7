/**
 * Natural batching, as a database's group commit does it: concurrent calls of one statement are sent as one
 * multi-row statement. A call waits until the code running now has yielded (writes: until the next turn of the
 * event loop) or, while a batch of the same statement is in flight, for that batch to return; then every call
 * waiting so far goes in one statement.
 * Under light load a batch holds one call and costs what a single statement does; under load the fixed cost of a
 * statement (building it, the round trip, parsing and planning) is shared by the whole batch.
 *
 * Every call's statement is sent after the call was made, so a batched read sees each write that completed before
 * the call, exactly as a statement of its own would.
 *
 * When a batch of several calls fails, each call is run again alone: one bad input fails its own call only.
 */
export interface BatchOptions {
  /** Calls per statement at most (database parameter limits). Default 100. */
  maxBatch?: number;
  /** Batches of this statement in flight at once. Default 1. */
  concurrency?: number;
  /**
   * How long a call waits for others when no batch is in flight: `"microtask"` (default) until the running code
   * yields, which gathers calls made together (the items of one claim, resumed by one answer) and holds a lone call
   * up by nothing; `"turn"` until the next turn of the event loop, which also gathers calls made by other I/O
   * callbacks meanwhile: a group commit, for writes, whose commit costs more than the wait.
   */
  collect?: "microtask" | "turn";
}

interface Waiting<I, O> {
  input: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

/**
 * Wraps `run` (which answers one output per input, in input order) into a function of one input whose calls are
 * batched as described above.
 */
export function batched<I, O>(
  run: (inputs: I[]) => Promise<O[]>,
  options: BatchOptions = {},
): (input: I) => Promise<O> {
  const maxBatch = options.maxBatch ?? 100;
  const concurrency = options.concurrency ?? 1;
  const collect = options.collect ?? "microtask";
  let queue: Waiting<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;

  async function runAlone(call: Waiting<I, O>): Promise<void> {
    try {
      const [output] = await run([call.input]);
      call.resolve(output as O);
    } catch (error) {
      call.reject(error);
    }
  }

  async function send(calls: Waiting<I, O>[]): Promise<void> {
    let outputs: O[];
    try {
      outputs = await run(calls.map((call) => call.input));
    } catch (error) {
      if (calls.length === 1) return calls[0]!.reject(error);
      await Promise.all(calls.map(runAlone));
      return;
    }
    if (outputs.length !== calls.length) {
      const error = new Error(
        `batched statement answered ${outputs.length} results for ${calls.length} calls`,
      );
      for (const call of calls) call.reject(error);
      return;
    }
    calls.forEach((call, i) => {
      call.resolve(outputs[i] as O);
    });
  }

  function flush(): void {
    scheduled = false;
    while (inFlight < concurrency && queue.length > 0) {
      const calls = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
      queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
      inFlight++;
      void send(calls).finally(() => {
        inFlight--;
        schedule();
      });
    }
  }

  function schedule(): void {
    if (scheduled || queue.length === 0 || inFlight >= concurrency) return;
    scheduled = true;
    if (collect === "turn") setImmediate(flush);
    else queueMicrotask(flush);
  }

  return (input) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ input, resolve, reject });
      schedule();
    });
}

/** Writes gather for a turn of the event loop: a commit costs more than the wait (see `collect`). */
export const WRITES: BatchOptions = { collect: "turn" };

/** Groups `items` by `key`, keeping each item's position: for statements that take one key per group. */
export function groupBy<T>(items: T[], key: (item: T) => string): Map<string, { item: T; index: number }[]> {
  const groups = new Map<string, { item: T; index: number }[]>();
  items.forEach((item, index) => {
    const name = key(item);
    const group = groups.get(name);
    if (group) group.push({ item, index });
    else groups.set(name, [{ item, index }]);
  });
  return groups;
}

/**
 * For each item, the index of the first item with the same key: a key twice in one batch is written by its first
 * call, and the later calls get the answer a call gets after it (a duplicate).
 */
export function firstIndexes<T>(items: T[], key: (item: T) => string): number[] {
  const first = new Map<string, number>();
  return items.map((item, index) => {
    const name = key(item);
    const known = first.get(name);
    if (known !== undefined) return known;
    first.set(name, index);
    return index;
  });
}
