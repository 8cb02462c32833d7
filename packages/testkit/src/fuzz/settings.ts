import { randomInt } from "node:crypto";

/** How a fuzz test file runs: a seed to reproduce it and the number of runs per target. */
export interface FuzzSettings {
  seed: number;
  numRuns: number;
}

/**
 * The settings of a fuzz test file (fast-check): `FUZZ_SEED` reproduces a run (else a random seed), `CI_FUZZ_RUNS`
 * sets the runs per target, else `CI` asks for 2,000 and a local run does `localRuns` (200). Printed once, so that a
 * failure can be replayed: `FUZZ_SEED=<seed> npx vitest run <file>`.
 */
export function fuzzSettings(name: string, options: { localRuns?: number } = {}): FuzzSettings {
  const env = process.env;
  const seed = env.FUZZ_SEED ? Number(env.FUZZ_SEED) : randomInt(2 ** 31 - 1);
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED: must be an integer, got ${env.FUZZ_SEED}`);
  const numRuns = env.CI_FUZZ_RUNS
    ? Number(env.CI_FUZZ_RUNS)
    : env.CI && env.CI !== "false" && env.CI !== "0"
      ? 2_000
      : (options.localRuns ?? 200);
  if (!Number.isSafeInteger(numRuns) || numRuns < 1) {
    throw new Error(`CI_FUZZ_RUNS: must be a positive integer, got ${env.CI_FUZZ_RUNS}`);
  }
  console.log(`fuzz ${name}: seed ${seed}, ${numRuns} runs per target (replay: FUZZ_SEED=${seed})`);
  return { seed, numRuns };
}
