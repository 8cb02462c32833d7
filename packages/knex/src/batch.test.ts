import { describe, expect, it } from "vitest";
import { batched } from "./batch.js";

/** A statement that records the batches it was sent and answers each input doubled. */
function recorder(fail: (input: number) => boolean = () => false) {
  const batches: number[][] = [];
  let release: (() => void) | null = null;
  let hold = false;
  const run = async (inputs: number[]) => {
    batches.push([...inputs]);
    if (hold) await new Promise<void>((resolve) => (release = resolve));
    const bad = inputs.find(fail);
    if (bad !== undefined) throw new Error(`bad input ${bad}`);
    return inputs.map((input) => input * 2);
  };
  return {
    batches,
    run,
    holdNext() {
      hold = true;
    },
    releaseHeld() {
      hold = false;
      release?.();
    },
  };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("batched statements", () => {
  it("calls made together share one statement, each getting its own answer", async () => {
    const statement = recorder();
    const call = batched(statement.run);
    expect(await Promise.all([1, 2, 3].map(call))).toEqual([2, 4, 6]);
    expect(statement.batches).toEqual([[1, 2, 3]]);
  });

  it("calls made while a statement is in flight wait for it, then go together in the next one", async () => {
    const statement = recorder();
    const call = batched(statement.run);
    statement.holdNext();
    const first = call(1);
    await turn();
    const later = [call(2), call(3)];
    await turn();
    expect(statement.batches).toEqual([[1]]);
    statement.releaseHeld();
    expect(await Promise.all([first, ...later])).toEqual([2, 4, 6]);
    expect(statement.batches).toEqual([[1], [2, 3]]);
  });

  it("reads go once the running code yields; writes gather until the next turn of the event loop", async () => {
    const later = async () => {
      for (let hop = 0; hop < 10; hop++) await Promise.resolve();
    };
    for (const [collect, expected] of [
      ["microtask", [[1], [2]]],
      ["turn", [[1, 2]]],
    ] as const) {
      const statement = recorder();
      const call = batched(statement.run, { collect });
      const first = call(1);
      await later();
      expect(await Promise.all([first, call(2)])).toEqual([2, 4]);
      expect(statement.batches, collect).toEqual(expected);
    }
  });

  it("a batch never holds more than maxBatch calls", async () => {
    const statement = recorder();
    const call = batched(statement.run, { maxBatch: 2 });
    expect(await Promise.all([1, 2, 3, 4, 5].map(call))).toEqual([2, 4, 6, 8, 10]);
    expect(statement.batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it("a failing batch is retried call by call, so one bad input fails only its own call", async () => {
    const statement = recorder((input) => input === 2);
    const call = batched(statement.run);
    const results = await Promise.allSettled([1, 2, 3].map(call));
    expect(
      results.map((result) => (result.status === "fulfilled" ? result.value : String(result.reason))),
    ).toEqual([2, "Error: bad input 2", 6]);
    expect(statement.batches).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it("a statement that answers the wrong number of results fails its calls instead of mixing answers", async () => {
    const call = batched(async (inputs: number[]) => inputs.slice(1));
    const results = await Promise.allSettled([1, 2].map(call));
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
  });
});
